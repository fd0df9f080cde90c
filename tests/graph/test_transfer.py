"""``butler transfer-from-graph``: outputs written by jobs (no registry) are registered, once, by task.

The graph here is assembled with the `QuantumGraph` constructor (two tasks of
tests/graph/framework_tasks.py: ``add`` per detector, then ``gather`` per instrument) and its
quanta run as batch jobs do, through a `QuantumBackedButler`. `Run` and `make_repository` are
shared with test_report.py and test_provenance.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from databases import DatabaseLocation
from framework_tasks import AddConfig, AddTask, GatherTask

from butler.butler import Butler
from butler.cli import main as butler_main
from butler.collections import CollectionType
from butler.datasets import DatasetRef, DatasetType
from butler.datastore import DatastoreRecord
from butler.packages import Packages
from butler.quantum_backed import QuantumBackedButler
from butler.repository import create_repository
from graph.cli.transfer_commands import aggregate_graph, transfer_from_graph_command
from graph.errors import QuantumGraphError
from graph.qgraph_io import write_quantum_graph
from graph.quantum_execution import QuantumStatus, execute_quantum
from graph.quantum_graph import (
    DATASTORE_RECORDS_SCHEMA,
    EDGES_SCHEMA,
    INIT_EDGES_SCHEMA,
    EdgeKind,
    QuantumGraph,
    QuantumGraphMetadata,
    dataset_schema,
    quanta_schema,
)
from graph.task import PipelineTask
from graph.transfer import RUN_LEVEL, output_dataset_types, transfer_from_graph, update_output_chain

OUTPUT_RUN = "u/test/run1"
OUTPUT = "u/test"
INPUTS = "inputs"
DETECTORS = 4

NUMBERS = DatasetType("numbers", ["instrument", "detector"], "NumpyArray")
OFFSET = DatasetType("offset", ["instrument"], "StructuredDataDict")
SUMS = DatasetType("sums", ["instrument", "detector"], "NumpyArray")
TOTAL = DatasetType("total", ["instrument"], "NumpyArray")
TASK_DIMENSIONS = {"add": ("instrument", "detector"), "gather": ("instrument",)}


def make_repository(root: Path, database: DatabaseLocation | None = None) -> Path:
    """A repository with instrument Cam, 4 detectors, ``numbers`` per detector and an ``offset``."""
    create_repository(
        root,
        db=database.url if database else None,
        namespace=database.namespace if database else None,
    )
    with Butler(root, run=INPUTS) as butler:
        registry = butler.registry
        registry.insert_dimension_records("instrument", [{"name": "Cam", "detector_max": DETECTORS}])
        registry.insert_dimension_records(
            "detector", [{"instrument": "Cam", "id": d} for d in range(DETECTORS)]
        )
        registry.register_dataset_type(NUMBERS)
        registry.register_dataset_type(OFFSET)
        for detector in range(DETECTORS):
            butler.put(np.arange(3.0) + detector, "numbers", instrument="Cam", detector=detector)
        butler.put({"value": 0.5}, "offset", instrument="Cam")
    return root


def _types() -> dict[str, DatasetType]:
    types = [NUMBERS, OFFSET, SUMS, TOTAL]
    for label, dimensions in TASK_DIMENSIONS.items():
        types.append(DatasetType(f"{label}_metadata", dimensions, "TaskMetadata"))
        types.append(DatasetType(f"{label}_log", dimensions, "ButlerLogRecords"))
        types.append(DatasetType(f"{label}_config", (), "Config"))
    types.append(DatasetType("add_schema", (), "StructuredDataDict"))
    types.append(DatasetType("packages", (), "Packages"))
    return {t.name: t for t in types}


def make_graph(butler: Butler) -> QuantumGraph:
    """The graph ``add`` (one quantum per detector) -> ``gather``, outputs into OUTPUT_RUN."""
    types = _types()
    universe = butler.registry.universe
    datasets: dict[str, list[dict[str, Any]]] = {name: [] for name in types}
    edges: list[dict[str, Any]] = []
    init_edges: list[dict[str, Any]] = []

    def existing(ref: DatasetRef) -> bytes:
        datasets[ref.dataset_type.name].append(
            {"dataset_id": ref.id.bytes, "run": ref.run, "produced": False, **ref.data_id.mapping}
        )
        return ref.id.bytes

    def produced(name: str, **data_id: Any) -> bytes:
        dataset_id = uuid.uuid4().bytes
        datasets[name].append({"dataset_id": dataset_id, "run": OUTPUT_RUN, "produced": True, **data_id})
        return dataset_id

    def edge(node: bytes, dataset_id: bytes, name: str, connection: str, kind: EdgeKind) -> None:
        edges.append(
            {
                "node_id": node,
                "dataset_id": dataset_id,
                "dataset_type": name,
                "connection": connection,
                "kind": kind,
            }
        )

    offset = existing(butler.registry.query_datasets("offset", INPUTS)[0])
    add_rows, sums = [], []
    for ref in sorted(butler.registry.query_datasets("numbers", INPUTS), key=lambda r: r.data_id["detector"]):
        node = uuid.uuid4().bytes
        ids = {"instrument": "Cam", "detector": ref.data_id["detector"]}
        add_rows.append({"node_id": node, **ids})
        edge(node, existing(ref), "numbers", "input", EdgeKind.INPUT)
        edge(node, offset, "offset", "offset", EdgeKind.PREREQUISITE)
        sums.append(produced("sums", **ids))
        edge(node, sums[-1], "sums", "output", EdgeKind.OUTPUT)
        edge(node, produced("add_metadata", **ids), "add_metadata", "_metadata", EdgeKind.METADATA)
        edge(node, produced("add_log", **ids), "add_log", "_log", EdgeKind.LOG)
    gather = uuid.uuid4().bytes
    for dataset_id in sums:
        edge(gather, dataset_id, "sums", "inputs", EdgeKind.INPUT)
    edge(gather, produced("total", instrument="Cam"), "total", "total", EdgeKind.OUTPUT)
    edge(
        gather,
        produced("gather_metadata", instrument="Cam"),
        "gather_metadata",
        "_metadata",
        EdgeKind.METADATA,
    )
    edge(gather, produced("gather_log", instrument="Cam"), "gather_log", "_log", EdgeKind.LOG)

    def init_edge(task: str, name: str, connection: str, kind: EdgeKind) -> None:
        init_edges.append(
            {
                "task": task,
                "dataset_id": produced(name),
                "dataset_type": name,
                "connection": connection,
                "kind": kind,
            }
        )

    init_edge("add", "add_config", "_config", EdgeKind.CONFIG)
    init_edge("add", "add_schema", "column_names", EdgeKind.INIT_OUTPUT)
    init_edge("gather", "gather_config", "_config", EdgeKind.CONFIG)
    init_edge("", "packages", "packages", EdgeKind.PACKAGES)

    records = [
        {**record.to_row(), "dataset_id": record.dataset_id.bytes}
        for record in butler.all_datastore_records()
    ]
    return QuantumGraph(
        metadata=QuantumGraphMetadata(
            universe_name=universe.name,
            universe_version=universe.version,
            input_collections=(INPUTS,),
            output_run=OUTPUT_RUN,
            output=OUTPUT,
        ),
        dataset_types=types,
        task_dimensions=TASK_DIMENSIONS,
        quanta={
            "add": pa.Table.from_pylist(
                add_rows, schema=quanta_schema(universe.group(TASK_DIMENSIONS["add"]))
            ),
            "gather": pa.Table.from_pylist(
                [{"node_id": gather, "instrument": "Cam"}],
                schema=quanta_schema(universe.group(("instrument",))),
            ),
        },
        datasets={
            name: pa.Table.from_pylist(rows, schema=dataset_schema(types[name].dimensions))
            for name, rows in datasets.items()
        },
        edges=pa.Table.from_pylist(edges, schema=EDGES_SCHEMA),
        init_edges=pa.Table.from_pylist(init_edges, schema=INIT_EDGES_SCHEMA),
        datastore_records=pa.Table.from_pylist(records, schema=DATASTORE_RECORDS_SCHEMA),
        universe=universe,
    )


class Run:
    """Runs a graph's quanta the way batch jobs do: a `QuantumBackedButler` each, no registry writes."""

    def __init__(self, butler: Butler, graph: QuantumGraph) -> None:
        self.butler = butler
        self.graph = graph

    def _qbb(self, inputs: Iterable[DatasetRef], outputs: Iterable[DatasetRef]) -> QuantumBackedButler:
        datastore = self.butler.file_datastore
        known = self.graph.records_of(ref.id for ref in inputs)
        records: dict[DatasetRef, list[DatastoreRecord]] = {}
        for ref in inputs:
            found = known.get(ref.id)
            if found is None:  # produced upstream: where the upstream job put it, if it did
                storage_class = self.butler.storage_classes[ref.dataset_type.storage_class_name]
                found = datastore.with_file_sizes(datastore.predict_records(ref, storage_class))
            if found is not None:
                records[ref] = found
        return QuantumBackedButler(datastore, self.butler.storage_classes, records, outputs)

    def init(self) -> None:
        """What pre-exec-init-qbb writes: configs, init outputs, packages (files only)."""
        refs = [
            ref for label in self.graph.task_labels() for ref in self.graph.init_output_refs(label).values()
        ]
        qbb = self._qbb([], [*refs, self.graph.packages_ref()])
        for label, task in (("add", AddTask()), ("gather", GatherTask())):
            qbb.put(task.config, self.graph.init_output_refs(label)["_config"])
        qbb.put({"columns": ["value"]}, self.graph.init_output_refs("add")["column_names"])
        qbb.put(Packages({"numpy": np.__version__}), self.graph.packages_ref())

    def quantum(
        self, label: str, detector: int | None = None, task: PipelineTask | None = None
    ) -> QuantumStatus:
        """Run the quantum of ``label`` (for ``detector``), with ``task`` (default: a plain one)."""
        for node_id in self.graph.node_ids(label):
            quantum = self.graph.quantum(node_id)
            if detector is None or quantum.data_id["detector"] == detector:
                qbb = self._qbb(quantum.all_input_refs(), quantum.all_output_refs())
                # Inputs an upstream quantum did not write are left out, as the executors do.
                inputs = {c: [r for r in refs if qbb.exists(r)] for c, refs in quantum.inputs.items()}
                task = task or (AddTask() if label == "add" else GatherTask())
                return execute_quantum(
                    task, replace(quantum, inputs=inputs), qbb, raise_on_failure=False
                ).status
        raise AssertionError(f"no {label} quantum for detector {detector}")

    def all(self, failing: Sequence[int] = (), skipped: Sequence[int] = ()) -> None:
        """Init, every add quantum (``failing`` detectors raise, ``skipped`` never run), then gather if it can."""
        self.init()
        for detector in range(DETECTORS):
            if detector not in skipped:
                self.quantum("add", detector, failing_add() if detector in failing else None)
        if not failing and not skipped:
            self.quantum("gather")


