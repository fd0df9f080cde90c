"""What goes in each ``.qg`` block: grouping a graph's tables into self-contained blocks, and back.

Between `graph.qgraph_io` (the public API) and `graph.qgraph_format` (bytes and blocks). Everything
here is columnar: rows move between tables with numpy index arrays and ``Table.take``; no Python
object is made per quantum or dataset.

Blocks, in file order:

* block 0, ``global``: every init edge with its datasets and their records, plus a section (empty
  when there is nothing in it) for every table of the graph, so readers always know the schemas;
* ``quanta`` blocks: each holds up to ``block_size`` quanta of one task (quanta sorted by task then
  data ID, so neighbouring data IDs share a block) and at most ``block_edges`` edges unless one
  quantum has more: the quanta, all their edges, every dataset row they use and the datastore
  records of those datasets;
* one ``extras`` block: the pruned table and any dataset or record no edge refers to;
* ``index`` pages: all node ids sorted, with the block holding each, ``page_size`` ids a page.

A dataset used by several blocks is copied into each; the first block using it *owns* the row
(sections list owned rows first and record how many), so the whole graph is the union of owned rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from .arrow_arrays import contiguous, expand_ranges, int_array, take, unique
from .errors import QuantumGraphError, QuantumGraphFileError
from .qgraph_format import BlockKind, QgFileReader, QgFileWriter, encode_sections
from .qgraph_order import index_of
from .quantum_graph import QuantumGraph, ids_to_numpy, uuid_from_bytes

__all__ = ["GraphTables", "read_all_tables", "read_node_tables", "read_subset_tables", "write_blocks"]

_QUANTA = "quanta/"
_DATASETS = "datasets/"
_EMPTY_IDS = np.empty(0, dtype="S16")


@dataclass(frozen=True, slots=True)
class GraphTables:
    """The tables of a `QuantumGraph` (or of the part of one a job needs), as read from blocks."""

    quanta: dict[str, pa.Table]
    """Per task label."""
    datasets: dict[str, pa.Table]
    """Per (parent) dataset type name."""
    edges: pa.Table
    """Quantum edges."""
    init_edges: pa.Table
    """Task init edges."""
    datastore_records: pa.Table
    """Datastore records of existing inputs."""
    pruned: pa.Table
    """Quanta not made, with the reason."""


def _take(table: pa.Table, indices: np.ndarray) -> pa.Table:
    """``table.take(indices)`` for a numpy array of row numbers, by Arrow's kernel (for writers).

    Readers use `graph.arrow_arrays.take`, which spares a job importing ``pyarrow.compute`` but
    costs more per call than the kernel.
    """
    return table.take(int_array(indices))


def _keep(table: pa.Table, mask: np.ndarray) -> pa.Table:
    """The rows of ``table`` where the numpy boolean ``mask`` is true (for readers)."""
    return table if mask.all() else take(table, np.flatnonzero(mask))


# -- writing -------------------------------------------------------------------------------------


def _check_found(positions: np.ndarray, keys: pa.Array, what: str) -> np.ndarray:
    """``positions`` (from `index_of`), raising if a key was not found."""
    missing = np.flatnonzero(positions < 0)
    if len(missing):
        raise QuantumGraphError(
            f"The graph has {what} {uuid_from_bytes(keys[int(missing[0])].as_py())}, which is not in it "
            f"({len(missing)} such rows)."
        )
    return positions


def _column(table: pa.Table, name: str) -> pa.Array:
    return contiguous(table.column(name))


def _concat_arrays(arrays: list[pa.Array], type_: pa.DataType) -> pa.Array:
    return pa.concat_arrays(arrays) if arrays else pa.nulls(0, type_)


@dataclass(frozen=True, slots=True)
class _QuantaBlock:
    """Where a quanta block's rows are in its task's sorted quanta table."""

    label: str
    start: int
    count: int


class _Planner:
    """Lookups over the whole graph (positions of every edge's quantum and dataset, owners of rows)
    used to fill every block; hash lookups (`index_of`), no per-row Python."""

    def __init__(self, graph: QuantumGraph, block_size: int, block_edges: int) -> None:
        import pyarrow.compute as pc  # writers only: jobs do not pay for importing it

        self.graph = graph
        self.labels = graph.task_labels()
        # Quanta of each task sorted by data ID; all node ids in that order.
        self.sorted_quanta: dict[str, pa.Table] = {}
        for label in self.labels:
            table = graph.quanta[label]
            keys = [(name, "ascending") for name in table.column_names if name != "node_id"]
            if keys and table.num_rows > 1:
                table = table.take(pc.sort_indices(table, sort_keys=keys))
            self.sorted_quanta[label] = table.combine_chunks()
        uuid_type = graph.edges.schema.field("node_id").type
        all_nodes = _concat_arrays([_column(t, "node_id") for t in self.sorted_quanta.values()], uuid_type)
        edges = graph.edges.combine_chunks()
        edge_nodes = _check_found(
            index_of(_column(edges, "node_id"), all_nodes), edges.column("node_id"), "an edge to quantum"
        )

        # Blocks: up to block_size quanta of one task and (unless one quantum has more) block_edges edges.
        edges_per_node = np.bincount(edge_nodes, minlength=len(all_nodes))
        node_blocks = np.empty(len(all_nodes), dtype=np.int32)
        self.blocks: list[_QuantaBlock] = []
        offset = 0
        for label, table in self.sorted_quanta.items():
            cumulative = np.cumsum(edges_per_node[offset : offset + table.num_rows])
            start = 0
            while start < table.num_rows:
                limit = (cumulative[start - 1] if start else 0) + block_edges
                stop = min(start + block_size, int(np.searchsorted(cumulative, limit, side="right")))
                stop = max(stop, start + 1)
                self.blocks.append(_QuantaBlock(label, start, stop - start))
                node_blocks[offset + start : offset + stop] = len(self.blocks)  # block 0 is the global one
                start = stop
            offset += table.num_rows
        self.extras_block = len(self.blocks) + 1
        node_ids = ids_to_numpy(all_nodes)
        order = np.argsort(node_ids)
        self.sorted_nodes = node_ids[order]
        self.sorted_node_blocks = node_blocks[order]
        if len(node_ids) > 1 and (self.sorted_nodes[1:] == self.sorted_nodes[:-1]).any():
            raise QuantumGraphError("The graph has the same node id in more than one quantum row.")

        # Datasets: every table's ids end to end; the table and row of each position.
        self.dataset_names = list(graph.datasets)
        columns = [_column(graph.datasets[name], "dataset_id") for name in self.dataset_names]
        all_datasets = _concat_arrays(columns, uuid_type)
        self.dataset_tables = np.repeat(np.arange(len(columns), dtype=np.int32), [len(c) for c in columns])
        self.dataset_rows = np.concatenate(
            [np.arange(len(c), dtype=np.int64) for c in columns] or [np.empty(0, np.int64)]
        )

        # Edges in block order; each dataset is owned by the first block using it.
        edge_blocks = node_blocks[edge_nodes]
        edge_datasets = _check_found(
            index_of(_column(edges, "dataset_id"), all_datasets),
            edges.column("dataset_id"),
            "an edge to dataset",
        )
        order = np.argsort(edge_blocks, kind="stable")
        self.edges = edges
        self.edge_order = order  # each block takes its edges from the graph's table: no full copy
        self.edge_datasets = edge_datasets[order]
        self.edge_bounds = np.searchsorted(edge_blocks[order], np.arange(self.extras_block + 1))
        self.init_edges = graph.init_edges.combine_chunks()
        init_ids = _column(self.init_edges, "dataset_id")
        self.init_datasets = np.unique(
            _check_found(index_of(init_ids, all_datasets), init_ids, "an init edge to dataset")
        )
        self.owner = np.full(len(all_datasets), self.extras_block, dtype=np.int32)
        np.minimum.at(self.owner, edge_datasets, edge_blocks)
        self.owner[self.init_datasets] = 0

        # Datastore records grouped by dataset position; those of unknown datasets go to the extras block.
        records = graph.datastore_records.combine_chunks()
        record_datasets = index_of(_column(records, "dataset_id"), all_datasets)
        self.record_order = np.argsort(record_datasets, kind="stable")
        self.records = records
        record_datasets = record_datasets[self.record_order]
        positions = np.arange(len(all_datasets))
        self.record_starts = np.searchsorted(record_datasets, positions, side="left")
        self.record_stops = np.searchsorted(record_datasets, positions, side="right")
        self.dangling_records = np.flatnonzero(record_datasets < 0)

    # Each block's sections: (name, table, owned rows).

    def dataset_sections(
        self, positions: np.ndarray, block: int, *, all_names: bool = False
    ) -> list[tuple[str, pa.Table | bytes, int]]:
        """``datasets/<name>`` and ``records`` sections for the datasets at sorted ``positions``."""
        owned = self.owner[positions] == block
        positions = np.concatenate([positions[owned], positions[~owned]])
        owned_count = int(owned.sum())
        # Group by table (a stable sort keeps owned rows first within each table).
        by_table = np.argsort(self.dataset_tables[positions], kind="stable")
        tables = self.dataset_tables[positions[by_table]]
        present = range(len(self.dataset_names)) if all_names else np.unique(tables).tolist()
        sections: list[tuple[str, pa.Table | bytes, int]] = []
        for index in present:
            lo, hi = np.searchsorted(tables, [index, index + 1])
            selected = by_table[lo:hi]
            name = self.dataset_names[index]
            table = _take(self.graph.datasets[name], self.dataset_rows[positions[selected]])
            sections.append((_DATASETS + name, table, int(np.count_nonzero(selected < owned_count))))
        starts, stops = self.record_starts[positions], self.record_stops[positions]
        record_rows = expand_ranges(starts, stops)
        owned_records = int((stops[:owned_count] - starts[:owned_count]).sum())
        if block == self.extras_block and len(self.dangling_records):
            record_rows = np.concatenate([record_rows, self.dangling_records])
            owned_records += len(self.dangling_records)
        sections.append(("records", _take(self.records, self.record_order[record_rows]), owned_records))
        return sections

    def global_sections(self) -> list[tuple[str, pa.Table | bytes, int]]:
        """Block 0: init edges and their datasets, and the schema of every table."""
        sections: list[tuple[str, pa.Table | bytes, int]] = [
            ("init_edges", self.init_edges, self.init_edges.num_rows),
            ("edges", self.edges.slice(0, 0), 0),
            ("pruned", self.graph.pruned.slice(0, 0), 0),
        ]
        sections += [(_QUANTA + label, self.sorted_quanta[label].slice(0, 0), 0) for label in self.labels]
        sections += self.dataset_sections(self.init_datasets, 0, all_names=True)
        return sections

    def quanta_sections(self, number: int) -> list[tuple[str, pa.Table | bytes, int]]:
        """Quanta block ``number`` (1-based): its quanta, their edges, datasets and records."""
        block = self.blocks[number - 1]
        table = self.sorted_quanta[block.label].slice(block.start, block.count)
        start, stop = int(self.edge_bounds[number]), int(self.edge_bounds[number + 1])
        edges = _take(self.edges, self.edge_order[start:stop])
        positions = np.unique(self.edge_datasets[start:stop])
        return [
            (_QUANTA + block.label, table, table.num_rows),
            ("edges", edges, edges.num_rows),
            *self.dataset_sections(positions, number),
        ]

    def extras_sections(self) -> list[tuple[str, pa.Table | bytes, int]]:
        """The extras block: pruned quanta, unreferenced datasets and records."""
        pruned = self.graph.pruned.combine_chunks()
        positions = np.flatnonzero(self.owner == self.extras_block)
        return [("pruned", pruned, pruned.num_rows), *self.dataset_sections(positions, self.extras_block)]


def write_blocks(
    writer: QgFileWriter, graph: QuantumGraph, block_size: int, block_edges: int, page_size: int
) -> dict[str, Any]:
    """Write every block of ``graph``; returns the header entries describing them.

    A quanta block holds up to ``block_size`` quanta and, unless a single quantum has more, up to
    ``block_edges`` edges (so tasks reading many inputs per quantum still make small blocks).
    """
    if min(block_size, block_edges, page_size) < 1:
        raise QuantumGraphError(
            f"Block size, block edges and page size must be positive, got {block_size}, {block_edges} "
            f"and {page_size}."
        )
    plan = _Planner(graph, block_size, block_edges)
    writer.add_block(BlockKind.GLOBAL, encode_sections(plan.global_sections()))
    for number, block in enumerate(plan.blocks, start=1):
        payload = encode_sections(plan.quanta_sections(number))
        writer.add_block(BlockKind.QUANTA, payload, task=block.label, quanta=block.count)
    writer.add_block(BlockKind.EXTRAS, encode_sections(plan.extras_sections()))
    pages, first_ids = [], []
    for start in range(0, len(plan.sorted_nodes), page_size):
        ids = plan.sorted_nodes[start : start + page_size]
        blocks = plan.sorted_node_blocks[start : start + page_size].astype("<u4")
        payload = encode_sections([("ids", ids.tobytes(), len(ids)), ("blocks", blocks.tobytes(), len(ids))])
        pages.append(writer.add_block(BlockKind.INDEX, payload, quanta=len(ids)))
        first_ids.append(bytes(ids[0]).ljust(16, b"\0").hex())
    tasks = []
    for label in plan.labels:
        numbers = [number for number, block in enumerate(plan.blocks, start=1) if block.label == label]
        tasks.append(
            {
                "label": label,
                "dimensions": list(graph.task_dimensions[label]),
                "quanta": graph.quanta[label].num_rows,
                "blocks": [numbers[0], len(numbers)] if numbers else [0, 0],
            }
        )
    return {
        "tasks": tasks,
        "dataset_tables": plan.dataset_names,
        "index": {"page_size": page_size, "pages": pages, "first_ids": first_ids},
        "block_size": block_size,
        "block_edges": block_edges,
    }


# -- reading -------------------------------------------------------------------------------------


class _BlockTables:
    """Decoded sections of one block, with errors naming the file and block."""

    def __init__(
        self,
        reader: QgFileReader,
        number: int,
        wanted: Iterable[str] | None = None,
        payload: bytes | None = None,
    ) -> None:
        self.reader = reader
        self.number = number
        self.sections = reader.sections(number, None if wanted is None else tuple(wanted), payload)

    def table(self, name: str, owned: bool = False) -> pa.Table:
        section = self.sections.get(name)
        if section is None:
            raise QuantumGraphFileError(
                f"{self.reader.path}: {self.reader.describe(self.number)} has no {name!r} section."
            )
        table = self.reader.table(section, self.number)
        return table.slice(0, section.owned) if owned and section.owned < table.num_rows else table

    def names(self, prefix: str) -> list[str]:
        return [name for name in self.sections if name.startswith(prefix)]


class _Collected:
    """Tables gathered from several blocks per name, concatenated at the end."""

    def __init__(self, empty: dict[str, pa.Table]) -> None:
        self.empty = empty
        self.parts: dict[str, list[pa.Table]] = {name: [] for name in empty}

    def add(self, name: str, table: pa.Table) -> None:
        if table.num_rows:
            self.parts[name].append(table)

    def result(self, name: str) -> pa.Table:
        parts = self.parts[name]
        if not parts:
            return self.empty[name]
        if len(parts) == 1:
            return parts[0]
        return pa.concat_tables(parts).combine_chunks()


def _empty_tables(global_block: _BlockTables) -> dict[str, pa.Table]:
    """A zero-row table of every section name, from block 0 (which has a section for every table)."""
    return {name: global_block.table(name).slice(0, 0) for name in global_block.sections}


def read_all_tables(reader: QgFileReader, labels: list[str], dataset_names: list[str]) -> GraphTables:
    """Every table of the graph: the owned rows of every block, concatenated."""
    global_block = _BlockTables(reader, 0)
    collected = _Collected(_empty_tables(global_block))
    numbers = [*reader.blocks_of_kind(BlockKind.QUANTA), *reader.blocks_of_kind(BlockKind.EXTRAS)]
    blocks = (
        _BlockTables(reader, number, payload=payload) for number, payload in reader.read_blocks(numbers)
    )
    for block in itertools.chain([global_block], blocks):
        for name, section in block.sections.items():
            if section.owned and name != "init_edges":
                collected.add(name, block.table(name, owned=True))
    return GraphTables(
        quanta={label: collected.result(_QUANTA + label) for label in labels},
        datasets={name: collected.result(_DATASETS + name) for name in dataset_names},
        edges=collected.result("edges"),
        init_edges=global_block.table("init_edges"),
        datastore_records=collected.result("records"),
        pruned=collected.result("pruned"),
    )


def locate_nodes(reader: QgFileReader, wanted: np.ndarray) -> np.ndarray:
    """Block number of each of the sorted, unique node ids ``wanted`` (via the index pages).

    Raises `QuantumGraphError` naming the ids that are not in the graph.
    """
    index = reader.header["index"]
    first_ids = np.array([bytes.fromhex(value) for value in index["first_ids"]], dtype="S16")
    page_numbers = np.searchsorted(first_ids, wanted, side="right") - 1
    blocks = np.full(len(wanted), -1, dtype=np.int64)
    for page in unique(page_numbers[page_numbers >= 0]).tolist():
        number = int(index["pages"][page])
        sections = reader.sections(number, ("ids", "blocks"))
        try:
            ids = np.frombuffer(sections["ids"].data, dtype="S16")
            page_blocks = np.frombuffer(sections["blocks"].data, dtype="<u4")
            if len(ids) == 0 or len(ids) != len(page_blocks):
                raise ValueError(f"{len(ids)} ids and {len(page_blocks)} block numbers")
        except (KeyError, ValueError) as err:
            raise QuantumGraphFileError(
                f"{reader.path}: {reader.describe(number)} is malformed: {err}"
            ) from err
        selected = np.flatnonzero(page_numbers == page)
        positions = np.minimum(np.searchsorted(ids, wanted[selected]), len(ids) - 1)
        found = ids[positions] == wanted[selected]
        blocks[selected[found]] = page_blocks[positions[found]]
    missing = wanted[blocks < 0]
    if len(missing):
        shown = ", ".join(str(uuid_from_bytes(value)) for value in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise QuantumGraphError(f"Node id(s) not in quantum graph {reader.path}: {shown}{more}.")
    return blocks


def _rows_with(table: pa.Table, column: str, ids: np.ndarray) -> pa.Table:
    """Rows of ``table`` whose binary(16) ``column`` is in ``ids``."""
    if table.num_rows == 0:  # an empty column has no chunks; combining them would import pandas
        return table
    return _keep(table, np.isin(_ids(table, column), ids))


def _ids(table: pa.Table, column: str) -> np.ndarray:
    """A binary(16) column as ``S16`` numpy (empty without touching the column when there are no rows)."""
    return ids_to_numpy(table.column(column)) if table.num_rows else _EMPTY_IDS


class _FirstSeen:
    """Keeps, for each id, only the rows of the first block that has it (blocks repeat shared datasets)."""

    def __init__(self) -> None:
        self.seen: np.ndarray = _EMPTY_IDS

    def new_rows(self, table: pa.Table, column: str) -> pa.Table:
        ids = _ids(table, column)
        if len(self.seen) and len(ids):
            fresh = ~np.isin(ids, self.seen)
            table, ids = _keep(table, fresh), ids[fresh]
        if len(ids):
            self.seen = unique(np.concatenate([self.seen, ids]))
        return table


def read_subset_tables(reader: QgFileReader, wanted: np.ndarray, labels: list[str]) -> GraphTables:
    """The tables of the subgraph of the sorted, unique node ids ``wanted``; like `QuantumGraph.subgraph`."""
    blocks = locate_nodes(reader, wanted)
    global_block = _BlockTables(reader, 0)
    collected = _Collected(_empty_tables(global_block))
    datasets_seen: dict[str, _FirstSeen] = {}
    records_seen = _FirstSeen()

    def add_datasets(block: _BlockTables, dataset_ids: np.ndarray) -> None:
        dataset_ids = unique(dataset_ids)
        for name in block.names(_DATASETS):
            rows = _rows_with(block.table(name), "dataset_id", dataset_ids)
            if rows.num_rows:
                collected.add(name, datasets_seen.setdefault(name, _FirstSeen()).new_rows(rows, "dataset_id"))
        records = _rows_with(block.table("records"), "dataset_id", dataset_ids)
        collected.add("records", records_seen.new_rows(records, "dataset_id"))

    tasks = {""}
    for number in unique(blocks).tolist():
        block = _BlockTables(reader, number)
        for name in block.names(_QUANTA):
            quanta = _rows_with(block.table(name), "node_id", wanted)
            if quanta.num_rows:
                collected.add(name, quanta)
                tasks.add(name[len(_QUANTA) :])
        edges = _rows_with(block.table("edges"), "node_id", wanted)
        collected.add("edges", edges)
        add_datasets(block, _ids(edges, "dataset_id"))
    init_edges = global_block.table("init_edges")
    init_edges = take(
        init_edges,
        np.array(
            [i for i, task in enumerate(init_edges.column("task").to_pylist()) if task in tasks],
            dtype=np.int64,
        ),
    )
    add_datasets(global_block, _ids(init_edges, "dataset_id"))
    return GraphTables(
        quanta={label: collected.result(_QUANTA + label) for label in labels},
        datasets={
            name[len(_DATASETS) :]: collected.result(name)
            for name in global_block.names(_DATASETS)
            if collected.parts[name]
        },
        edges=collected.result("edges"),
        init_edges=init_edges,
        datastore_records=collected.result("records"),
        pruned=collected.empty["pruned"],
    )


def read_node_tables(reader: QgFileReader) -> tuple[np.ndarray, pa.Table]:
    """Node ids of every quanta block (in file order) and the ``node_id``, ``dataset_id``, ``kind``
    columns of all edges; only those sections are decoded."""
    node_ids: list[np.ndarray] = []
    edges: list[pa.Table] = []
    columns = ["node_id", "dataset_id", "kind"]
    for number, payload in reader.read_blocks(reader.blocks_of_kind(BlockKind.QUANTA)):
        block = _BlockTables(reader, number, payload=payload)
        for name in block.names(_QUANTA):
            node_ids.append(_ids(block.table(name), "node_id"))
        edges.append(block.table("edges").select(columns))
    if not edges:
        return _EMPTY_IDS, _BlockTables(reader, 0).table("edges").select(columns)
    return np.concatenate(node_ids), pa.concat_tables(edges).combine_chunks()
