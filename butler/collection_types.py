"""The kinds of collections and of chain edits: plain enums, importable without the SQL registry."""

from __future__ import annotations

import enum

__all__ = ["ChainMode", "CollectionType"]


class CollectionType(enum.IntEnum):
    """The kind of a collection."""

    RUN = 1
    """Where datasets are written; every dataset belongs to exactly one RUN."""
    TAGGED = 2
    """A hand-picked set of datasets, at most one per dataset type and data ID."""
    CHAINED = 3
    """An ordered search path of other collections."""
    CALIBRATION = 4
    """Datasets associated with validity timespans, at most one valid per data ID at any time."""

    @classmethod
    def from_name(cls, name: str) -> CollectionType:
        """Parse a type name case-insensitively (``run``, ``tagged``, ``chained``, ``calibration``)."""
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(
                f"Unknown collection type {name!r}; expected one of {', '.join(t.name for t in cls)}."
            ) from None


class ChainMode(enum.Enum):
    """How `CollectionManager.update_chain` changes a chain's children."""

    REDEFINE = "redefine"
    EXTEND = "extend"
    PREPEND = "prepend"
    REMOVE = "remove"
    POP = "pop"
