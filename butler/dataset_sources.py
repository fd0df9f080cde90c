"""Where datasets of one type are found in a search path: the SQL building block of every dataset query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from .collections import CollectionManager, CollectionRecord, CollectionType
from .dataset_types import RegisteredDatasetType

__all__ = ["dataset_source", "search_path"]


def search_path(manager: CollectionManager, collections: str | Sequence[str]) -> list[CollectionRecord]:
    """Collection records of a search path, chains flattened (`MissingCollectionError` if unknown)."""
    names = [collections] if isinstance(collections, str) else list(collections)
    return [manager.get(n) for n in manager.resolve(names)]


def dataset_source(
    registered: RegisteredDatasetType, search: Sequence[CollectionRecord], with_calibrations: bool
) -> sa.Subquery | None:
    """(dataset_id, collection_id, data ID columns, timespan) rows of one dataset type in ``search``.

    Calibration collections contribute only when ``with_calibrations``; None if no collection of
    the search path can hold the dataset type.
    """
    keys = registered.dataset_type.dimensions.required
    tag_ids = [c.id for c in search if c.type in (CollectionType.RUN, CollectionType.TAGGED)]
    calib_ids = [c.id for c in search if c.type is CollectionType.CALIBRATION] if with_calibrations else []
    parts: list[sa.Select[Any]] = []
    if tag_ids:
        tags = registered.tables.tags
        parts.append(
            sa.select(
                tags.c.dataset_id,
                tags.c.collection_id,
                *(tags.c[k] for k in keys),
                sa.null().label("timespan_begin"),
                sa.null().label("timespan_end"),
            ).where(tags.c.dataset_type_id == registered.id, tags.c.collection_id.in_(tag_ids))
        )
    if calib_ids:
        calibs = registered.tables.calibs
        parts.append(
            sa.select(
                calibs.c.dataset_id,
                calibs.c.collection_id,
                *(calibs.c[k] for k in keys),
                calibs.c.timespan_begin,
                calibs.c.timespan_end,
            ).where(calibs.c.dataset_type_id == registered.id, calibs.c.collection_id.in_(calib_ids))
        )
    if not parts:
        return None
    statement = parts[0] if len(parts) == 1 else sa.union_all(*parts)
    return statement.subquery(f"ds_{registered.dataset_type.name}")
