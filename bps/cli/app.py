"""The ``bps`` click group: global logging and progress options, and the one place errors become messages."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass

import click

from butler.cli.app import LOG_LEVELS, ErrorReportingGroup, log_level_option
from butler.errors import ButlerError
from graph.errors import GraphError

from ..errors import BpsError

__all__ = ["LOG_LEVELS", "BpsGroup", "CliState", "configure_logging", "main", "remove_log_handlers"]

_SHORT_FORMAT = "%(levelname)s %(name)s: %(message)s"
_LONG_FORMAT = "%(asctime)s %(levelname)s %(name)s (%(process)d, %(threadName)s): %(message)s"

_installed: list[logging.Handler] = []
"""Handlers this module put on the root logger (replaced on each invocation, e.g. in tests)."""


@dataclass(frozen=True)
class CliState:
    """Global options the subcommands need (``ctx.obj``)."""

    progress: bool
    log_level: str


class _JsonFormatter(logging.Formatter):
    """One JSON object per record (``--log-file x.json``)."""

    def format(self, record: logging.LogRecord) -> str:
        content = {
            "time": record.created,
            "level": record.levelname,
            "name": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            content["exception"] = self.formatException(record.exc_info)
        return json.dumps(content)


def configure_logging(level: str, *, long_log: bool, log_files: tuple[str, ...]) -> None:
    """Log to stderr (and to each ``--log-file``; JSON lines when it ends in ``.json``) at ``level``."""
    root = logging.getLogger()
    remove_log_handlers()
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter(_LONG_FORMAT if long_log else _SHORT_FORMAT))
    _installed.append(stream)
    for name in log_files:
        try:
            handler: logging.Handler = logging.FileHandler(name, encoding="utf-8")
        except OSError as err:
            raise click.BadParameter(f"cannot open {name}: {err.strerror}", param_hint="--log-file") from err
        handler.setFormatter(_JsonFormatter() if name.endswith(".json") else logging.Formatter(_LONG_FORMAT))
        _installed.append(handler)
    for installed in _installed:
        root.addHandler(installed)
    root.setLevel(level)


def remove_log_handlers() -> None:
    """Take the handlers `configure_logging` installed off the root logger, and close them."""
    root = logging.getLogger()
    for handler in _installed:
        root.removeHandler(handler)
        handler.close()
    _installed.clear()


class BpsGroup(ErrorReportingGroup):
    """The ``bps`` group: any error becomes one ``Error: <message>`` line and the error's exit code.

    `BpsError`, `GraphError` and `ButlerError` carry their exit codes; an operating-system error
    exits 1. The traceback is printed too only with ``--log-level DEBUG``.
    """

    reported_errors = (BpsError, GraphError, ButlerError, OSError)


@click.group(cls=BpsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@log_level_option(
    "INFO",
    "Logging threshold; INFO also logs each stage's time and peak memory; DEBUG also prints the "
    "traceback of an error.",
)
@click.option("--long-log", is_flag=True, help="Log with time, process and thread.")
@click.option(
    "--log-file",
    multiple=True,
    metavar="FILE",
    help="Also log to FILE (repeatable; JSON lines if it ends in .json).",
)
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Show a progress bar (only on a terminal) while following a run.",
)
@click.pass_context
def main(
    ctx: click.Context, log_level: str, long_log: bool, log_file: tuple[str, ...], progress: bool
) -> None:
    """Submit campaigns to a workflow engine and follow, cancel and restart their runs."""
    configure_logging(log_level.upper(), long_log=long_log, log_files=log_file)
    ctx.call_on_close(remove_log_handlers)
    ctx.obj = CliState(progress=progress, log_level=log_level.upper())