def failing_add() -> AddTask:
    config = AddConfig()
    config.fail = True
    return AddTask(config=config)


@pytest.fixture
def repo(tmp_path: Path, database: DatabaseLocation) -> Path:
    return make_repository(tmp_path / "repo", database)


@pytest.fixture
def butler(repo: Path) -> Iterator[Butler]:
    with Butler(repo) as butler:
        yield butler


def _registered(butler: Butler, name: str) -> list[DatasetRef]:
    return butler.registry.query_datasets(name, OUTPUT_RUN, find_first=False)


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """The butler subcommands of this layer, whether or not the entry points are installed yet."""
    for command in (transfer_from_graph_command, aggregate_graph):
        assert command.name is not None
        monkeypatch.setitem(butler_main.commands, command.name, command)


def test_output_dataset_types_map_to_their_tasks(butler: Butler) -> None:
    producers = output_dataset_types(make_graph(butler))
    assert producers == {
        "sums": "add",
        "add_metadata": "add",
        "add_log": "add",
        "add_config": "add",
        "add_schema": "add",
        "total": "gather",
        "gather_metadata": "gather",
        "gather_log": "gather",
        "gather_config": "gather",
        "packages": RUN_LEVEL,
    }


def test_transfer_registers_what_exists_once(butler: Butler) -> None:
    graph = make_graph(butler)
    Run(butler, graph).all()
    assert not butler.registry.has_collection(OUTPUT_RUN)  # jobs never touch the registry

    report = transfer_from_graph(butler, graph, register_dataset_types=True, update_chain=True)
    add, gather, run = report.by_task["add"], report.by_task["gather"], report.by_task[RUN_LEVEL]
    assert (add.registered, add.already_present, add.missing) == (3 * DETECTORS + 2, 0, 0)
    assert (gather.registered, gather.missing) == (4, 0)
    assert (run.registered, run.missing) == (1, 0)
    assert report.run_registered
    assert "sums" in report.dataset_types_registered
    assert report.chain == (OUTPUT_RUN, INPUTS)
    assert butler.registry.get_collection_chain(OUTPUT) == (OUTPUT_RUN, INPUTS)
    # Same UUIDs as the graph predicted, readable through the registry.
    total = _registered(butler, "total")
    assert [ref.id for ref in total] == [
        ref.id for ref in graph.all_output_refs() if ref.dataset_type.name == "total"
    ]
    expected = sum((np.arange(3.0) + d + 1.5) * 2 for d in range(DETECTORS))
    np.testing.assert_array_equal(butler.get(total[0]), expected)
    assert butler.verify().ok

    again = transfer_from_graph(butler, graph, update_chain=True)
    assert again.total.registered == 0
    assert again.total.already_present == report.total.registered
    assert not again.run_registered and not again.dataset_types_registered
    assert butler.registry.get_collection_chain(OUTPUT) == (OUTPUT_RUN, INPUTS)
    assert butler.verify().ok


