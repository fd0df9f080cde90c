"""YAML and JSON files for plain structured data (the StructuredDataDict and StructuredDataList storage classes)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..formatter import Formatter
from ..storage_classes import StorageClass
from ._checks import as_storage_class, check_component, check_write_type, library_errors

__all__ = ["JsonFormatter", "YamlFormatter"]

_TEXT_READ_ERRORS = (OSError, ValueError)  # ValueError covers UnicodeDecodeError and JSONDecodeError.


class YamlFormatter(Formatter):
    """A dict or list as a YAML document (``yaml.safe_dump``; key order is kept)."""

    extension = ".yaml"

    def read(
        self,
        path: Path,
        storage_class: StorageClass,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """The document at ``path``; `FormatterError` if it is not of ``storage_class``'s type."""
        check_component(self, component)
        with library_errors(self, "read", path, (*_TEXT_READ_ERRORS, yaml.YAMLError)):
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return as_storage_class(self, data, storage_class, path)

    def write(self, obj: Any, path: Path) -> None:
        """Write a dict or list of YAML-representable values (tuples and custom types are refused)."""
        check_write_type(self, obj, (dict, list))
        with library_errors(self, "write", path, (yaml.YAMLError,)):
            text = yaml.safe_dump(obj, sort_keys=False, allow_unicode=True)
        path.write_text(text, encoding="utf-8")


class JsonFormatter(Formatter):
    """A dict or list as a JSON document with sorted keys.

    JSON turns tuples into lists and non-string keys into strings; use `YamlFormatter` where that matters.
    """

    extension = ".json"

    def read(
        self,
        path: Path,
        storage_class: StorageClass,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """The document at ``path``; `FormatterError` if it is not of ``storage_class``'s type."""
        check_component(self, component)
        with library_errors(self, "read", path, _TEXT_READ_ERRORS):
            data = json.loads(path.read_text(encoding="utf-8"))
        return as_storage_class(self, data, storage_class, path)

    def write(self, obj: Any, path: Path) -> None:
        """Write a dict or list of JSON-serializable values."""
        check_write_type(self, obj, (dict, list))
        with library_errors(self, "write", path, (TypeError, ValueError)):
            text = json.dumps(obj, sort_keys=True)
        path.write_text(text + "\n", encoding="utf-8")
