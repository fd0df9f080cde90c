"""Which datasets a command acts on: dataset types, collections and a WHERE expression, as a sorted ref list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..datasets import DatasetRef, DatasetType
from ..registry import Registry
from .format import sort_key

__all__ = ["dataset_sort_key", "matching_dataset_types", "select_datasets"]


def matching_dataset_types(registry: Registry, names: Sequence[str]) -> list[DatasetType]:
    """Dataset types named or matched by glob ``names`` (all of them if none), sorted by name.

    A name without glob characters must be registered (the error suggests close names).
    """
    if not names:
        return registry.query_dataset_types("*")
    found: dict[str, DatasetType] = {}
    for name in names:
        if any(char in name for char in "*?["):
            found.update((t.name, t) for t in registry.query_dataset_types(name))
        else:
            found[name] = registry.get_dataset_type(name)  # raises, with suggestions, if unknown
    return [found[name] for name in sorted(found)]


def select_datasets(
    registry: Registry,
    dataset_types: Sequence[str],
    collections: Sequence[str],
    where: str = "",
    bind: Mapping[str, Any] | None = None,
    *,
    find_first: bool = True,
) -> list[DatasetRef]:
    """The datasets of ``dataset_types`` (names or globs; none: all) in ``collections`` matching ``where``.

    ``collections`` are searched in order; with ``find_first`` each data ID gives only the dataset
    of the first collection that has one. No collections means every collection, and every matching
    dataset (there is no order to find first in). Refs come grouped by dataset type name, each group
    sorted by data ID, run and UUID.
    """
    search = list(collections)
    if not search:
        search = registry.query_collections("*", include_chains=False)
        find_first = False
    refs: list[DatasetRef] = []
    for dataset_type in matching_dataset_types(registry, dataset_types):
        found = registry.query_datasets(
            dataset_type.name, search, where=where, bind=bind, find_first=find_first
        )
        refs.extend(sorted(found, key=dataset_sort_key))
    return refs


def dataset_sort_key(ref: DatasetRef) -> tuple[tuple[bool, Any], ...]:
    """Sorts refs of one dataset type by data ID, then run, then UUID."""
    return sort_key([*ref.data_id.mapping.values(), ref.run, str(ref.id)])
