"""The submit directory: where one run's config, quantum graph, workflow, engine files and logs live.

Layout (``<run>`` is ``uniqProcName``)::

    submit.yaml                   copy of the user's submit file
    <run>_config.yaml             the fully resolved config
    <run>.qg                      the quantum graph (copied or made by createQuantumGraph)
    quantumGraphGeneration.out    output of createQuantumGraph (when the graph is made here)
    generic_workflow.json         the generic workflow
    prepared.json                 what ``bps submit --from-submit-dir`` needs (engine, its settings)
    run.json                      the submitted run: engine, engine version, run id, run name, ...
    jobs/<label>/<job>.log        each job's stdout and stderr (written by the engine)
    <engine>/                     the engine's own files

``report``, ``status``, ``cancel`` and ``restart`` start from ``run.json``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from butler.atomic_files import write_text_atomically

from .errors import SubmitDirError
from .wms import RunHandle, RunInfo

__all__ = [
    "FORMAT_VERSION",
    "PREPARED_FILE",
    "QGRAPH_GENERATION_LOG",
    "RUN_FILE",
    "SUBMIT_COPY",
    "PreparedRun",
    "RunRecord",
    "config_copy_path",
    "create_submit_dir",
    "is_submit_dir",
    "qgraph_path",
    "read_prepared",
    "read_run_record",
    "write_json",
    "write_prepared",
    "write_run_record",
]

FORMAT_VERSION = 1
RUN_FILE = "run.json"
PREPARED_FILE = "prepared.json"
SUBMIT_COPY = "submit.yaml"
QGRAPH_GENERATION_LOG = "quantumGraphGeneration.out"


def create_submit_dir(path: Path) -> Path:
    """Create ``path`` (and parents) for a new run; refuse a directory that already holds something."""
    path = path.absolute()
    if path.exists():
        if not path.is_dir():
            raise SubmitDirError(f"Submit directory {path} exists and is not a directory.")
        if any(path.iterdir()):
            raise SubmitDirError(
                f"Submit directory {path} already exists and is not empty; it may hold another run. "
                "Choose another outputRun or submitPath, or remove the directory."
            )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SubmitDirError(f"Cannot create submit directory {path}: {err.strerror}.") from err
    return path


def is_submit_dir(path: Path) -> bool:
    """True if ``path`` is a directory holding a ``run.json`` or a ``prepared.json``."""
    return (path / RUN_FILE).is_file() or (path / PREPARED_FILE).is_file()


def config_copy_path(submit_dir: Path, run_name: str) -> Path:
    """Where the fully resolved config of the run is saved."""
    return submit_dir / f"{run_name}_config.yaml"


def qgraph_path(submit_dir: Path, run_name: str) -> Path:
    """Where the run's quantum graph is kept in the submit directory."""
    return submit_dir / f"{run_name}.qg"


def write_json(path: Path, content: dict[str, Any]) -> None:
    """Write ``content`` (with a leading ``format_version``) as indented JSON, atomically."""
    write_text_atomically(path, json.dumps({"format_version": FORMAT_VERSION, **content}, indent=2) + "\n")


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise SubmitDirError(
            f"{path.parent} has no {path.name}: it is not the submit directory of a {what} run."
        ) from err
    except (OSError, json.JSONDecodeError) as err:
        raise SubmitDirError(f"Cannot read {path}: {err}.") from err
    if not isinstance(content, dict) or content.get("format_version") != FORMAT_VERSION:
        version = content.get("format_version") if isinstance(content, dict) else None
        raise SubmitDirError(f"{path}: format_version {version!r} is not {FORMAT_VERSION}.")
    return content


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """The content of ``run.json``: a submitted run as ``report/status/cancel/restart`` find it."""

    engine: str
    engine_version: str
    run_id: str
    run_name: str
    submit_dir: Path
    operator: str
    project: str
    campaign: str
    payload: str
    output_run: str
    submitted_at: float
    compute_site: str = ""

    @classmethod
    def from_handle(cls, handle: RunHandle, run: RunInfo, submitted_at: float | None = None) -> RunRecord:
        """The record of a run the engine just submitted (or restarted)."""
        return cls(
            engine=handle.engine,
            engine_version=handle.engine_version,
            run_id=handle.run_id,
            run_name=handle.run_name,
            submit_dir=handle.submit_dir.absolute(),
            operator=run.operator,
            project=run.project,
            campaign=run.campaign,
            payload=run.payload_name,
            output_run=run.output_run,
            submitted_at=time.time() if submitted_at is None else submitted_at,
            compute_site=run.compute_site,
        )

    @property
    def handle(self) -> RunHandle:
        """The engine's handle of the run."""
        return RunHandle(self.engine, self.engine_version, self.run_id, self.run_name, self.submit_dir)

    @property
    def run(self) -> RunInfo:
        """Who and what the run is, as at submission."""
        return RunInfo(
            run_name=self.run_name,
            output_run=self.output_run,
            operator=self.operator,
            project=self.project,
            campaign=self.campaign,
            payload_name=self.payload,
            compute_site=self.compute_site,
        )

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-able fields (paths as strings)."""
        content = dataclasses.asdict(self)
        content["submit_dir"] = str(self.submit_dir)
        return content

    @classmethod
    def from_json_dict(cls, content: dict[str, Any], source: Path) -> RunRecord:
        """Rebuild a record from `to_json_dict` output; ``source`` names the file in errors."""
        names = {field.name for field in dataclasses.fields(cls)}
        values = {key: value for key, value in content.items() if key in names}
        try:
            values["submit_dir"] = Path(values["submit_dir"])
            return cls(**values)
        except (KeyError, TypeError) as err:
            raise SubmitDirError(f"{source}: incomplete run record ({err}).") from err


def write_run_record(record: RunRecord) -> Path:
    """Save ``record`` as ``run.json`` in its submit directory; the file."""
    path = record.submit_dir / RUN_FILE
    write_json(path, record.to_json_dict())
    return path


def read_run_record(submit_dir: Path) -> RunRecord:
    """The ``run.json`` of a submitted run; `SubmitDirError` if there is none or it is unreadable."""
    path = submit_dir / RUN_FILE
    return RunRecord.from_json_dict(_read_json(path, "submitted"), path)


@dataclasses.dataclass(frozen=True)
class PreparedRun:
    """The content of ``prepared.json``: what submitting a prepared directory needs besides the workflow."""

    wms_service_class: str
    """As in the config (a short name or a dotted class path)."""
    engine_settings: dict[str, Any]
    """The engine's typed settings, dumped by alias."""
    run: RunInfo


def write_prepared(submit_dir: Path, prepared: PreparedRun) -> Path:
    """Save ``prepared.json``; the file."""
    path = submit_dir / PREPARED_FILE
    write_json(
        path,
        {
            "wms_service_class": prepared.wms_service_class,
            "engine_settings": prepared.engine_settings,
            "run": dataclasses.asdict(prepared.run),
        },
    )
    return path


def read_prepared(submit_dir: Path) -> PreparedRun:
    """The ``prepared.json`` of a prepared directory; `SubmitDirError` if it is missing or unreadable."""
    path = submit_dir / PREPARED_FILE
    content = _read_json(path, "prepared")
    try:
        return PreparedRun(
            wms_service_class=str(content["wms_service_class"]),
            engine_settings=dict(content["engine_settings"]),
            run=RunInfo(**content["run"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise SubmitDirError(f"{path}: incomplete prepared-run record ({err}).") from err
