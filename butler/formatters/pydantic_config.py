"""YAML files for task configurations (the Config storage class): any pydantic model, with its class recorded."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic
import yaml
from pydantic_core import PydanticSerializationError

from ..errors import ButlerError
from ..formatter import Formatter, FormatterError
from ..storage_classes import StorageClass, import_object
from ._checks import as_storage_class, check_component, check_write_type, library_errors, type_name

__all__ = ["PydanticConfigFormatter"]


class PydanticConfigFormatter(Formatter):
    """A pydantic model as YAML: ``{"class": "<module>.<QualName>", "config": <model_dump(mode="json")>}``.

    Reading imports the recorded class, which must be a `pydantic.BaseModel` subclass of the storage
    class's type, and validates the stored values with it. The class must therefore be importable by
    that path: writing a model defined in a function, nested in a class or in ``__main__`` is refused.
    """

    extension = ".yaml"

    def read(
        self,
        path: Path,
        storage_class: StorageClass,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """The model at ``path``, validated by its recorded class."""
        check_component(self, component)
        with library_errors(self, "read", path, (OSError, ValueError, yaml.YAMLError)):
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not (
            isinstance(data, dict) and set(data) == {"class", "config"} and isinstance(data["class"], str)
        ):
            raise FormatterError(
                f"PydanticConfigFormatter cannot read {path}: expected a mapping with keys 'class' (an import "
                "path) and 'config'."
            )
        model_class = self._model_class(data["class"], storage_class, path)
        with library_errors(self, "read", path, (pydantic.ValidationError,)):
            model = model_class.model_validate(data["config"])
        return as_storage_class(self, model, storage_class, path)

    def write(self, obj: Any, path: Path) -> None:
        """Write a pydantic model whose class is importable by its module and name."""
        check_write_type(self, obj, (pydantic.BaseModel,))
        class_path = type_name(type(obj))
        try:
            importable = type(obj).__module__ != "__main__" and import_object(class_path) is type(obj)
        except ButlerError:
            importable = False
        if not importable:
            raise FormatterError(
                f"PydanticConfigFormatter cannot write {class_path}: the class could not be imported by that "
                "path when reading; define it at the top level of an importable module."
            )
        with library_errors(self, "write", path, (PydanticSerializationError, yaml.YAMLError)):
            text = yaml.safe_dump(
                {"class": class_path, "config": obj.model_dump(mode="json")},
                sort_keys=False,
                allow_unicode=True,
            )
        path.write_text(text, encoding="utf-8")

    def _model_class(
        self, class_path: str, storage_class: StorageClass, path: Path
    ) -> type[pydantic.BaseModel]:
        """The model class recorded in ``path``; it must subclass ``storage_class``'s type."""
        try:
            model_class = import_object(class_path)
        except ButlerError as err:
            raise FormatterError(f"PydanticConfigFormatter cannot read {path}: {err}") from err
        if not (isinstance(model_class, type) and issubclass(model_class, pydantic.BaseModel)):
            raise FormatterError(
                f"PydanticConfigFormatter cannot read {path}: {class_path!r} is not a pydantic.BaseModel subclass."
            )
        if not issubclass(model_class, storage_class.pytype):
            raise FormatterError(
                f"PydanticConfigFormatter cannot read {path}: {class_path!r} is not a subclass of "
                f"{storage_class.pytype_name} (storage class {storage_class.name})."
            )
        return model_class
