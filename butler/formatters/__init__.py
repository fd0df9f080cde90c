"""The file formats datasets are stored in: one `Formatter` subclass per format and in-memory type.

Each class is imported from its module on first use, so choosing a YAML formatter does not import
pyarrow, pandas or astropy. Datastore configuration names them by module path
(``butler.formatters.parquet.ParquetFormatter``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fits import FitsImageFormatter
    from .metadata import ButlerLogRecordsFormatter, PackagesFormatter, TaskMetadataFormatter
    from .numpy_format import NpyFormatter
    from .parquet import ParquetFormatter
    from .pydantic_config import PydanticConfigFormatter
    from .structured import JsonFormatter, YamlFormatter

__all__ = [
    "ButlerLogRecordsFormatter",
    "FitsImageFormatter",
    "JsonFormatter",
    "NpyFormatter",
    "PackagesFormatter",
    "ParquetFormatter",
    "PydanticConfigFormatter",
    "TaskMetadataFormatter",
    "YamlFormatter",
]

_MODULES = {
    "ButlerLogRecordsFormatter": "metadata",
    "FitsImageFormatter": "fits",
    "JsonFormatter": "structured",
    "NpyFormatter": "numpy_format",
    "PackagesFormatter": "metadata",
    "ParquetFormatter": "parquet",
    "PydanticConfigFormatter": "pydantic_config",
    "TaskMetadataFormatter": "metadata",
    "YamlFormatter": "structured",
}


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_MODULES[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
