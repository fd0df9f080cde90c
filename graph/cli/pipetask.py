"""The ``pipetask`` command: build, inspect and run pipelines and quantum graphs.

`main` is the console-script entry point and the one place a `GraphError` (or `ButlerError`)
becomes ``Error: <message>`` with the error's exit code; the traceback is shown only with
``--log-level DEBUG``. Each subcommand lives in its own module (``build``, ...).
"""

from __future__ import annotations

import click

from butler.cli.app import ErrorReportingGroup, configure_logging, log_level_option
from butler.errors import ButlerError

from ..errors import GraphError
from .build import build
from .qgraph import qgraph
from .report import report
from .run import run
from .show_qgraph import show_qgraph

__all__ = ["PipetaskGroup", "main"]


class PipetaskGroup(ErrorReportingGroup):
    """The ``pipetask`` group: turns pipeline-layer and butler errors into one-line messages.

    A `GraphError` or `ButlerError` from any subcommand is shown as ``Error: <message>`` and the
    process exits with the error's ``exit_code``; the traceback is printed too only with
    ``--log-level DEBUG``.
    """

    reported_errors = (GraphError, ButlerError)


@click.group(cls=PipetaskGroup, context_settings={"help_option_names": ["-h", "--help"]})
@log_level_option("WARNING", "Logging threshold; DEBUG also prints the traceback of an error.")
def main(log_level: str) -> None:
    """Build, inspect and run pipelines and quantum graphs."""
    configure_logging(log_level.upper())


main.add_command(build)
main.add_command(qgraph)
main.add_command(report)
main.add_command(run)
main.add_command(show_qgraph)
