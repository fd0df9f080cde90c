"""The ``butler`` click group: logging, plugin subcommands, and the one place errors become messages."""

from __future__ import annotations

import logging
import traceback
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import click

from ..errors import ButlerError

__all__ = ["COMMAND_ENTRY_POINTS", "LOG_LEVELS", "ButlerGroup", "configure_logging", "main", "show_traceback"]

_LOG = logging.getLogger(__name__)

COMMAND_ENTRY_POINTS = "quanta.butler_commands"
"""Entry-point group through which higher layers add ``butler`` subcommands (click commands)."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
"""Values of ``butler --log-level``."""


class ButlerGroup(click.Group):
    """The ``butler`` group: the one place errors become messages; also loads plugin subcommands.

    A `ButlerError` from any subcommand is shown as ``Error: <message>`` and the process exits with
    the error's ``exit_code``; the traceback is printed too only with ``--log-level DEBUG``.
    """

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; report a `ButlerError` as one line and exit with its code."""
        try:
            return super().invoke(ctx)
        except ButlerError as err:
            show_traceback(ctx)
            click.echo(f"Error: {err}", err=True)
            ctx.exit(err.exit_code)
        except click.ClickException:
            show_traceback(ctx)
            raise

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Built-in subcommands plus those registered under `COMMAND_ENTRY_POINTS`."""
        return sorted({*super().list_commands(ctx), *(ep.name for ep in _command_entry_points())})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A built-in subcommand, or one loaded from its entry point (None if it cannot be loaded)."""
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        for entry_point in _command_entry_points():
            if entry_point.name == cmd_name:
                try:
                    loaded = entry_point.load()
                except Exception as err:  # A broken plugin must not break the other commands.
                    _LOG.warning(
                        "Cannot load butler subcommand %r from %s: %s", cmd_name, entry_point.value, err
                    )
                    return None
                if isinstance(loaded, click.Command):
                    return loaded
                _LOG.warning("Entry point %s (%s) is not a click command.", cmd_name, entry_point.value)
        return None


def _command_entry_points() -> list[EntryPoint]:
    return list(entry_points(group=COMMAND_ENTRY_POINTS))


def show_traceback(ctx: click.Context) -> None:
    """Print the traceback of the error being handled if the command runs with ``--log-level DEBUG``."""
    if ctx.params.get("log_level") == "DEBUG":
        click.echo(traceback.format_exc(), err=True, nl=False)


def configure_logging(level: str) -> None:
    """Log to stderr at ``level`` (one format for every quanta command)."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")  # no-op if already configured
    logging.getLogger().setLevel(level)


@click.group(cls=ButlerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    metavar="[" + "|".join(LOG_LEVELS) + "]",
    default="WARNING",
    show_default=True,
    help="Logging threshold; INFO also logs the time and peak memory of long operations; DEBUG also "
    "prints the traceback of an error.",
)
def main(log_level: str) -> None:
    """Create, fill, query and maintain quanta data repositories."""
    configure_logging(log_level.upper())
