"""How pipeline-layer errors reach the user from ``butler`` subcommands contributed by this layer."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..errors import GraphError

__all__ = ["GraphCommandError", "graph_errors"]

F = TypeVar("F", bound=Callable[..., Any])


class GraphCommandError(click.ClickException):
    """A `GraphError` shown as ``Error: <message>``; the process exits with the error's exit code.

    The ``butler`` group only knows `ButlerError`; commands of this layer raise this instead.
    """

    def __init__(self, error: GraphError) -> None:
        super().__init__(str(error))
        # click declares exit_code a class variable; each error carries its own code.
        self.exit_code = error.exit_code  # type: ignore[misc]


def graph_errors(function: F) -> F:
    """Decorate a command callback so that a `GraphError` becomes a `GraphCommandError`."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except GraphError as err:
            raise GraphCommandError(err) from err

    return wrapper  # type: ignore[return-value]
