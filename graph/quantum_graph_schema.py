"""The columns of a quantum graph's tables, the edge kinds, the graph metadata, and 16-byte id arrays.

`graph.quantum_graph` (re-exporting everything here) holds the tables; this module says what their
columns are. Ids are pyarrow binary(16) columns, seen from numpy as ``S16`` arrays: they sort and
compare like the 16 bytes, which is what `IdIndex` and `RowIndex` use for lookups by id.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from butler.dimensions import DimensionGroup, FieldType

from .arrow_arrays import contiguous, fixed_binary_array, uuid_array
from .errors import QuantumGraphError

__all__ = [
    "DATASTORE_RECORDS_SCHEMA",
    "EDGES_SCHEMA",
    "INIT_EDGES_SCHEMA",
    "PRUNED_SCHEMA",
    "UUID_TYPE",
    "EdgeKind",
    "IdIndex",
    "QuantumGraphMetadata",
    "RowIndex",
    "dataset_schema",
    "ids_to_array",
    "ids_to_numpy",
    "quanta_schema",
    "uuid_from_bytes",
]

UUID_TYPE = pa.binary(16)


class EdgeKind(enum.IntEnum):
    """How a quantum (or a task, for init edges) uses a dataset; the ``kind`` column of the edge tables."""

    INPUT = 0
    PREREQUISITE = 1
    OUTPUT = 2
    METADATA = 3
    LOG = 4
    INIT_INPUT = 5
    INIT_OUTPUT = 6
    CONFIG = 7
    PACKAGES = 8


EDGES_SCHEMA = pa.schema(
    [
        ("node_id", UUID_TYPE),
        ("dataset_id", UUID_TYPE),
        ("dataset_type", pa.string()),
        ("connection", pa.string()),
        ("kind", pa.int8()),
    ]
)
"""Schema of `QuantumGraph.edges`."""

INIT_EDGES_SCHEMA = pa.schema(
    [
        ("task", pa.string()),
        ("dataset_id", UUID_TYPE),
        ("dataset_type", pa.string()),
        ("connection", pa.string()),
        ("kind", pa.int8()),
    ]
)
"""Schema of `QuantumGraph.init_edges`."""

DATASTORE_RECORDS_SCHEMA = pa.schema(
    [
        ("dataset_id", UUID_TYPE),
        ("datastore_name", pa.string()),
        ("component", pa.string()),
        ("path", pa.string()),
        ("formatter", pa.string()),
        ("storage_class", pa.string()),
        ("checksum", pa.string()),
        ("file_size", pa.int64()),
    ]
)
"""Schema of `QuantumGraph.datastore_records` (the fields of `DatastoreRecord`)."""

PRUNED_SCHEMA = pa.schema([("task", pa.string()), ("data_id", pa.string()), ("reason", pa.string())])
"""Schema of `QuantumGraph.pruned`."""


def _dimension_fields(group: DimensionGroup) -> list[pa.Field]:
    fields = []
    for name in group.data_id_keys:
        key = group.universe[name].key
        assert key is not None
        fields.append(pa.field(name, pa.int64() if key.type is FieldType.INT else pa.string()))
    return fields


def quanta_schema(group: DimensionGroup) -> pa.Schema:
    """Schema of the quanta table of a task with dimensions ``group``."""
    return pa.schema([pa.field("node_id", UUID_TYPE), *_dimension_fields(group)])


def dataset_schema(dimensions: DimensionGroup) -> pa.Schema:
    """Schema of the dataset table of a dataset type with dimensions ``dimensions``."""
    return pa.schema(
        [
            pa.field("dataset_id", UUID_TYPE),
            pa.field("run", pa.string()),
            pa.field("produced", pa.bool_()),
            *_dimension_fields(dimensions),
        ]
    )


def ids_to_numpy(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A binary(16) arrow array as a numpy ``S16`` array (a copy-free view when possible).

    ``S16`` compares and sorts like the 16 bytes; `uuid_from_bytes` turns one element back into a UUID.
    """
    array = contiguous(array)
    if len(array) == 0:
        return np.empty(0, dtype="S16")
    if array.null_count:
        raise QuantumGraphError("A node or dataset id column has null values.")
    buffer = array.buffers()[1]
    return np.frombuffer(buffer, dtype="S16", count=len(array), offset=array.offset * 16)


