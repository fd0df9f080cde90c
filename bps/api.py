"""The stages of a submission and the operations on submitted runs, as ``bps`` runs them.

``bps submit`` runs acquire (copy the quantum graph in, or make it with ``createQuantumGraph``) ->
cluster -> transform (the generic workflow) -> prepare (the engine's files) -> submit; ``bps
acquire|cluster|transform|prepare`` stop after their stage. Each stage logs its wall time and the
process's peak memory at INFO. `bps.run_control` acts on submitted runs.
"""

from __future__ import annotations

import enum
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from butler.atomic_files import write_text_atomically
from butler.timing import log_duration
from graph.qgraph_io import read_header, read_quantum_graph
from graph.quantum_graph import QuantumGraph

from . import run_index
from .clustering import ClusteredQuantumGraph, cluster_quanta
from .config import BpsConfig, load_bps_config
from .errors import BpsConfigError, EmptyGraphError, StageFailedError, SubmitDirError
from .plugin_registry import load_service_class
from .run_control import require, service_for
from .submit_dir import (
    QGRAPH_GENERATION_LOG,
    RUN_FILE,
    SUBMIT_COPY,
    PreparedRun,
    RunRecord,
    config_copy_path,
    create_submit_dir,
    qgraph_path,
    read_prepared,
    read_run_record,
    write_prepared,
    write_run_record,
)
from .transform import make_generic_workflow
from .wms import Capability, RunInfo, WmsService, WmsWorkflow
from .workflow import GENERIC_WORKFLOW_FILE, GenericWorkflow

__all__ = [
    "Stage",
    "StageResult",
    "acquire_quantum_graph",
    "prepare",
    "run_info",
    "run_stages",
    "submit",
    "submit_prepared_dir",
    "transform",
]

_LOG = logging.getLogger(__name__)


class Stage(enum.IntEnum):
    """The stages in order; ``bps <stage>`` runs every stage up to and including it."""

    ACQUIRE = 1
    CLUSTER = 2
    TRANSFORM = 3
    PREPARE = 4
    SUBMIT = 5


@dataclass(frozen=True)
class StageResult:
    """What the stages that ran produced (None for stages that did not run)."""

    submit_dir: Path
    run: RunInfo
    quanta: int
    clusters: int | None = None
    workflow: GenericWorkflow | None = None
    record: RunRecord | None = None
    service: WmsService | None = None


def run_info(config: BpsConfig) -> RunInfo:
    """Who and what the run is, from the resolved settings."""
    settings = config.settings
    return RunInfo(
        run_name=settings.uniq_proc_name,
        output_run=settings.payload.output_run,
        operator=settings.operator,
        project=settings.project,
        campaign=settings.campaign,
        payload_name=settings.payload.payload_name,
        compute_site=settings.compute_site,
    )


def _given_qgraph(config: BpsConfig) -> Path | None:
    """The ``qgraphFile`` the user gave (None when the graph is to be made in the submit directory)."""
    settings = config.settings
    path = Path(settings.qgraph_file).expanduser().absolute()
    made_here = Path(settings.submit_path).expanduser().absolute() / f"{settings.uniq_proc_name}.qg"
    return None if path == made_here else path


def _load_config(config_path: Path, overrides: Mapping[str, object] | None) -> BpsConfig:
    """The config; with a given ``qgraphFile`` its output run is the graph's (jobs write there)."""
    config = load_bps_config(config_path, overrides)
    given = _given_qgraph(config)
    if given is None or not given.is_file():
        return config
    graph_run = read_header(given).metadata.output_run
    if graph_run == config.settings.payload.output_run:
        return config
    _LOG.info("Output run %s: the quantum graph %s was built for it.", graph_run, given)
    return load_bps_config(config_path, {**(overrides or {}), "outputRun": graph_run})


def run_stages(
    config_path: Path, overrides: Mapping[str, object] | None = None, *, until: Stage = Stage.SUBMIT
) -> StageResult:
    """Run the stages of a submission up to ``until`` into a new submit directory.

    The engine is loaded first (for prepare and submit) so a missing engine fails before any work.
    An empty quantum graph raises `EmptyGraphError` and nothing is submitted.
    """
    config = _load_config(config_path, overrides)
    run = run_info(config)
    service = None
    if until >= Stage.PREPARE:
        service_cls = load_service_class(config.settings.wms_service_class)
        service = service_cls(config.engine_settings(service_cls.settings_class))
        if until is Stage.SUBMIT:
            require(service, Capability.SUBMIT, "submit")
    submit_dir = create_submit_dir(Path(config.settings.submit_path).expanduser())
    _LOG.info("Submit directory: %s", submit_dir)
    shutil.copyfile(config.path, submit_dir / SUBMIT_COPY)
    write_text_atomically(config_copy_path(submit_dir, run.run_name), config.dump_yaml())

    with log_duration(_LOG, "bps acquire"):
        qgraph_file, qgraph = acquire_quantum_graph(config, submit_dir, run)
    result = StageResult(submit_dir, run, qgraph.quantum_count())
    if until is Stage.ACQUIRE:
        return result
    with log_duration(_LOG, "bps cluster"):
        clustered = cluster_quanta(qgraph, config)
    del qgraph
    result = StageResult(submit_dir, run, result.quanta, clusters=len(clustered))
    if until is Stage.CLUSTER:
        return result
    with log_duration(_LOG, "bps transform"):
        workflow = transform(clustered, config, run, qgraph_file, submit_dir)
    del clustered
    result = StageResult(submit_dir, run, result.quanta, result.clusters, workflow)
    if service is None:
        return result
    with log_duration(_LOG, "bps prepare"):
        prepared = prepare(service, workflow, config.settings.wms_service_class, submit_dir)
    result = StageResult(submit_dir, run, result.quanta, result.clusters, workflow, service=service)
    if until is Stage.PREPARE:
        return result
    with log_duration(_LOG, "bps submit"):
        record = submit(service, prepared)
    return StageResult(submit_dir, run, result.quanta, result.clusters, workflow, record, service)


