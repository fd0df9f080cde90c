"""Connections, Task/PipelineTask, sub-tasks, quantum execution (metadata and log) and init outputs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from framework_tasks import AddConfig, AddConnections, AddTask, GatherTask, ScaleTask

from butler.butler import Butler
from butler.datasets import DatasetRef, DatasetType
from butler.datastore import DatastoreRecord
from butler.log_records import ButlerLogRecords
from butler.packages import Packages
from butler.quantum_backed import QuantumBackedButler
from butler.repository import create_repository
from butler.task_metadata import TaskMetadata
from graph.connections import Input, Output, PipelineTaskConnections
from graph.errors import ConfigError, ConnectionDefinitionError, TaskExecutionError, TaskImportError
from graph.init_outputs import write_init_outputs
from graph.quantum import Quantum
from graph.quantum_execution import QuantumStatus, execute_quantum
from graph.task_loading import load_task_class, task_class_path

# -- connections -----------------------------------------------------------------------------------


def test_connections_collects_declarations_and_dimensions() -> None:
    assert AddConnections.dimensions == ("instrument", "detector")
    assert list(AddConnections.all_connections) == ["input", "offset", "output", "column_names"]
    connections = AddConnections()
    assert connections.inputs == {"input"}
    assert connections.prerequisite_inputs == {"offset"}
    assert connections.outputs == {"output"}
    assert connections.init_outputs == {"column_names"}


def test_configured_dataset_type_names() -> None:
    config = AddConfig()
    assert config.connections.output == "sums"
    config.connections.output = "sums_twice"
    connections = AddConnections(config=config)
    assert connections.connection("output").name == "sums_twice"
    assert AddConnections.all_connections["output"].name == "sums"  # the declaration is unchanged


def test_subclass_may_drop_a_connection() -> None:
    class Optional(PipelineTaskConnections, dimensions=("instrument",)):
        a = Input(name="a", storage_class="NumpyArray", dimensions=("instrument",))
        b = Output(name="b", storage_class="NumpyArray", dimensions=("instrument",))

        def __init__(self, **kwargs: object) -> None:
            super().__init__(**kwargs)  # type: ignore[arg-type]
            self.inputs.discard("a")

    assert [attr for attr, _ in Optional().iter_connections()] == ["b"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name", "storage_class": "X"}, "Invalid dataset type name"),
        ({"name": "ok", "storage_class": ""}, "needs a storage class"),
        ({"name": "ok", "storage_class": "X", "dimensions": "visit"}, "tuple of dimension names"),
        ({"name": "ok", "storage_class": "X", "minimum": 2}, "not multiple=True"),
    ],
)
def test_bad_connection_declarations(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConnectionDefinitionError, match=message):
        Input(**kwargs)  # type: ignore[arg-type]


# -- tasks -----------------------------------------------------------------------------------------


def test_task_has_frozen_config_logger_and_subtask() -> None:
    task = AddTask(name="myAdd")
    assert task.log.name == "quanta.myAdd"
    assert task.scale.log.name == "quanta.myAdd.scale"  # type: ignore[attr-defined]
    assert isinstance(task.scale, ScaleTask)  # type: ignore[attr-defined]
    with pytest.raises(ConfigError):
        task.config.addend = 3.0


def test_task_refuses_config_of_another_class() -> None:
    with pytest.raises(ConfigError, match="needs a AddConfig"):
        AddTask(config=ScaleTask.ConfigClass())  # type: ignore[arg-type]


def test_run_and_metadata_with_subtask() -> None:
    config = AddConfig()
    config.scale.factor = 10.0
    task = AddTask(config=config)
    result = task.run(np.array([1.0, 2.0]), {"value": 0.5})
    np.testing.assert_array_equal(result.output, [25.0, 35.0])
    metadata = task.full_metadata()
    assert metadata["scale.factor"] == 10.0
    assert metadata["addEndCpuTime"] >= metadata["addStartCpuTime"]


def test_load_task_class() -> None:
    assert load_task_class(task_class_path(AddTask)) is AddTask
    with pytest.raises(TaskImportError, match="no module named 'no_such_module'"):
        load_task_class("no_such_module.Task")
    with pytest.raises(TaskImportError, match="has no 'Missing'"):
        load_task_class("framework_tasks.Missing")
    with pytest.raises(TaskImportError, match="not a PipelineTask"):
        load_task_class("framework_tasks.ScaleTask")


def test_import_error_inside_task_module_is_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_task_module.py").write_text("import math\nvalue = math.sqrt('x')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        TaskImportError, match=r"raised TypeError: must be real number.*broken_task_module.py:2"
    ):
        load_task_class("broken_task_module.Task")


# -- quantum execution ---------------------------------------------------------------------------


SUMS = DatasetType("sums", ["instrument", "detector"], "NumpyArray")
NUMBERS = DatasetType("numbers", ["instrument", "detector"], "NumpyArray")
OFFSET = DatasetType("offset", ["instrument"], "StructuredDataDict")
TOTAL = DatasetType("total", ["instrument"], "NumpyArray")


@pytest.fixture
def butler(tmp_path: Path) -> Iterator[Butler]:
    create_repository(tmp_path / "repo")
    butler = Butler(tmp_path / "repo", run="inputs")
    registry = butler.registry
    registry.insert_dimension_records("instrument", [{"name": "Cam", "detector_max": 4}])
    registry.insert_dimension_records("detector", [{"instrument": "Cam", "id": d} for d in range(2)])
    for dataset_type in (SUMS, NUMBERS, OFFSET, TOTAL):
        registry.register_dataset_type(dataset_type)
    for label, dimensions in (("add", ["instrument", "detector"]), ("gather", ["instrument"])):
        registry.register_dataset_type(DatasetType(f"{label}_metadata", dimensions, "TaskMetadata"))
        registry.register_dataset_type(DatasetType(f"{label}_log", dimensions, "ButlerLogRecords"))
    for detector in range(2):
        butler.put(np.arange(3.0) + detector, "numbers", instrument="Cam", detector=detector)
    butler.put({"value": 0.5}, "offset", instrument="Cam")
    yield butler
    butler.close()


def _ref(butler: Butler, name: str, run: str = "out", **data_id: object) -> DatasetRef:
    dataset_type = butler.registry.get_dataset_type(name)
    return DatasetRef.new(
        dataset_type, butler.registry.expand_data_id(data_id, dimensions=dataset_type.dimensions), run
    )


def _add_quantum(butler: Butler, detector: int) -> Quantum:
    data_id = butler.registry.expand_data_id(instrument="Cam", detector=detector)
    inputs = {
        "input": [butler.find_dataset("numbers", instrument="Cam", detector=detector)],
        "offset": [butler.find_dataset("offset", instrument="Cam")],
    }
    return Quantum(
        "add",
        data_id,
        {k: [r for r in v if r is not None] for k, v in inputs.items()},
        {"output": [_ref(butler, "sums", instrument="Cam", detector=detector)]},
        metadata_output=_ref(butler, "add_metadata", instrument="Cam", detector=detector),
        log_output=_ref(butler, "add_log", instrument="Cam", detector=detector),
    )


def test_execute_quantum_writes_outputs_metadata_and_log(butler: Butler) -> None:
    quantum = _add_quantum(butler, 1)
    outcome = execute_quantum(AddTask(), quantum, butler)
    assert outcome.status is QuantumStatus.SUCCEEDED
    np.testing.assert_array_equal(
        butler.get(quantum.outputs["output"][0]), (np.arange(3.0) + 1 + 1 + 0.5) * 2
    )
    metadata = butler.get(quantum.metadata_output)
    assert isinstance(metadata, TaskMetadata)
    assert metadata["add.scale.factor"] == 2.0
    assert metadata["quantum.status"] == "succeeded"
    assert metadata["quantum.max_rss_mb"] > 0
    log = butler.get(quantum.log_output)
    assert isinstance(log, ButlerLogRecords)
    messages = [record.message for record in log]
    assert "Adding 1.0." in messages and "Scaling by 2.0." in messages
    assert {record.name for record in log} >= {"quanta.add", "quanta.add.scale"}


def test_failed_quantum_writes_log_but_not_metadata(butler: Butler) -> None:
    config = AddConfig()
    config.fail = True
    quantum = _add_quantum(butler, 0)
    with pytest.raises(TaskExecutionError, match="RuntimeError: told to fail"):
        execute_quantum(AddTask(config=config), quantum, butler)
    assert not butler.exists(quantum.metadata_output)
    assert not butler.exists(quantum.outputs["output"][0])
    log = butler.get(quantum.log_output)
    assert any(record.level == "ERROR" and "failed" in record.message for record in log)


def test_no_work_found_counts_as_success(butler: Butler) -> None:
    config = AddConfig()
    config.nothing = True
    quantum = _add_quantum(butler, 0)
    outcome = execute_quantum(AddTask(config=config), quantum, butler)
    assert outcome.status is QuantumStatus.NO_WORK
    assert butler.get(quantum.metadata_output)["quantum.status"] == "no_work"


def test_quantum_backed_butler_gather_with_deferred_load_and_minimum(butler: Butler) -> None:
    for detector in range(2):
        execute_quantum(AddTask(), _add_quantum(butler, detector), butler)
    sums = butler.registry.query_datasets("sums", "out")
    records = {
        ref: [
            DatastoreRecord.from_row(r)
            for r in butler.registry.fetch_datastore_records(butler.datastore.name, [ref.id])
        ]
        for ref in sums
    }
    total_ref = _ref(butler, "total", instrument="Cam")
    quantum = Quantum(
        "gather", butler.registry.expand_data_id(instrument="Cam"), {"inputs": sums}, {"total": [total_ref]}
    )
    qbb = QuantumBackedButler(butler.file_datastore, butler.storage_classes, records, [total_ref])
    outcome = execute_quantum(GatherTask(), quantum, qbb)
    assert outcome.status is QuantumStatus.SUCCEEDED
    expected = sum((np.arange(3.0) + d + 1.5) * 2 for d in range(2))
    assert qbb.provenance().actual_inputs == {ref.id for ref in sums}
    np.testing.assert_array_equal(qbb.get(total_ref), expected)

    one_input = Quantum("gather", quantum.data_id, {"inputs": sums[:1]}, {"total": [total_ref]})
    assert execute_quantum(GatherTask(), one_input, qbb).status is QuantumStatus.NO_WORK  # minimum=2


def test_log_level_is_restored(butler: Butler) -> None:
    task = AddTask()
    task.log.setLevel(logging.WARNING)
    execute_quantum(task, _add_quantum(butler, 0), butler)
    assert task.log.level == logging.WARNING


# -- init outputs -----------------------------------------------------------------------------------


def test_init_outputs_written_once_and_compared(butler: Butler) -> None:
    packages = Packages({"numpy": "2.0"})
    report = write_init_outputs(butler, [AddTask()], "out", packages=packages)
    assert sorted(ref.dataset_type.name for ref in report.written) == ["add_config", "add_schema", "packages"]
    assert butler.get("add_schema", {}, collections="out") == {"columns": ["value"]}
    stored = butler.get("add_config", {}, collections="out")
    assert isinstance(stored, AddConfig) and stored.addend == 1.0

    again = write_init_outputs(butler, [AddTask()], "out", packages=packages)
    assert again.written == [] and "add_config" in again.unchanged

    changed = AddConfig()
    changed.addend = 5.0
    with pytest.raises(
        TaskExecutionError, match=r"add_config in output run 'out' differs.*addend.*--clobber-config"
    ):
        write_init_outputs(butler, [AddTask(config=changed)], "out", packages=packages)
    with pytest.raises(
        TaskExecutionError, match=r"packages in output run .*numpy: 2.0 -> 2.1.*--clobber-versions"
    ):
        write_init_outputs(butler, [AddTask()], "out", packages=Packages({"numpy": "2.1"}))

    replaced = write_init_outputs(
        butler, [AddTask(config=changed)], "out", packages=packages, clobber_config=True
    )
    assert replaced.replaced == ["add_config"]
    assert butler.get("add_config", {}, collections="out").addend == 5.0