def test_transfer_after_failures_registers_only_files(butler: Butler) -> None:
    graph = make_graph(butler)
    Run(butler, graph).all(failing=[1], skipped=[3])
    report = transfer_from_graph(butler, graph, register_dataset_types=True)
    add = report.by_task["add"]
    # detectors 0 and 2: sums + metadata + log; detector 1: log only; detector 3: nothing; + config, schema
    assert add.registered == 2 * 3 + 1 + 2
    assert add.missing == 2 + 3  # detector 1's sums and metadata; detector 3's three outputs
    assert report.by_task["gather"].missing == 3 and report.by_task["gather"].registered == 1  # config only
    assert len(_registered(butler, "add_log")) == 3
    assert len(_registered(butler, "add_metadata")) == 2
    assert butler.verify().ok  # no row without a file, no file without a row
    assert report.chain == () and report.output_chain is None  # not asked to update it

    # The rest of the work is done later (a retry); the next merge brings in only the new outputs.
    runner = Run(butler, graph)
    runner.quantum("add", 3)
    later = transfer_from_graph(butler, graph)
    assert later.by_task["add"].registered == 3
    assert later.by_task["add"].missing == 2
    assert butler.verify().ok


def test_missing_dataset_types_are_named(butler: Butler) -> None:
    graph = make_graph(butler)
    with pytest.raises(QuantumGraphError, match="add_config.*not registered.*--register-dataset-types"):
        transfer_from_graph(butler, graph)
    butler.registry.register_dataset_type(
        DatasetType("sums", ["instrument", "detector"], "StructuredDataDict")
    )
    with pytest.raises(QuantumGraphError, match="sums .*storage class"):
        transfer_from_graph(butler, graph, register_dataset_types=True)