def acquire_quantum_graph(config: BpsConfig, submit_dir: Path, run: RunInfo) -> tuple[Path, QuantumGraph]:
    """The run's quantum graph in the submit directory (copied from ``qgraphFile`` or made here), read.

    Raises `EmptyGraphError` when the graph has no quanta.
    """
    target = qgraph_path(submit_dir, run.run_name)
    source = _given_qgraph(config)
    if source is not None:
        if not source.is_file():
            raise BpsConfigError(f"{config.path}: qgraphFile {str(source)!r} does not exist.")
        _LOG.info("Copying quantum graph %s to %s", source, target)
        shutil.copyfile(source, target)
    else:
        _create_quantum_graph(config, submit_dir, target)
    qgraph = read_quantum_graph(target)
    if qgraph.quantum_count() == 0:
        raise EmptyGraphError(
            f"The quantum graph {target} has no quanta (data query "
            f"{config.settings.payload.data_query!r}): nothing to submit."
        )
    _LOG.info(
        "Quantum graph %s: %d quanta of %d tasks.", target, qgraph.quantum_count(), len(qgraph.task_labels())
    )
    return target, qgraph


def _subprocess_environment() -> dict[str, str]:
    """The environment for stage commands: ours, with this interpreter's scripts first on PATH."""
    environment = dict(os.environ)
    scripts = str(Path(sys.executable).parent)
    path = environment.get("PATH", "")
    if scripts not in path.split(os.pathsep):
        environment["PATH"] = os.pathsep.join([scripts, path]) if path else scripts
    return environment


def _create_quantum_graph(config: BpsConfig, submit_dir: Path, target: Path) -> None:
    """Run ``createQuantumGraph``; its output goes to ``quantumGraphGeneration.out`` (and the INFO log)."""
    command = config.command("createQuantumGraph")
    log_path = submit_dir / QGRAPH_GENERATION_LOG
    _LOG.info("Creating the quantum graph: %s", command)
    last_line = ""
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            command,
            shell=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_subprocess_environment(),
        ) as process,
    ):
        for line in process.stdout or ():
            log.write(line)
            log.flush()
            if line.strip():
                _LOG.info("createQuantumGraph: %s", line.rstrip())
                last_line = line.strip().removeprefix("Error: ")
        code = process.wait()
    if code != 0:
        raise StageFailedError(
            f"createQuantumGraph failed with exit code {code}: {last_line or 'no output'} "
            f"(its output is in {log_path}).",
            exit_code=code if 0 < code < 256 else 1,
        )
    if not target.is_file():
        raise StageFailedError(
            f"createQuantumGraph exited 0 but wrote no {target}; its output is in {log_path}. "
            "Its command line must save the graph to {qgraphFile}."
        )


def transform(
    clustered: ClusteredQuantumGraph, config: BpsConfig, run: RunInfo, qgraph_file: Path, submit_dir: Path
) -> GenericWorkflow:
    """The generic workflow of the clustered graph, validated and saved in the submit directory."""
    workflow = make_generic_workflow(clustered, config, run, qgraph_file)
    workflow.validate()
    workflow.save(submit_dir / GENERIC_WORKFLOW_FILE)
    return workflow


def prepare(
    service: WmsService, workflow: GenericWorkflow, wms_service_class: str, submit_dir: Path
) -> WmsWorkflow:
    """Write the engine's files and ``prepared.json`` (what a later ``--from-submit-dir`` needs)."""
    prepared = service.prepare(workflow, submit_dir)
    write_prepared(
        submit_dir,
        PreparedRun(wms_service_class, service.settings.model_dump(mode="json", by_alias=True), workflow.run),
    )
    return prepared


def submit(service: WmsService, prepared: WmsWorkflow) -> RunRecord:
    """Start the prepared run; save ``run.json`` and add the run to the run index."""
    require(service, Capability.SUBMIT, "submit")
    handle = service.submit(prepared)
    record = RunRecord.from_handle(handle, prepared.run)
    write_run_record(record)
    try:
        run_index.record_run(record)
    except SubmitDirError as err:  # the run is running: say so rather than fail
        _LOG.warning(
            "%s Run %s is submitted; name it by its submit directory %s.",
            err,
            record.run_id,
            record.submit_dir,
        )
    return record


def submit_prepared_dir(submit_dir: Path) -> StageResult:
    """``bps submit --from-submit-dir``: submit a directory made by ``bps prepare`` (or a failed submit).

    The engine's files are written again from ``generic_workflow.json`` before submitting.
    """
    submit_dir = submit_dir.expanduser().absolute()
    if (submit_dir / RUN_FILE).is_file():
        record = read_run_record(submit_dir)
        raise SubmitDirError(
            f"{submit_dir} was already submitted as run {record.run_id}; use `bps restart --id {record.run_id}`."
        )
    info = read_prepared(submit_dir)
    service = service_for(info.wms_service_class, info.engine_settings)
    require(service, Capability.SUBMIT, "submit")
    with log_duration(_LOG, "bps load workflow"):
        workflow = GenericWorkflow.load(submit_dir / GENERIC_WORKFLOW_FILE)
    with log_duration(_LOG, "bps prepare"):
        prepared = prepare(service, workflow, info.wms_service_class, submit_dir)
    with log_duration(_LOG, "bps submit"):
        record = submit(service, prepared)
    quanta = sum(workflow.quanta_counts().values())
    return StageResult(submit_dir, info.run, quanta, None, workflow, record, service)
