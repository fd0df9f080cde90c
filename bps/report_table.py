"""``bps report`` output: the run summary, the per-label job table, failed jobs, exit codes, JSON.

Pure functions from `bps.wms.RunReport` objects to text, so the tables are tested without an engine.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .wms import JobReport, RunReport, WmsState

__all__ = [
    "PAYLOAD_EXIT_CODES",
    "STATE_COLUMNS",
    "detail_text",
    "exit_code_table",
    "failed_jobs",
    "failed_jobs_table",
    "format_table",
    "label_table",
    "reports_to_json",
    "summary_table",
]

STATE_COLUMNS = (
    WmsState.UNKNOWN,
    WmsState.MISFIT,
    WmsState.UNREADY,
    WmsState.READY,
    WmsState.PENDING,
    WmsState.RUNNING,
    WmsState.DELETED,
    WmsState.HELD,
    WmsState.SUCCEEDED,
    WmsState.FAILED,
    WmsState.PRUNED,
)
"""The per-label table's state columns, in ctrl_bps's order."""

PAYLOAD_EXIT_CODES = frozenset({1, 2})
"""Exit codes of ``pipetask`` meaning the payload failed (a task raised, a usage error); others are
infrastructure (killed, out of memory, missing files)."""


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain-text table: a header line, a dashed line, then rows; numeric columns right-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    numeric = [
        bool(cells) and all(isinstance(row[i], int | float) for row in cells) for i in range(len(headers))
    ]
    widths = [max([len(header), *(len(str(row[i])) for row in cells)]) for i, header in enumerate(headers)]

    def line(values: Sequence[object]) -> str:
        text = " ".join(
            str(value).rjust(width) if right else str(value).ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        )
        return text.rstrip()

    return "\n".join([line(headers), line(["-" * width for width in widths]), *(line(row) for row in cells)])


def _cell(value: object) -> object:
    if isinstance(value, int | float | str):
        return value
    return "" if value is None else str(value)


def _flag(report: RunReport) -> str:
    """``X``: for a run not finished, H if jobs are held, else D if deleted, else F if failed."""
    if report.state.is_final:
        return ""
    for state, flag in ((WmsState.HELD, "H"), (WmsState.DELETED, "D"), (WmsState.FAILED, "F")):
        if any(per_state.get(state, 0) for per_state in report.counts.values()):
            return flag
    return ""


def summary_table(reports: Sequence[RunReport]) -> str:
    """One row per run: ``X STATE %S ID OPERATOR PROJECT CAMPAIGN PAYLOAD RUN``."""
    headers = ("X", "STATE", "%S", "ID", "OPERATOR", "PROJECT", "CAMPAIGN", "PAYLOAD", "RUN")
    rows = [
        (
            _flag(report),
            report.state.name,
            round(report.percent_succeeded),
            report.run_id,
            report.run.operator,
            report.run.project,
            report.run.campaign,
            report.run.payload_name,
            report.run.run_name,
        )
        for report in reports
    ]
    return format_table(headers, rows)


def _labels(report: RunReport) -> list[str]:
    return list(dict.fromkeys([*report.expected, *report.counts]))


def _label_counts(report: RunReport, label: str) -> dict[WmsState, int]:
    """The label's jobs by state; jobs the engine does not know yet count as UNREADY."""
    counts = {state: int(report.counts.get(label, {}).get(state, 0)) for state in WmsState}
    missing = report.expected.get(label, 0) - sum(counts.values())
    if missing > 0:
        counts[WmsState.UNREADY] += missing
    return counts


def label_table(report: RunReport) -> str:
    """One row per job label with its jobs per state and EXPECTED, then a TOTAL row."""
    headers = ("LABEL", *(state.name for state in STATE_COLUMNS), "EXPECTED")
    rows: list[tuple[object, ...]] = []
    totals = dict.fromkeys(STATE_COLUMNS, 0)
    expected_total = 0
    for label in _labels(report):
        counts = _label_counts(report, label)
        expected = report.expected.get(label, 0)
        rows.append((label, *(counts[state] for state in STATE_COLUMNS), expected))
        for state in STATE_COLUMNS:
            totals[state] += counts[state]
        expected_total += expected
    rows.append(("TOTAL", *(totals[state] for state in STATE_COLUMNS), expected_total))
    return format_table(headers, rows)


def failed_jobs(report: RunReport) -> list[JobReport]:
    """The run's failed jobs, in report order."""
    return [job for job in report.jobs if job.state is WmsState.FAILED]


def failed_jobs_table(report: RunReport) -> str:
    """Failed jobs with attempts, exit code, reason and log path (empty text when none failed)."""
    jobs = failed_jobs(report)
    if not jobs:
        return ""
    rows = [
        (
            job.name,
            job.label,
            job.attempts,
            "" if job.exit_code is None else job.exit_code,
            job.reason,
            job.log_path,
        )
        for job in jobs
    ]
    return format_table(("JOB", "LABEL", "ATTEMPTS", "EXIT", "REASON", "LOG"), rows)


def _exit_codes(report: RunReport) -> dict[str, dict[int, int]]:
    """Per label, exit code -> failed jobs: the engine's summary, else counted from the failed jobs."""
    if report.exit_code_summary:
        return {label: dict(codes) for label, codes in report.exit_code_summary.items()}
    summary: dict[str, dict[int, int]] = {}
    for job in failed_jobs(report):
        if job.exit_code is not None:
            codes = summary.setdefault(job.label, {})
            codes[job.exit_code] = codes.get(job.exit_code, 0) + 1
    return summary


def exit_code_table(report: RunReport) -> str:
    """Per label, failed jobs with payload exit codes (1, 2) and with infrastructure exit codes."""
    summary = _exit_codes(report)
    rows = []
    for label in _labels(report):
        codes = summary.get(label, {})
        payload = {code: n for code, n in codes.items() if code in PAYLOAD_EXIT_CODES}
        infra = {code: n for code, n in codes.items() if code not in PAYLOAD_EXIT_CODES}
        rows.append(
            (
                label,
                sum(payload.values()),
                _codes_text(payload),
                sum(infra.values()),
                _codes_text(infra),
            )
        )
    headers = (
        "LABEL",
        "PAYLOAD ERROR COUNT",
        "PAYLOAD ERROR CODES",
        "INFRASTRUCTURE ERROR COUNT",
        "INFRASTRUCTURE ERROR CODES",
    )
    return format_table(headers, rows)


def _codes_text(codes: Mapping[int, int]) -> str:
    return ", ".join(
        f"{code} (x{count})" if count > 1 else str(code) for code, count in sorted(codes.items())
    )


def detail_text(report: RunReport, *, return_exit_codes: bool = False) -> str:
    """``bps report --id``: a header, the per-label table, failed jobs, and optionally exit codes."""
    submitted = (
        time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(report.submitted_at))
        if report.submitted_at
        else "?"
    )
    header = [
        f"Run:        {report.run.run_name}  ({report.state.name}, {report.percent_succeeded:.0f}% succeeded)",
        f"Run id:     {report.run_id}  (engine {report.engine}, site {report.run.compute_site})",
        f"Output run: {report.run.output_run}",
        f"Path:       {report.submit_dir}",
        f"Submitted:  {submitted}",
        *(f"Note:       {message}" for message in report.messages),
    ]
    parts = ["\n".join(header), label_table(report)]
    failed = failed_jobs_table(report)
    if failed:
        parts.append(f"Failed jobs:\n{failed}")
    if return_exit_codes:
        parts.append(f"Exit codes of failed jobs:\n{exit_code_table(report)}")
    return "\n\n".join(parts)


def _jsonable(value: Any) -> Any:
    if isinstance(value, WmsState):
        return value.name
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(_jsonable(key)): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def reports_to_json(reports: Sequence[RunReport], *, return_exit_codes: bool = False) -> str:
    """The reports as JSON: every field, states by name, plus ``percent_succeeded`` (and exit codes)."""
    items = []
    for report in reports:
        content = {field.name: getattr(report, field.name) for field in dataclasses.fields(report)}
        content["run"] = dataclasses.asdict(report.run)
        content["jobs"] = [dataclasses.asdict(job) for job in report.jobs]
        content["percent_succeeded"] = round(report.percent_succeeded, 2)
        if return_exit_codes:
            content["exit_code_summary"] = _exit_codes(report)
        else:
            content.pop("exit_code_summary")
        items.append(_jsonable(content))
    return json.dumps({"format_version": 1, "runs": items}, indent=2)