def ids_to_array(ids: Iterable[uuid.UUID] | np.ndarray) -> pa.FixedSizeBinaryArray:
    """UUIDs (or an ``S16`` numpy array) as a binary(16) arrow array."""
    if isinstance(ids, np.ndarray):
        return fixed_binary_array(ids, 16)
    return uuid_array(ids)


def uuid_from_bytes(value: bytes | np.bytes_) -> uuid.UUID:
    """A UUID from one ``S16`` element (numpy strips trailing zero bytes; they are put back)."""
    return uuid.UUID(bytes=bytes(value).ljust(16, b"\0"))


def _package_version() -> str:
    import importlib.metadata  # builders only: a job reads the version from the file

    try:
        return importlib.metadata.version("quanta")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def _user() -> str:
    import getpass  # builders only (it imports termios)

    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no user name in some containers
        return "unknown"


class QuantumGraphMetadata(BaseModel):
    """What a graph was built from and how: everything in the ``.qg`` header besides the tables."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    universe_name: str
    """Name of the dimension universe of the repository the graph was built against."""
    universe_version: int
    """Version of that universe."""
    pipeline_yaml: str = ""
    """The expanded pipeline (``Pipeline.write_yaml`` text) with every config override applied."""
    input_collections: tuple[str, ...] = ()
    """Collections inputs were searched in, in order."""
    output_run: str
    """RUN collection every predicted output goes to."""
    output: str | None = None
    """CHAINED collection (output run + inputs) to create or update on success, if any."""
    where: str = ""
    """The data query expression."""
    bind: dict[str, Any] = Field(default_factory=dict)
    """Values of identifiers bound in ``where``."""
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    """When the graph was built (UTC, ISO 8601)."""
    user: str = Field(default_factory=_user)
    """Who built it."""
    skip_existing_in: tuple[str, ...] = ()
    """Collections whose existing outputs made quanta be skipped."""
    clobber_outputs: bool = False
    """Whether existing outputs in the output run are to be replaced."""
    extend_run: bool = False
    """Whether the output run already existed and is being extended."""
    quanta_version: str = Field(default_factory=_package_version)
    """Version of the quanta package that built the graph."""


class IdIndex:
    """Sorted 16-byte ids with, for each, the table it is in and its row there (lookups by id)."""

    __slots__ = ("ids", "rows", "tables")

    def __init__(self, columns: list[np.ndarray]) -> None:
        ids = np.concatenate(columns) if columns else np.empty(0, dtype="S16")
        tables = np.concatenate(
            [np.full(len(c), i, dtype=np.int32) for i, c in enumerate(columns)] or [np.empty(0, np.int32)]
        )
        rows = np.concatenate([np.arange(len(c), dtype=np.int64) for c in columns] or [np.empty(0, np.int64)])
        order = np.argsort(ids, kind="stable")
        self.ids = ids[order]
        self.tables = tables[order]
        self.rows = rows[order]

    def find(self, key: bytes) -> tuple[int, int] | None:
        """(table, row) of ``key``, or None."""
        # numpy drops trailing zero bytes of S16 elements: compare the padded 16 bytes.
        key = bytes(key).ljust(16, b"\0")
        position = int(np.searchsorted(self.ids, key))
        if position < len(self.ids) and bytes(self.ids[position]).ljust(16, b"\0") == key:
            return int(self.tables[position]), int(self.rows[position])
        return None

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """Boolean mask of which ``keys`` are present."""
        if len(self.ids) == 0:
            return np.zeros(len(keys), dtype=bool)
        positions = np.minimum(np.searchsorted(self.ids, keys), len(self.ids) - 1)
        mask: np.ndarray = self.ids[positions] == keys
        return mask


class RowIndex:
    """Rows of a table grouped by one binary(16) column: a sorted key array and the row numbers."""

    __slots__ = ("keys", "rows")

    def __init__(self, column: np.ndarray) -> None:
        order = np.argsort(column, kind="stable")
        self.keys = column[order]
        self.rows = order

    def rows_of(self, key: bytes) -> np.ndarray:
        """Rows whose column holds ``key``."""
        start = int(np.searchsorted(self.keys, key, side="left"))
        stop = int(np.searchsorted(self.keys, key, side="right"))
        return self.rows[start:stop]
