"""numpy <-> Arrow conversions that never make pyarrow import pandas, for the quantum-graph tables.

pyarrow imports pandas lazily, at a cost of about 0.2 s and 30 MB, from ``pa.array``, ``pa.scalar``,
``Array.to_numpy``, ``Schema.empty_table``, ``combine_chunks`` of a column with no chunks,
comparisons with Python scalars (``pc.equal(column, 1)``) and ``Table.group_by``. A batch job
(``pipetask run-qbb``) pays that once per job, millions of times in a campaign, so the code a job
runs (`graph.quantum_graph`, `graph.qgraph_blocks`, `graph.qgraph_io`) converts through buffers
with these helpers instead. `take` selects a few rows with numpy rather than through Arrow's kernel
(``Table.take`` imports ``pyarrow.compute``, ~35 ms: it wraps every kernel in a Python function),
and `unique` avoids `numpy.unique`, which imports ``numpy.ma``.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterable, Sequence
from typing import TypeVar

import numpy as np
import pyarrow as pa

__all__ = [
    "SMALL_TAKE",
    "bool_array",
    "contiguous",
    "empty_table",
    "expand_ranges",
    "fixed_binary_array",
    "int_array",
    "string_array",
    "take",
    "to_numpy",
    "unique",
    "uuid_array",
]

_NUMPY_TYPES: dict[pa.DataType, type[np.generic]] = {
    pa.int8(): np.int8,
    pa.int16(): np.int16,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint8(): np.uint8,
    pa.uint16(): np.uint16,
    pa.uint32(): np.uint32,
    pa.uint64(): np.uint64,
    pa.float32(): np.float32,
    pa.float64(): np.float64,
}


def contiguous(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``column`` as one array (a column with no chunks becomes an empty array of its type)."""
    if isinstance(column, pa.Array):
        return column
    if column.num_chunks == 1:
        return column.chunk(0)
    if column.num_chunks == 0:
        return pa.nulls(0, column.type)
    return column.combine_chunks()


