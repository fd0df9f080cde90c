"""quanta's data layer: dimensions, dataset types and refs, collections, and the SQL registry."""

from .collections import ChainMode, CollectionType
from .data_coordinate import DataCoordinate, DimensionRecord
from .datasets import DatasetIdGenerationMode, DatasetRef, DatasetType
from .dimensions import DimensionGroup, DimensionUniverse
from .errors import *  # noqa: F403 - the error hierarchy is part of the public API
from .errors import __all__ as _error_names
from .registry import Registry
from .timespan import Timespan

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
