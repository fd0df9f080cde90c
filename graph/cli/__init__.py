"""The ``pipetask`` command: build, inspect and run pipelines and quantum graphs.

`main` is the console-script entry point and the one place a `GraphError` (or `ButlerError`)
becomes ``Error: <message>`` with the error's exit code; the traceback is shown only with
``--log-level DEBUG``. Each subcommand lives in its own module (``build``, ...).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

import click

from butler.errors import ButlerError

from ..errors import GraphError
from .build import build

__all__ = ["LOG_LEVELS", "PipetaskGroup", "main"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
"""Values of ``pipetask --log-level``."""


class PipetaskGroup(click.Group):
    """The ``pipetask`` group: turns pipeline-layer and butler errors into one-line messages.

    A `GraphError` or `ButlerError` from any subcommand is shown as ``Error: <message>`` and the
    process exits with the error's ``exit_code``; the traceback is printed too only with
    ``--log-level DEBUG``.
    """

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; report a `GraphError`/`ButlerError` as one message and exit with its code."""
        try:
            return super().invoke(ctx)
        except (GraphError, ButlerError) as err:
            _show_traceback(ctx)
            click.echo(f"Error: {err}", err=True)
            ctx.exit(err.exit_code)
        except click.ClickException:
            _show_traceback(ctx)
            raise


def _show_traceback(ctx: click.Context) -> None:
    if ctx.params.get("log_level") == "DEBUG":
        click.echo(traceback.format_exc(), err=True, nl=False)


def _configure_logging(level: str) -> None:
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")  # no-op if already configured
    logging.getLogger().setLevel(level)


@click.group(cls=PipetaskGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    metavar="[" + "|".join(LOG_LEVELS) + "]",
    default="WARNING",
    show_default=True,
    help="Logging threshold; DEBUG also prints the traceback of an error.",
)
def main(log_level: str) -> None:
    """Build, inspect and run pipelines and quantum graphs."""
    _configure_logging(log_level.upper())


main.add_command(build)