def to_numpy(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numeric or boolean column without nulls as a numpy array (a view of its buffer when possible).

    Raises `ValueError` for nulls or for a type other than integer, floating point or boolean.
    """
    array = contiguous(column)
    if array.null_count:
        raise ValueError(f"Column of type {array.type} has {array.null_count} null values.")
    if len(array) == 0:
        return np.empty(0, dtype=np.bool_ if array.type == pa.bool_() else _numpy_type(array.type))
    data = array.buffers()[1]
    if array.type == pa.bool_():
        return _bits(data, array.offset, len(array))
    dtype = np.dtype(_numpy_type(array.type))
    return np.frombuffer(data, dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


def _numpy_type(type_: pa.DataType) -> type[np.generic]:
    try:
        return _NUMPY_TYPES[type_]
    except KeyError:
        raise ValueError(f"No numpy conversion for Arrow type {type_} here.") from None


def int_array(values: np.ndarray | Sequence[int], type_: pa.DataType | None = None) -> pa.Array:
    """Integers as an Arrow array of ``type_`` (default int64), built from the buffer."""
    type_ = type_ or pa.int64()
    data = np.ascontiguousarray(values, dtype=_numpy_type(type_))
    return pa.Array.from_buffers(type_, len(data), [None, pa.py_buffer(data)])


def bool_array(values: np.ndarray | Sequence[bool]) -> pa.BooleanArray:
    """Booleans as an Arrow array (bit-packed from numpy)."""
    data = np.asarray(values, dtype=np.bool_)
    bits = np.packbits(data, bitorder="little")
    array: pa.BooleanArray = pa.BooleanArray.from_buffers(pa.bool_(), len(data), [None, pa.py_buffer(bits)])
    return array


def fixed_binary_array(values: np.ndarray, width: int = 16) -> pa.FixedSizeBinaryArray:
    """A numpy ``S<width>`` array as an Arrow ``binary(width)`` array."""
    data = np.ascontiguousarray(values, dtype=f"S{width}")
    array: pa.FixedSizeBinaryArray = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(data), [None, pa.py_buffer(data.tobytes())]
    )
    return array


def uuid_array(ids: Iterable[uuid.UUID]) -> pa.FixedSizeBinaryArray:
    """UUIDs as an Arrow ``binary(16)`` array."""
    data = b"".join(i.bytes for i in ids)
    count = len(data) // 16
    array: pa.FixedSizeBinaryArray = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), count, [None, pa.py_buffer(data)]
    )
    return array


def string_array(values: Sequence[str]) -> pa.StringArray:
    """Python strings as an Arrow ``string`` array (no nulls)."""
    encoded = [value.encode() for value in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(value) for value in encoded], out=offsets[1:])
    array: pa.StringArray = pa.StringArray.from_buffers(
        len(encoded), pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))
    )
    return array


_Taken = TypeVar("_Taken", pa.Table, pa.Array, pa.ChunkedArray)

SMALL_TAKE = 1000
"""Rows `take` gathers with numpy rather than import Arrow's kernel (a job's selections are smaller)."""


def take(data: _Taken, indices: np.ndarray | Sequence[int]) -> _Taken:
    """``data.take(indices)``: rows of a table, or elements of an array, at numpy row numbers.

    Arrow's ``take`` kernel is 3-10 times faster, but importing it (``Table.take`` imports
    ``pyarrow.compute``) costs a job ~5 ms and ~10 MB even without ``pyarrow.compute``'s Python
    wrappers. So until something has imported it, a few rows (`SMALL_TAKE` at most) of single-chunk
    integer, floating-point, boolean, fixed-size binary and string or binary columns (the types of
    the quantum-graph tables as read from a file) are gathered from their buffers with numpy.

    Raises `IndexError` for a row number out of range.
    """
    rows = np.asarray(indices, dtype=np.int64)
    length = data.num_rows if isinstance(data, pa.Table) else len(data)
    if len(rows) and (rows.min() < 0 or rows.max() >= length):
        raise IndexError(f"Row numbers {rows.min()}..{rows.max()} are out of range for {length} rows.")
    if len(rows) > SMALL_TAKE or "pyarrow._compute" in sys.modules:
        return _arrow_take(data, rows)
    return _numpy_take(data, rows)


def _numpy_take(data: _Taken, rows: np.ndarray) -> _Taken:
    """`take` with numpy for the column types it knows and single chunks (else Arrow's kernel)."""
    if isinstance(data, pa.Table):
        if any(column.num_chunks > 1 for column in data.columns):
            return _arrow_take(data, rows)
        columns = [_take_array(contiguous(column), rows) for column in data.columns]
        return pa.Table.from_arrays(columns, schema=data.schema)
    if isinstance(data, pa.ChunkedArray):
        if data.num_chunks > 1:
            return _arrow_take(data, rows)
        return pa.chunked_array([_take_array(contiguous(data), rows)], type=data.type)
    return _take_array(data, rows)


def _take_array(array: pa.Array, rows: np.ndarray) -> pa.Array:
    type_ = array.type
    count = len(rows)
    if count == 0:
        return pa.nulls(0, type_)
    kind = type_.id  # an int: much cheaper to dispatch on than DataType comparisons
    buffers = array.buffers()
    validity = _take_validity(array, buffers[0], rows)
    if kind in _DTYPES_BY_ID:
        dtype = _DTYPES_BY_ID[kind]
        values = np.frombuffer(
            buffers[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize
        )
        return pa.Array.from_buffers(type_, count, [validity, pa.py_buffer(values[rows])])
    if kind == _BOOL_ID:
        packed = np.packbits(_bits_at(buffers[1], rows + array.offset), bitorder="little")
        return pa.Array.from_buffers(type_, count, [validity, pa.py_buffer(packed)])
    if kind == _FIXED_BINARY_ID:
        width = type_.byte_width
        values = np.frombuffer(buffers[1], dtype=f"V{width}", count=len(array), offset=array.offset * width)
        return pa.Array.from_buffers(type_, count, [validity, pa.py_buffer(values[rows].tobytes())])
    if kind in _OFFSET_IDS:
        offsets = np.frombuffer(buffers[1], dtype=np.int32, count=len(array) + 1, offset=array.offset * 4)
        starts = offsets[rows].astype(np.int64)
        stops = offsets[rows + 1].astype(np.int64)
        new_offsets = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(stops - starts, out=new_offsets[1:])
        if new_offsets[-1] <= _INT32_MAX:
            chars = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else _NO_BYTES
            data = chars[expand_ranges(starts, stops)]
            return pa.Array.from_buffers(
                type_, count, [validity, pa.py_buffer(new_offsets.astype(np.int32)), pa.py_buffer(data)]
            )
    return _arrow_take(array, rows)


_DTYPES_BY_ID = {type_.id: np.dtype(dtype) for type_, dtype in _NUMPY_TYPES.items()}
_BOOL_ID = pa.bool_().id
_FIXED_BINARY_ID = pa.binary(16).id
_OFFSET_IDS = frozenset({pa.string().id, pa.binary().id})
_INT32_MAX = np.iinfo(np.int32).max


def _arrow_take(data: _Taken, rows: np.ndarray) -> _Taken:
    try:
        from pyarrow._compute import call_function  # what pyarrow.compute wraps, without its import cost
    except ImportError:  # pragma: no cover - a pyarrow without the private module
        from pyarrow.compute import call_function
    result: _Taken = call_function("take", [data, int_array(rows)])
    return result


_NO_BYTES = np.empty(0, dtype=np.uint8)


def _bits(buffer: pa.Buffer, offset: int, length: int) -> np.ndarray:
    """A bitmap (validity or boolean values) as a numpy boolean array of ``length`` from ``offset``."""
    bits = np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), bitorder="little")
    result: np.ndarray = bits[offset : offset + length].astype(np.bool_)
    return result


def _bits_at(buffer: pa.Buffer, positions: np.ndarray) -> np.ndarray:
    """The bits of a bitmap at ``positions``, as booleans (only those bytes are read)."""
    data = np.frombuffer(buffer, dtype=np.uint8)
    result: np.ndarray = ((data[positions >> 3] >> (positions & 7).astype(np.uint8)) & 1).astype(np.bool_)
    return result


def _take_validity(array: pa.Array, validity: pa.Buffer | None, rows: np.ndarray) -> pa.Buffer | None:
    if validity is None or array.null_count == 0:
        return None
    return pa.py_buffer(np.packbits(_bits_at(validity, rows + array.offset), bitorder="little"))


def expand_ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(start, stop)`` for each pair, without a Python loop."""
    counts = stops - starts
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(starts - np.cumsum(counts) + counts, counts)
    result: np.ndarray = offsets + np.arange(total, dtype=np.int64)
    return result


def empty_table(schema: pa.Schema) -> pa.Table:
    """A table with no rows (one empty chunk per column, so columns combine without pandas)."""
    return pa.Table.from_arrays([pa.nulls(0, field.type) for field in schema], schema=schema)


def unique(values: np.ndarray) -> np.ndarray:
    """Sorted unique values of a 1-d array, like `numpy.unique` without importing ``numpy.ma``."""
    ordered = np.sort(values, kind="stable")
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=np.bool_)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    result: np.ndarray = ordered[keep]
    return result
