"""The run index: which runs this user submitted and where their submit directories are.

Each submitted run leaves ``$QUANTA_BPS_HOME/runs/<run id>.json`` (default home ``~/.quanta/bps``),
a copy of its ``run.json``. ``bps report`` without ``--id`` lists runs from here; ``--id`` finds the
submit directory from here (or takes a submit-directory path directly).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

from .errors import RunNotFoundError, SubmitDirError
from .submit_dir import RUN_FILE, RunRecord, read_run_record, write_json

__all__ = ["HOME_VARIABLE", "bps_home", "find_run", "list_runs", "record_run"]

_LOG = logging.getLogger(__name__)

HOME_VARIABLE = "QUANTA_BPS_HOME"
"""Environment variable naming the directory of the run index (default ``~/.quanta/bps``)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def bps_home() -> Path:
    """The directory holding the run index: ``$QUANTA_BPS_HOME`` or ``~/.quanta/bps``."""
    value = os.environ.get(HOME_VARIABLE)
    return Path(value).expanduser() if value else Path.home() / ".quanta" / "bps"


def _index_file(run_id: str) -> Path:
    return bps_home() / "runs" / f"{_UNSAFE.sub('_', run_id)}.json"


def record_run(record: RunRecord) -> Path:
    """Add (or update) ``record`` in the index; the index file."""
    path = _index_file(record.run_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, record.to_json_dict())
    except OSError as err:
        raise SubmitDirError(
            f"Cannot write the run index {path} ({err.strerror}); set {HOME_VARIABLE} to a writable directory."
        ) from err
    return path


def find_run(id_or_path: str) -> RunRecord:
    """The run with this engine run id, run name or submit-directory path (read from its ``run.json``)."""
    candidate = Path(id_or_path).expanduser()
    if (candidate / RUN_FILE).is_file():
        return read_run_record(candidate.absolute())
    entry = _index_file(id_or_path)
    indexed = _read_entry(entry) if entry.is_file() else None
    if indexed is None:
        indexed = next((record for record in _entries() if record.run_name == id_or_path), None)
    if indexed is None:
        raise RunNotFoundError(
            f"No run with id {id_or_path!r}: it is not a submit directory and not in the run index "
            f"{bps_home() / 'runs'} (`bps report` lists the runs there)."
        )
    if not (indexed.submit_dir / RUN_FILE).is_file():
        raise RunNotFoundError(
            f"Run {id_or_path!r} was submitted from {indexed.submit_dir}, which no longer holds a {RUN_FILE}."
        )
    return read_run_record(indexed.submit_dir)


def list_runs(*, user: str | None = None, hist_days: float | None = None) -> list[RunRecord]:
    """Indexed runs, newest first; only ``user``'s (operator) and those submitted in the last ``hist_days``.

    A restarted run is listed once, under its latest run id (its earlier ids still find it).
    """
    since = time.time() - hist_days * 86400 if hist_days is not None else None
    latest: dict[Path, RunRecord] = {}
    for record in _entries():
        known = latest.get(record.submit_dir)
        if known is None or record.submitted_at > known.submitted_at:
            latest[record.submit_dir] = record
    runs = [
        record
        for record in latest.values()
        if (user is None or record.operator == user) and (since is None or record.submitted_at >= since)
    ]
    return sorted(runs, key=lambda record: record.submitted_at, reverse=True)


def _entries() -> list[RunRecord]:
    folder = bps_home() / "runs"
    if not folder.is_dir():
        return []
    return [record for path in sorted(folder.glob("*.json")) if (record := _read_entry(path)) is not None]


def _read_entry(path: Path) -> RunRecord | None:
    """One index file, or None (with a warning) if it cannot be read."""
    try:
        return RunRecord.from_json_dict(json.loads(path.read_text()), path)
    except (OSError, json.JSONDecodeError, SubmitDirError, AttributeError) as err:
        _LOG.warning("Ignoring unreadable run-index entry %s: %s", path, err)
        return None
