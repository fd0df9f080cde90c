"""Saving a `QuantumGraph` as a ``.qg`` file and reading back all of it, some quanta, or its header.

The builder writes the file (`write_quantum_graph`); ``pipetask run`` reads it whole
(`read_quantum_graph`); each batch job reads only its quanta (`read_quanta`: a few small reads,
milliseconds and a few MB whatever the graph's size); ``pipetask show-qgraph`` reads only the header
(`read_header`). The layout is described in docs/qgraph-format.md; `graph.qgraph_format` handles
bytes and checksums, `graph.qgraph_blocks` what goes in each block.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from butler.datasets import DatasetType
from butler.dimensions import DimensionUniverse
from butler.errors import ButlerError
from butler.timing import log_duration

from .arrow_arrays import unique
from .errors import QuantumGraphError, QuantumGraphFileError
from .qgraph_blocks import GraphTables, read_all_tables, read_node_tables, read_subset_tables, write_blocks
from .qgraph_format import FORMAT_VERSION, QgFileReader, QgFileWriter
from .qgraph_order import dependency_order
from .quantum_graph import QuantumGraph, QuantumGraphMetadata

__all__ = [
    "DEFAULT_BLOCK_EDGES",
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_PAGE_SIZE",
    "QuantumGraphHeader",
    "read_dependency_order",
    "read_header",
    "read_quanta",
    "read_quantum_graph",
    "write_quantum_graph",
]

_log = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = 1000
"""Quanta per block: what a job decompresses to read one quantum (a few hundred kB)."""

DEFAULT_BLOCK_EDGES = 20_000
"""Edges per block at most (unless one quantum has more): bounds blocks of tasks with many inputs."""

DEFAULT_PAGE_SIZE = 8192
"""Node ids per index page (20 bytes each, so a page is 160 kB)."""


@dataclass(frozen=True)
class QuantumGraphHeader:
    """What a ``.qg`` file says about itself without reading its blocks."""

    path: Path
    """The file."""
    format_version: tuple[int, int]
    """(major, minor) version of the file format."""
    universe_name: str
    """Dimension universe the graph was built with."""
    universe_version: int
    """Its version."""
    universe_compatible: bool
    """Whether this software's universe can read the graph."""
    metadata: QuantumGraphMetadata
    """How the graph was built (pipeline YAML, collections, run, creation time, options)."""
    task_dimensions: dict[str, tuple[str, ...]]
    """Required dimensions of each task, by label, in topological order."""
    quantum_counts: dict[str, int]
    """Quanta per task label, in topological order."""
    dataset_types: dict[str, dict[str, Any]]
    """Definition (dimensions, storage class, is_calibration) of every dataset type, by name."""
    counts: dict[str, int]
    """Rows of each table: quanta, datasets, edges, init_edges, datastore_records, pruned."""
    file_size: int
    """Bytes of the whole file."""
    header_size: int
    """Compressed bytes of the JSON header."""
    block_count: int
    """Number of blocks."""
    block_size: int
    """Maximum quanta per block."""

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-able summary (``pipetask show-qgraph --json``)."""
        return {
            "path": str(self.path),
            "format_version": ".".join(map(str, self.format_version)),
            "universe": {
                "name": self.universe_name,
                "version": self.universe_version,
                "compatible": self.universe_compatible,
            },
            "metadata": self.metadata.model_dump(mode="json"),
            "tasks": {
                label: {"dimensions": list(dims), "quanta": self.quantum_counts[label]}
                for label, dims in self.task_dimensions.items()
            },
            "dataset_types": self.dataset_types,
            "counts": self.counts,
            "file_size": self.file_size,
            "header_size": self.header_size,
            "block_count": self.block_count,
            "block_size": self.block_size,
        }


def write_quantum_graph(
    graph: QuantumGraph,
    path: str | os.PathLike[str],
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    block_edges: int = DEFAULT_BLOCK_EDGES,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> None:
    """Write ``graph`` to ``path`` atomically (a temporary file in the same directory, then a rename).

    Parameters
    ----------
    graph
        The graph.
    path
        The ``.qg`` file; replaced if it exists. On any failure neither it nor a temporary file is
        left behind (an existing file stays as it was).
    block_size
        Maximum quanta per block.
    block_edges
        Maximum edges per block, unless a single quantum has more.
    page_size
        Node ids per index page.
    """
    path = Path(path)
    metadata = graph.metadata
    with (
        log_duration(_log, f"Wrote {graph.quantum_count()} quanta to {path}"),
        QgFileWriter(path, metadata.universe_name, metadata.universe_version) as writer,
    ):
        blocks = write_blocks(writer, graph, block_size, block_edges, page_size)
        header = {
            "format": "quanta.qg",
            "format_version": list(FORMAT_VERSION),
            "universe": {"name": metadata.universe_name, "version": metadata.universe_version},
            "metadata": metadata.model_dump(mode="json"),
            "dataset_types": {
                name: {
                    "dimensions": list(dataset_type.dimensions.names),
                    "storage_class": dataset_type.storage_class_name,
                    "is_calibration": dataset_type.is_calibration,
                }
                for name, dataset_type in graph.dataset_types.items()
            },
            "counts": {
                "quanta": graph.quantum_count(),
                "datasets": sum(table.num_rows for table in graph.datasets.values()),
                "edges": graph.edges.num_rows,
                "init_edges": graph.init_edges.num_rows,
                "datastore_records": graph.datastore_records.num_rows,
                "pruned": graph.pruned.num_rows,
            },
            **blocks,
        }
        writer.finish(header)


_HEADER_KEYS = ("metadata", "dataset_types", "tasks", "dataset_tables", "counts", "index", "block_size")


def _open(path: str | os.PathLike[str], check_universe: bool) -> tuple[QgFileReader, DimensionUniverse]:
    reader = QgFileReader(path)
    missing = [key for key in _HEADER_KEYS if key not in reader.header]
    if missing:
        reader.close()
        raise QuantumGraphFileError(f"{reader.path} has an incomplete header: no {', '.join(missing)}.")
    universe = DimensionUniverse.default()
    preamble = reader.preamble
    if check_universe and not universe.is_compatible_with(preamble.universe_name, preamble.universe_version):
        reader.close()
        raise QuantumGraphFileError(
            f"{reader.path} was built with dimension universe {preamble.universe_name!r} version "
            f"{preamble.universe_version}; this software uses {universe.name!r} version {universe.version}. "
            "Rebuild the graph with this version of quanta."
        )
    return reader, universe


def _metadata(reader: QgFileReader) -> QuantumGraphMetadata:
    raw = reader.header.get("metadata", {})
    # A newer minor format version may add metadata fields; this reader ignores them.
    known = {key: value for key, value in raw.items() if key in QuantumGraphMetadata.model_fields}
    try:
        return QuantumGraphMetadata.model_validate(known)
    except ValueError as err:
        raise QuantumGraphFileError(f"{reader.path} has invalid graph metadata: {err}") from err


def _task_dimensions(reader: QgFileReader) -> dict[str, tuple[str, ...]]:
    return {task["label"]: tuple(task["dimensions"]) for task in reader.header["tasks"]}


def _dataset_types(
    reader: QgFileReader, universe: DimensionUniverse, names: Iterable[str] | None = None
) -> dict[str, DatasetType]:
    definitions: dict[str, dict[str, Any]] = reader.header["dataset_types"]
    result = {}
    for name in definitions if names is None else names:
        spec = definitions.get(name)
        if spec is None:
            raise QuantumGraphFileError(f"{reader.path}: dataset type {name!r} is used but not defined.")
        try:
            result[name] = DatasetType(
                name,
                universe.group(spec["dimensions"]),
                spec["storage_class"],
                is_calibration=spec["is_calibration"],
            )
        except (ButlerError, KeyError) as err:
            raise QuantumGraphFileError(f"{reader.path}: dataset type {name!r} is invalid: {err}") from err
    return result


def _graph(
    reader: QgFileReader,
    universe: DimensionUniverse,
    tables: GraphTables,
    dataset_types: dict[str, DatasetType],
) -> QuantumGraph:
    return QuantumGraph(
        metadata=_metadata(reader),
        dataset_types=dataset_types,
        task_dimensions=_task_dimensions(reader),
        quanta=tables.quanta,
        datasets=tables.datasets,
        edges=tables.edges,
        init_edges=tables.init_edges,
        datastore_records=tables.datastore_records,
        pruned=tables.pruned,
        universe=universe,
    )


def read_quantum_graph(path: str | os.PathLike[str]) -> QuantumGraph:
    """Read a whole ``.qg`` file, every block's checksum verified.

    Raises
    ------
    QuantumGraphFileError
        If the file is missing, not a ``.qg`` file, truncated, corrupted, or of an incompatible format
        or dimension-universe version.
    """
    with log_duration(_log, f"Read quantum graph {path}"):
        reader, universe = _open(path, check_universe=True)
        with reader:
            labels = [task["label"] for task in reader.header["tasks"]]
            tables = read_all_tables(reader, labels, reader.header["dataset_tables"])
            return _graph(reader, universe, tables, _dataset_types(reader, universe))


def read_quanta(path: str | os.PathLike[str], node_ids: Iterable[uuid.UUID]) -> QuantumGraph:
    """Read only some quanta of a ``.qg`` file: what one job needs.

    The result is like ``read_quantum_graph(path).subgraph(node_ids)``: those quanta, their edges,
    their datasets, the datastore records of their existing inputs, the init edges (and datasets) of
    their tasks and the packages dataset; only the dataset types these use. It reads the preamble,
    the header, the index pages and the blocks holding those quanta, nothing else.

    Raises
    ------
    QuantumGraphError
        If a node id is not in the graph (the message names it).
    QuantumGraphFileError
        As for `read_quantum_graph`, for the parts read.
    """
    wanted = unique(np.array([node_id.bytes for node_id in node_ids], dtype="S16"))
    reader, universe = _open(path, check_universe=True)
    with reader:
        labels = [task["label"] for task in reader.header["tasks"]]
        tables = read_subset_tables(reader, wanted, labels)
        used = set(tables.datasets)
        used.update(tables.edges.column("dataset_type").to_pylist())
        used.update(tables.init_edges.column("dataset_type").to_pylist())
        ordered = [name for name in reader.header["dataset_types"] if name in used]
        return _graph(reader, universe, tables, _dataset_types(reader, universe, ordered))


def read_header(path: str | os.PathLike[str], *, check_universe: bool = True) -> QuantumGraphHeader:
    """Read what a ``.qg`` file says about itself (metadata, counts, sizes) without reading blocks.

    Parameters
    ----------
    path
        The file.
    check_universe
        Raise if the graph's dimension universe is not this software's; with False the header still
        says whether it is (``universe_compatible``).
    """
    reader, universe = _open(path, check_universe)
    with reader:
        header = reader.header
        preamble = reader.preamble
        try:
            return QuantumGraphHeader(
                path=reader.path,
                format_version=preamble.format_version,
                universe_name=preamble.universe_name,
                universe_version=preamble.universe_version,
                universe_compatible=universe.is_compatible_with(
                    preamble.universe_name, preamble.universe_version
                ),
                metadata=_metadata(reader),
                task_dimensions=_task_dimensions(reader),
                quantum_counts={task["label"]: int(task["quanta"]) for task in header["tasks"]},
                dataset_types=dict(header["dataset_types"]),
                counts={key: int(value) for key, value in header["counts"].items()},
                file_size=reader.file_size,
                header_size=preamble.header_length,
                block_count=reader.block_count,
                block_size=int(header["block_size"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise QuantumGraphFileError(f"{reader.path} has an incomplete header: {err!r}") from err


def read_dependency_order(path: str | os.PathLike[str]) -> np.ndarray:
    """Every node id of a ``.qg`` file (``S16`` array) in a dependency order, from the stored edges.

    Each quantum comes after all quanta producing its inputs; only node ids and edges are decoded.
    """
    reader, _ = _open(path, check_universe=False)
    with reader:
        node_ids, edges = read_node_tables(reader)
    try:
        return dependency_order(node_ids, edges)
    except QuantumGraphError as err:
        raise QuantumGraphFileError(f"{reader.path}: {err}") from err
