"""quanta's data layer: dimensions, dataset types and refs, collections, and the SQL registry."""

from typing import TYPE_CHECKING, Any

from .collection_types import ChainMode, CollectionType
from .data_coordinate import DataCoordinate, DimensionRecord
from .datasets import DatasetIdGenerationMode, DatasetRef, DatasetType
from .dimensions import DimensionGroup, DimensionUniverse
from .errors import *  # noqa: F403 - the error hierarchy is part of the public API
from .errors import __all__ as _error_names
from .timespan import Timespan

if TYPE_CHECKING:
    from .registry import Registry

__all__ = [
    "ChainMode",
    "CollectionType",
    "DataCoordinate",
    "DatasetIdGenerationMode",
    "DatasetRef",
    "DatasetType",
    "DimensionGroup",
    "DimensionRecord",
    "DimensionUniverse",
    "Registry",
    "Timespan",
    *_error_names,
]


def __getattr__(name: str) -> Any:
    # The registry (and SQLAlchemy with it) is imported only when used: batch jobs never need it.
    if name == "Registry":
        from .registry import Registry

        return Registry
    raise AttributeError(f"module 'butler' has no attribute {name!r}")
