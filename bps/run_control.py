"""Operations on submitted runs: report, status, cancel, restart, and ping of an engine.

Each starts from a run's submit directory (found by `bps.run_index.find_run`) and the engine it was
prepared with (``prepared.json``); core checks the engine's capabilities before calling it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from . import run_index
from .errors import BpsConfigError, BpsError, CapabilityError, SubmitDirError
from .plugin_registry import load_service_class
from .submit_dir import RUN_FILE, RunRecord, read_prepared, write_run_record
from .wms import Capability, RunReport, WmsService, WmsState

__all__ = [
    "cancel_run",
    "engine_for_run",
    "ping_engine",
    "report_run",
    "report_runs",
    "require",
    "restart_run",
    "service_for",
    "status_of_run",
]

_LOG = logging.getLogger(__name__)


def service_for(wms_service_class: str, settings: Mapping[str, object] | None = None) -> WmsService:
    """An engine instance for a short name or class path, with settings from a mapping (or defaults)."""
    service_cls = load_service_class(wms_service_class)
    try:
        return service_cls(service_cls.settings_class.model_validate(dict(settings or {})))
    except ValueError as err:
        raise BpsConfigError(f"Invalid settings for engine {wms_service_class!r}: {err}") from err


def require(service: WmsService, capability: Capability, verb: str) -> None:
    """Raise `CapabilityError` unless ``service`` declares ``capability``."""
    if capability not in service.capabilities:
        raise CapabilityError(f"Engine {service.name!r} cannot {verb}.")


def engine_for_run(record: RunRecord) -> WmsService:
    """The engine of a submitted run, with the settings it was prepared with."""
    try:
        info = read_prepared(record.submit_dir)
    except SubmitDirError:
        return service_for(record.engine)
    return service_for(info.wms_service_class, info.engine_settings)


def status_of_run(id_or_path: str) -> WmsState:
    """The overall state of a run (``bps status``)."""
    record = run_index.find_run(id_or_path)
    service = engine_for_run(record)
    require(service, Capability.STATUS, "report a status")
    return service.status(record.submit_dir)


def report_run(record: RunRecord) -> RunReport:
    """The engine's report of one run."""
    service = engine_for_run(record)
    require(service, Capability.REPORT, "report")
    return service.report(record.submit_dir)


def report_runs(
    id_or_path: str | None, *, user: str | None = None, hist_days: float | None = None
) -> list[RunReport]:
    """Reports of one run (``--id``) or of the indexed runs (filtered by operator and age)."""
    if id_or_path is not None:
        return [report_run(run_index.find_run(id_or_path))]
    reports = []
    for record in run_index.list_runs(user=user, hist_days=hist_days):
        if not (record.submit_dir / RUN_FILE).is_file():
            _LOG.info("Skipping run %s: its submit directory %s is gone.", record.run_id, record.submit_dir)
            continue
        try:
            reports.append(report_run(record))
        except BpsError as err:  # one broken run (engine gone, files removed) must not hide the others
            _LOG.warning("Cannot report run %s: %s", record.run_id, err)
    return reports


def cancel_run(id_or_path: str) -> RunRecord:
    """Stop a run and its jobs (``bps cancel``)."""
    record = run_index.find_run(id_or_path)
    service = engine_for_run(record)
    require(service, Capability.CANCEL, "cancel")
    service.cancel(record.submit_dir)
    return record


def restart_run(id_or_path: str) -> RunRecord:
    """Run again what did not succeed (``bps restart``); ``run.json`` and the index get the new handle."""
    old = run_index.find_run(id_or_path)
    service = engine_for_run(old)
    require(service, Capability.RESTART, "restart")
    handle = service.restart(old.submit_dir)
    record = RunRecord.from_handle(handle, old.run, submitted_at=time.time())
    write_run_record(record)
    run_index.record_run(record)
    return record


def ping_engine(wms_service_class: str) -> str:
    """Check an engine is usable here (``bps ping``); its one-line description."""
    service = service_for(wms_service_class)
    require(service, Capability.PING, "ping")
    return service.ping()
