"""The ``butler`` click group: logging, plugin subcommands, and the one place errors become messages."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar, TypeVar

import click

from ..errors import ButlerError

__all__ = [
    "COMMAND_ENTRY_POINTS",
    "LOG_LEVELS",
    "ButlerGroup",
    "ErrorReportingGroup",
    "configure_logging",
    "log_level_option",
    "main",
    "show_traceback",
]

_LOG = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

COMMAND_ENTRY_POINTS = "quanta.butler_commands"
"""Entry-point group through which higher layers add ``butler`` subcommands (click commands)."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
"""Values of ``--log-level`` (``butler``, ``pipetask``, ``bps``)."""


def log_level_option(default: str, help: str) -> Callable[[F], F]:
    """The ``--log-level`` option of a command group (choices `LOG_LEVELS`, any case)."""
    return click.option(
        "--log-level",
        type=click.Choice(LOG_LEVELS, case_sensitive=False),
        metavar="[" + "|".join(LOG_LEVELS) + "]",
        default=default,
        show_default=True,
        help=help,
    )


class ErrorReportingGroup(click.Group):
    """A command group that is the one place errors become messages.

    An error of one of the `reported_errors` types from any subcommand is shown as
    ``Error: <message>`` and the process exits with the error's ``exit_code`` (1 if it has none);
    the traceback is printed too only with ``--log-level DEBUG``.
    """

    reported_errors: ClassVar[tuple[type[Exception], ...]] = (ButlerError,)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; report a `reported_errors` error as one line and exit with its code."""
        try:
            return super().invoke(ctx)
        except self.reported_errors as err:
            show_traceback(ctx)
            click.echo(f"Error: {err}", err=True)
            ctx.exit(getattr(err, "exit_code", 1))
        except click.ClickException:
            show_traceback(ctx)
            raise


class ButlerGroup(ErrorReportingGroup):
    """The ``butler`` group: reports a `ButlerError` as one line; also loads plugin subcommands."""

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
    if str(ctx.params.get("log_level", "")).upper() == "DEBUG":
        click.echo(traceback.format_exc(), err=True, nl=False)


def configure_logging(level: str) -> None:
    """Log to stderr at ``level`` (one format for every quanta command)."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")  # no-op if already configured
    logging.getLogger().setLevel(level)


@click.group(cls=ButlerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@log_level_option(
    "WARNING",
    "Logging threshold; INFO also logs the time and peak memory of long operations; DEBUG also "
    "prints the traceback of an error.",
)
def main(log_level: str) -> None:
    """Create, fill, query and maintain quanta data repositories."""
    configure_logging(log_level.upper())
