"""``bps submit --wait``: follow a run until it ends, with a progress bar on a terminal."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .wms import RunReport, WmsService, WmsState

__all__ = ["DEFAULT_POLL_SECONDS", "follow_run", "progress_wanted"]

_LOG = logging.getLogger(__name__)

DEFAULT_POLL_SECONDS = 2.0

LOG_EVERY_SECONDS = 10.0
"""Without a bar, job counts are logged at most this often (a change of the run's state at once)."""

_DONE_STATES = (WmsState.SUCCEEDED, WmsState.FAILED, WmsState.PRUNED, WmsState.DELETED)


def progress_wanted(requested: bool) -> bool:
    """A bar is drawn only when asked for and stderr is a terminal."""
    return requested and sys.stderr.isatty()


def _done(report: RunReport) -> int:
    return sum(per_state.get(state, 0) for per_state in report.counts.values() for state in _DONE_STATES)


def _describe(report: RunReport) -> str:
    totals: dict[WmsState, int] = {}
    for per_state in report.counts.values():
        for state, count in per_state.items():
            totals[state] = totals.get(state, 0) + count
    parts = [f"{count} {state.name.lower()}" for state, count in sorted(totals.items()) if count]
    return f"{report.state.name}: {', '.join(parts) or 'no jobs started'}"


def follow_run(
    service: WmsService,
    submit_dir: Path,
    *,
    show_bar: bool,
    poll_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RunReport:
    """Poll ``service.report(submit_dir)`` until the run's state is final; the last report.

    With ``show_bar`` a rich progress bar counts finished jobs on stderr; without, each change of
    the run's state is logged at INFO, and
    changes of the job counts at most every `LOG_EVERY_SECONDS`. Polls every ``poll_seconds`` (default
    `DEFAULT_POLL_SECONDS`).
    """
    interval = DEFAULT_POLL_SECONDS if poll_seconds is None else poll_seconds
    report = service.report(submit_dir)
    if not show_bar:
        last_text, last_state, last_time = "", None, -LOG_EVERY_SECONDS
        while True:
            text, now = _describe(report), time.monotonic()
            changed_state = report.state is not last_state
            if text != last_text and (changed_state or now - last_time >= LOG_EVERY_SECONDS):
                _LOG.info("Run %s: %s", report.run.run_name, text)
                last_text, last_state, last_time = text, report.state, now
            if report.state.is_final:
                return report
            sleep(interval)
            report = service.report(submit_dir)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(_describe(report), total=report.total_jobs or None)
        while True:
            bar.update(task, completed=_done(report), description=_describe(report))
            if report.state.is_final:
                return report
            sleep(interval)
            report = service.report(submit_dir)
