"""Collections: RUN, TAGGED, CHAINED and CALIBRATION groupings of datasets, and chain resolution."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from .collection_types import ChainMode, CollectionType
from .database import Database, inserted_id
from .dimensions import unknown_name_message
from .errors import (
    CollectionCycleError,
    CollectionError,
    CollectionTypeError,
    ConflictingDefinitionError,
    MissingCollectionError,
    OrphanedRecordError,
)
from .schema import RegistryTables

__all__ = ["CollectionRecord", "CollectionType", "CollectionManager", "ChainMode"]


@dataclass(frozen=True, slots=True)
class CollectionRecord:
    """One collection as stored in the registry."""

    id: int
    """Database key."""
    name: str
    """Unique name."""
    type: CollectionType
    """Kind of collection."""
    doc: str | None
    """Documentation string."""


class CollectionManager:
    """Creates, looks up, chains and removes collections; resolves search paths."""

    def __init__(self, db: Database, tables: RegistryTables) -> None:
        self._db = db
        self._tables = tables
        self._by_name: dict[str, CollectionRecord] = {}
        self._by_id: dict[int, CollectionRecord] = {}

    # -- lookup -----------------------------------------------------------------

    def _refresh(self) -> None:
        table = self._tables.collection
        with self._db.transaction() as conn:
            rows = conn.execute(sa.select(table)).all()
        self._by_name = {
            r.name: CollectionRecord(r.collection_id, r.name, CollectionType(r.type), r.doc) for r in rows
        }
        self._by_id = {r.id: r for r in self._by_name.values()}

    def find(self, name: str) -> CollectionRecord | None:
        """The record of collection ``name``, or None."""
        if name not in self._by_name:
            self._refresh()
        return self._by_name.get(name)

    def get(self, name: str) -> CollectionRecord:
        """The record of collection ``name``; `MissingCollectionError` (with suggestions) if absent."""
        record = self.find(name)
        if record is None:
            raise MissingCollectionError(unknown_name_message("collection", name, sorted(self._by_name)))
        return record

    def get_by_id(self, collection_id: int) -> CollectionRecord:
        """The record with database key ``collection_id``."""
        if collection_id not in self._by_id:
            self._refresh()
        return self._by_id[collection_id]

    def all(self) -> list[CollectionRecord]:
        """Every collection, sorted by name."""
        self._refresh()
        return sorted(self._by_name.values(), key=lambda r: r.name)

    # -- creation and documentation ----------------------------------------------

    def register(self, name: str, type: CollectionType, doc: str | None = None) -> bool:
        """Create a collection; return False if it already exists with the same type.

        Raises `ConflictingDefinitionError` if it exists with another type.
        """
        if not name or len(name) > 128:
            raise CollectionError(f"Invalid collection name {name!r}: must be 1 to 128 characters.")
        existing = self.find(name)
        if existing is not None:
            if existing.type is not type:
                raise ConflictingDefinitionError(
                    f"Collection {name!r} already exists as {existing.type.name}, not {type.name}."
                )
            return False
        with self._db.transaction() as conn:
            result = conn.execute(
                sa.insert(self._tables.collection).values(name=name, type=int(type), doc=doc)
            )
            collection_id = inserted_id(result)
        record = CollectionRecord(int(collection_id), name, type, doc)
        self._by_name[name] = record
        self._by_id[record.id] = record
        return True

    def set_doc(self, name: str, doc: str | None) -> None:
        """Replace the documentation string of a collection."""
        record = self.get(name)
        table = self._tables.collection
        with self._db.transaction() as conn:
            conn.execute(sa.update(table).where(table.c.collection_id == record.id).values(doc=doc))
        self._by_name[name] = CollectionRecord(record.id, name, record.type, doc)
        self._by_id[record.id] = self._by_name[name]

    # -- chains -------------------------------------------------------------------

    def get_chain(self, name: str) -> tuple[str, ...]:
        """The direct children of a CHAINED collection, in search order."""
        record = self._require_type(name, CollectionType.CHAINED)
        table = self._tables.collection_chain
        with self._db.transaction() as conn:
            rows = conn.execute(
                sa.select(table.c.child).where(table.c.parent == record.id).order_by(table.c.position)
            ).all()
        return tuple(self.get_by_id(r.child).name for r in rows)

    def set_chain(self, name: str, children: Sequence[str], flatten: bool = False) -> None:
        """Replace the children of CHAINED collection ``name``; refuses cycles and unknown children."""
        record = self._require_type(name, CollectionType.CHAINED)
        children = list(dict.fromkeys(children))  # drop repeats, keep first position
        child_records = [self.get(child) for child in children]
        if flatten:
            child_records = [self.get(n) for n in self.resolve(children, flatten_chains=True)]
        children_of = self._chain_children()
        for child in child_records:
            if child.id == record.id or record.id in _reachable(child.id, children_of):
                raise CollectionCycleError(
                    f"Cannot add {child.name!r} to chain {name!r}: the chain would contain itself."
                )
        table = self._tables.collection_chain
        with self._db.transaction() as conn:
            conn.execute(sa.delete(table).where(table.c.parent == record.id))
            if child_records:
                conn.execute(
                    sa.insert(table),
                    [
                        {"parent": record.id, "position": i, "child": c.id}
                        for i, c in enumerate(child_records)
                    ],
                )

    def update_chain(self, name: str, children: Sequence[str], mode: ChainMode) -> tuple[str, ...]:
        """Change a chain's children by ``mode`` and return the new children.

        ``POP`` takes positions (as strings or ints, default the first) in ``children``.
        """
        current = list(self.get_chain(name)) if mode is not ChainMode.REDEFINE else []
        if mode is ChainMode.REDEFINE or mode is ChainMode.EXTEND:
            new = current + [c for c in children if c not in current]
        elif mode is ChainMode.PREPEND:
            new = list(children) + [c for c in current if c not in children]
        elif mode is ChainMode.REMOVE:
            missing = [c for c in children if c not in current]
            if missing:
                raise MissingCollectionError(f"Chain {name!r} has no children {missing}; it has {current}.")
            new = [c for c in current if c not in children]
        else:
            try:
                positions = sorted({int(p) for p in children} or {0}, reverse=True)
            except ValueError:
                raise CollectionError(
                    f"Chain positions to pop must be integers, got {list(children)}."
                ) from None
            for position in positions:
                if not -len(current) <= position < len(current):
                    raise CollectionError(
                        f"Chain {name!r} has {len(current)} children; cannot pop position {position}."
                    )
                current.pop(position)
            new = current
        self.set_chain(name, new)
        return tuple(new)

    def parents_of(self, name: str) -> list[str]:
        """Names of the CHAINED collections that list ``name`` as a direct child."""
        record = self.get(name)
        table = self._tables.collection_chain
        with self._db.transaction() as conn:
            rows = conn.execute(sa.select(table.c.parent).where(table.c.child == record.id)).all()
        return sorted(self.get_by_id(r.parent).name for r in rows)

    def resolve(self, names: Iterable[str], flatten_chains: bool = True) -> list[str]:
        """Expand a collection search path: chains replaced by their children, in order, without repeats."""
        self._refresh()
        children = self._chain_children()
        result: dict[str, None] = {}
        # Iterative depth-first expansion (chains of chains can be deep).
        stack = [self.get(n) for n in reversed(list(names))]
        while stack:
            record = stack.pop()
            if record.type is CollectionType.CHAINED and flatten_chains:
                stack.extend(self._by_id[c] for c in reversed(children.get(record.id, [])))
            else:
                result.setdefault(record.name, None)
        return list(result)

    def _chain_children(self) -> dict[int, list[int]]:
        """Every chain's children IDs in order, keyed by the chain's ID."""
        table = self._tables.collection_chain
        with self._db.transaction() as conn:
            rows = conn.execute(
                sa.select(table.c.parent, table.c.child).order_by(table.c.parent, table.c.position)
            ).all()
        children: dict[int, list[int]] = {}
        for row in rows:
            children.setdefault(row.parent, []).append(row.child)
        return children

    # -- queries and removal --------------------------------------------------------

    def query(
        self,
        pattern: str | Sequence[str] = "*",
        types: Iterable[CollectionType] | None = None,
        flatten_chains: bool = False,
        include_chains: bool = True,
    ) -> list[CollectionRecord]:
        """Collections whose names match glob pattern(s), optionally expanding matched chains."""
        patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        wanted = set(types) if types is not None else set(CollectionType)
        matched = [r for r in self.all() if any(fnmatch.fnmatchcase(r.name, p) for p in patterns)]
        if flatten_chains:
            names: dict[str, None] = {}
            for record in matched:
                if record.type is CollectionType.CHAINED:
                    if include_chains:
                        names.setdefault(record.name, None)
                    for child in self.resolve([record.name]):
                        names.setdefault(child, None)
                else:
                    names.setdefault(record.name, None)
            matched = [self._by_name[n] for n in names]
        return [
            r
            for r in matched
            if r.type in wanted and (include_chains or r.type is not CollectionType.CHAINED)
        ]

    def remove(self, name: str) -> None:
        """Delete a collection row (callers delete its datasets first); refuses if a chain lists it."""
        record = self.get(name)
        parents = self.parents_of(name)
        if parents:
            raise OrphanedRecordError(
                f"Cannot remove collection {name!r}: it is a child of chained collection(s) "
                f"{', '.join(parents)}; remove it from those chains first."
            )
        with self._db.transaction() as conn:
            conn.execute(
                sa.delete(self._tables.collection).where(self._tables.collection.c.collection_id == record.id)
            )
        del self._by_name[name]
        del self._by_id[record.id]

    def forget_cache(self) -> None:
        """Drop cached collection records (after a rolled-back transaction)."""
        self._by_name.clear()
        self._by_id.clear()

    def _require_type(self, name: str, type: CollectionType) -> CollectionRecord:
        record = self.get(name)
        if record.type is not type:
            raise CollectionTypeError(
                f"Collection {name!r} is a {record.type.name} collection, not {type.name}."
            )
        return record


def _reachable(start: int, children_of: dict[int, list[int]]) -> set[int]:
    """IDs of every collection reachable from ``start`` through chain links (chains included)."""
    seen: set[int] = set()
    stack = [start]
    while stack:
        for child in children_of.get(stack.pop(), []):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen
