"""What the phase-per-process benchmarks (``quantum_graph.py``, ``bps_submit.py``) share.

The ``--sizes``/``--quick`` options, peak memory and log lines, running one phase in a fresh
interpreter and reading back its ``BENCH-RESULT`` line, and the head of the results table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "RESULT_PREFIX",
    "add_size_options",
    "log",
    "parse_sizes",
    "peak_mb",
    "print_result",
    "print_table_head",
    "print_title",
    "run_phase_process",
]

RESULT_PREFIX = "BENCH-RESULT "
"""Start of the line through which a phase process hands its figures (JSON) to the driver."""


def peak_mb() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def log(message: str) -> None:
    """A time-stamped progress line on stderr (the table goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_sizes(text: str) -> list[int]:
    """``10000,100_000`` -> [10000, 100000]."""
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def add_size_options(parser: argparse.ArgumentParser, sizes_help: str, quick_sizes: Sequence[int]) -> None:
    """``--sizes`` (comma-separated, parsed by `parse_sizes`) and ``--quick`` (only ``quick_sizes``)."""
    parser.add_argument("--sizes", type=parse_sizes, default=None, help=sizes_help)
    quick = " and ".join(str(size) for size in quick_sizes)
    parser.add_argument("--quick", action="store_true", help=f"sizes {quick} only")


def print_result(outcome: dict[str, Any]) -> None:
    """Hand a phase's figures to the driver (see `run_phase_process`)."""
    print(RESULT_PREFIX + json.dumps(outcome), flush=True)


def run_phase_process(command: Sequence[str], case_dir: Path) -> tuple[dict[str, Any] | None, int]:
    """Run a phase in a fresh interpreter, ``case_dir`` first on its path: (its figures or None, exit code)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(case_dir), os.environ.get("PYTHONPATH", "")])}
    completed = subprocess.run(list(command), stdout=subprocess.PIPE, text=True, check=False, env=env)
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            data: dict[str, Any] = json.loads(line.removeprefix(RESULT_PREFIX))
            return data, completed.returncode
    return None, completed.returncode


def print_title(title: str) -> None:
    """The first line of a report: what, when, and on which machine."""
    print(
        f"quanta {title}  {time.strftime('%Y-%m-%d %H:%M')}  python {platform.python_version()}  "
        f"{os.cpu_count()} CPUs  {platform.machine()}  load {os.getloadavg()[0]:.1f}"
    )


def print_table_head(columns: Sequence[tuple[str, int]], row: Callable[[Sequence[str]], str]) -> None:
    """A blank line, the column names (formatted by ``row``) and a rule under each column."""
    print()
    print(row([name for name, _ in columns]))
    print("  ".join("-" * width for _, width in columns), flush=True)