def test_output_chain_is_created_prepended_and_checked(butler: Butler) -> None:
    registry = butler.registry
    registry.register_run("u/test/run0")
    registry.register_run(OUTPUT_RUN)
    assert update_output_chain(registry, OUTPUT, "u/test/run0", [INPUTS, OUTPUT]) == ("u/test/run0", INPUTS)
    assert update_output_chain(registry, OUTPUT, OUTPUT_RUN, [OUTPUT]) == (OUTPUT_RUN, "u/test/run0", INPUTS)
    assert update_output_chain(registry, OUTPUT, OUTPUT_RUN, [OUTPUT]) == (OUTPUT_RUN, "u/test/run0", INPUTS)
    registry.register_collection("tagged", CollectionType.TAGGED)
    with pytest.raises(QuantumGraphError, match="'tagged' is a TAGGED collection"):
        update_output_chain(registry, "tagged", OUTPUT_RUN, [])


@pytest.mark.usefixtures("commands")
def test_cli_transfer_and_alias(repo: Path, tmp_path: Path) -> None:
    with Butler(repo) as butler:
        graph = make_graph(butler)
        Run(butler, graph).all(failing=[2])
    path = tmp_path / "run.qg"
    write_quantum_graph(graph, path)
    runner = CliRunner()
    result = runner.invoke(
        butler_main,
        ["transfer-from-graph", str(path), str(repo), "--register-dataset-types", "--update-output-chain"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["task", "registered", "already", "present", "missing"]
    assert next(line for line in lines if line.startswith("add ")).split() == ["add", "12", "0", "2"]
    assert any(line.startswith("(run: packages)") for line in lines)
    assert f"{OUTPUT} = {OUTPUT_RUN}, {INPUTS}" in result.output
    again = runner.invoke(butler_main, ["aggregate-graph", str(path), str(repo)], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "0 registered, 14 already present, 5 missing" in again.output


@pytest.mark.usefixtures("commands")
def test_cli_missing_types_is_an_error(repo: Path, tmp_path: Path) -> None:
    with Butler(repo) as butler:
        graph = make_graph(butler)
    path = tmp_path / "run.qg"
    write_quantum_graph(graph, path)
    result = CliRunner().invoke(butler_main, ["transfer-from-graph", str(path), str(repo)])
    assert result.exit_code == 1
    assert "not registered" in result.output


PIPELINE = """
tasks:
  add:
    class: framework_tasks.AddTask
  gather:
    class: framework_tasks.GatherTask
"""


@pytest.mark.slow
def test_builder_jobs_and_merge_end_to_end(tmp_path: Path, database: DatabaseLocation) -> None:
    """A built graph, run job by job with run-qbb (no registry), then merged twice."""
    from graph.builder import QuantumGraphBuilder
    from graph.pipeline import Pipeline
    from graph.pipeline_graph import PipelineGraph
    from graph.pre_exec_init import pre_exec_init
    from graph.qgraph_io import read_quantum_graph
    from graph.run_qbb import run_qbb

    repo = make_repository(tmp_path / "repo", database)
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    path = tmp_path / "run.qg"
    with Butler(repo) as butler:
        pipeline_graph = PipelineGraph.from_pipeline(Pipeline.from_yaml(str(tmp_path / "pipeline.yaml")))
        graph = QuantumGraphBuilder(
            pipeline_graph,
            butler,
            [INPUTS],
            OUTPUT_RUN,
            "instrument = 'Cam'",
            output=OUTPUT,
            pipeline_yaml=PIPELINE,
        ).build()
        write_quantum_graph(graph, path)
        pre_exec_init(butler, graph)
    for node_id in graph.topological_order():
        assert run_qbb(repo, path, [node_id]).exit_code == 0
    with Butler(repo) as butler:
        before = {t.name: len(_registered(butler, t.name)) for t in butler.registry.query_dataset_types()}
        report = transfer_from_graph(butler, read_quantum_graph(path), update_chain=True)
        assert report.by_task["add"].registered == 3 * DETECTORS
        assert report.by_task["gather"].registered == 3
        assert report.total.missing == 0
        assert report.by_task["add"].already_present == 2  # config and schema: pre-exec-init registered them
        assert butler.verify().ok
        expected = sum((np.arange(3.0) + d + 1.5) * 2 for d in range(DETECTORS))
        np.testing.assert_array_equal(butler.get("total", instrument="Cam", collections=OUTPUT), expected)
        again = transfer_from_graph(butler, read_quantum_graph(path), update_chain=True)
        assert again.total.registered == 0
        after = {t.name: len(_registered(butler, t.name)) for t in butler.registry.query_dataset_types()}
        assert after["sums"] == DETECTORS and before["sums"] == 0
