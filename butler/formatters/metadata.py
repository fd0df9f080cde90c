"""Files for the bookkeeping datasets a run writes: task metadata (JSON), logs (JSON lines), package versions (YAML)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..formatter import Formatter, FormatterError
from ..log_records import ButlerLogRecords
from ..packages import Packages
from ..storage_classes import StorageClass
from ..task_metadata import TaskMetadata
from ._checks import as_storage_class, check_component, check_write_type, library_errors

__all__ = ["ButlerLogRecordsFormatter", "PackagesFormatter", "TaskMetadataFormatter"]

# ValueError covers UnicodeDecodeError and JSONDecodeError; TypeError is a value of the wrong kind.
_READ_ERRORS = (OSError, ValueError, TypeError)


class TaskMetadataFormatter(Formatter):
    """`TaskMetadata` as one JSON object (nested levels as nested objects, key order kept)."""

    extension = ".json"

    def read(
        self,
        path: Path,
        storage_class: StorageClass,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """The task metadata at ``path``."""
        check_component(self, component)
        with library_errors(self, "read", path, _READ_ERRORS):
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise FormatterError(f"TaskMetadataFormatter cannot read {path}: it holds no JSON object.")
            metadata = TaskMetadata.from_dict(data)
        return as_storage_class(self, metadata, storage_class, path)

    def write(self, obj: Any, path: Path) -> None:
        """Write `TaskMetadata`."""
        check_write_type(self, obj, (TaskMetadata,))
        with library_errors(self, "write", path, (TypeError, ValueError)):
            text = json.dumps(obj.to_dict())
        path.write_text(text + "\n", encoding="utf-8")


class ButlerLogRecordsFormatter(Formatter):
    """`ButlerLogRecords` as JSON lines, one record per line."""

    extension = ".jsonl"

    def read(
        self,
        path: Path,
        storage_class: StorageClass,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """The log records at ``path``."""
        check_component(self, component)
        with library_errors(self, "read", path, _READ_ERRORS):
            records = ButlerLogRecords.from_json_lines(path.read_text(encoding="utf-8"))
        return as_storage_class(self, records, storage_class, path)

    def write(self, obj: Any, path: Path) -> None:
        """Write `ButlerLogRecords`."""
        check_write_type(self, obj, (ButlerLogRecords,))
        path.write_text(obj.to_json_lines(), encoding="utf-8")


class PackagesFormatter(Formatter):
    """`Packages` as a YAML mapping of package name to version string."""

    extension = ".yaml"

    def read(
        self,
        path: Path,
        storage_class: StorageClass,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """The package versions at ``path``."""
        check_component(self, component)
        with library_errors(self, "read", path, (OSError, ValueError, yaml.YAMLError)):
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not (
            isinstance(data, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in data.items())
        ):
            raise FormatterError(
                f"PackagesFormatter cannot read {path}: expected a mapping of package names to version strings."
            )
        return as_storage_class(self, Packages(data), storage_class, path)

    def write(self, obj: Any, path: Path) -> None:
        """Write `Packages`."""
        check_write_type(self, obj, (Packages,))
        path.write_text(yaml.safe_dump(dict(obj), sort_keys=True, allow_unicode=True), encoding="utf-8")
