"""Arguments and options shared by ``butler`` subcommands, and the output they share (results, progress, prompts)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import click

from .format import OUTPUT_FORMATS, render

__all__ = [
    "Progress",
    "collections_option",
    "comma_list",
    "confirm_option",
    "dataset_selection_options",
    "emit",
    "format_option",
    "limit_option",
    "limited",
    "parse_key_values",
    "progress_option",
    "repo_argument",
    "split_commas",
    "where_options",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


# -- parsing ----------------------------------------------------------------------------------------


def split_commas(values: Sequence[str]) -> tuple[str, ...]:
    """Values of a repeatable option, each possibly comma-separated, flattened and stripped."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def comma_list(_ctx: click.Context, _param: click.Parameter, values: Sequence[str]) -> tuple[str, ...]:
    """Click callback: `split_commas`."""
    return split_commas(values)


def parse_key_values(values: Sequence[str], *, commas: bool = False) -> dict[str, str]:
    """``NAME=VALUE`` items (with ``commas``, each may hold several, comma-separated) -> mapping.

    Raises `click.BadParameter` for an item without ``=`` or a name.
    """
    items = split_commas(values) if commas else tuple(values)
    result: dict[str, str] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}.")
        result[name.strip()] = text.strip() if commas else text
    return result


def _parse_bind(_ctx: click.Context, _param: click.Parameter, values: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs -> mapping; values become int or float when they read as one."""
    return {name: _bind_value(text) for name, text in parse_key_values(values).items()}


def _bind_value(text: str) -> int | float | str:
    if any(char.isdigit() for char in text):  # so that e.g. "nan" or "inf" stay strings
        with contextlib.suppress(ValueError):
            return int(text)
        with contextlib.suppress(ValueError):
            return float(text)
    return text


# -- decorators -------------------------------------------------------------------------------------


def repo_argument(function: F) -> F:
    """The ``REPO`` argument: a repository's root directory (or its ``butler.yaml``)."""
    return click.argument("repo")(function)


def format_option(function: F) -> F:
    """``--format table|json|csv`` as ``output_format``."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(OUTPUT_FORMATS),
        default="table",
        show_default=True,
        help="Output as an aligned table, a JSON list of objects, or CSV.",
    )(function)


def where_options(function: F) -> F:
    """``--where/-d EXPR`` and repeatable ``--bind NAME=VALUE`` (a dict)."""
    function = click.option(
        "--bind",
        multiple=True,
        callback=_parse_bind,
        metavar="NAME=VALUE",
        help="Value of a bind parameter (:NAME) of the WHERE expression; repeatable. Numbers become int/float.",
    )(function)
    return click.option(
        "--where",
        "-d",
        default="",
        help="WHERE expression constraining the results, e.g. \"instrument = 'DemoCam' AND exposure > 10\".",
    )(function)


def limit_option(function: F) -> F:
    """``--limit N``."""
    return click.option(
        "--limit",
        type=click.IntRange(min=1),
        default=None,
        help="Show at most this many results (after sorting).",
    )(function)


def collections_option(help_text: str) -> Callable[[F], F]:
    """Repeatable, comma-separable ``--collections`` (a tuple of names)."""
    return click.option(
        "--collections", multiple=True, callback=comma_list, metavar="NAME[,NAME...]", help=help_text
    )


def dataset_selection_options(*, find_first: bool) -> Callable[[F], F]:
    """``--collections``, ``--dataset-type``, ``--where``/``--bind`` and ``--find-first/--find-all``.

    The options of every command that acts on the datasets a query finds (see `selection`);
    ``find_first`` is the default of ``--find-first/--find-all``.
    """

    def decorate(function: F) -> F:
        function = click.option(
            "--find-first/--find-all",
            default=find_first,
            show_default=True,
            help="--find-first: per data ID, only the dataset in the first of --collections that has "
            "one; --find-all: every dataset in any of them.",
        )(function)
        function = where_options(function)
        function = click.option(
            "--dataset-type",
            "dataset_types",
            multiple=True,
            callback=comma_list,
            metavar="NAME[,NAME...]",
            help="Dataset type names or shell-style patterns; repeatable [default: every dataset type].",
        )(function)
        return collections_option(
            "Collections to search, in order; repeatable [default: every collection, with --find-all]."
        )(function)

    return decorate


def progress_option(function: F) -> F:
    """``--progress/--no-progress`` as ``progress`` (None: decide by whether stderr is a terminal)."""
    return click.option(
        "--progress/--no-progress",
        default=None,
        help="Show a progress bar on stderr [default: when stderr is a terminal].",
    )(function)


def confirm_option(function: F) -> F:
    """``--no-confirm`` (alias ``--force``) as ``no_confirm``."""
    return click.option(
        "--no-confirm",
        "--force",
        "no_confirm",
        is_flag=True,
        help="Do not ask for confirmation (for scripts).",
    )(function)


# -- output -----------------------------------------------------------------------------------------


def emit(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], output_format: str, empty: str) -> None:
    """Print rows in the requested format; a table with no rows is replaced by ``empty``."""
    if not rows and output_format == "table":
        click.echo(empty)
    else:
        click.echo(render(rows, columns, output_format))


def limited(rows: list[dict[str, Any]], limit: int | None, noun: str) -> list[dict[str, Any]]:
    """The first ``limit`` rows; says on stderr how many there were when some are left out."""
    if limit is None or len(rows) <= limit:
        return rows
    click.echo(f"Showing the first {limit} of {len(rows)} {noun}.", err=True)
    return rows[:limit]


class Progress:
    """Progress bars of one command on stderr, or nothing when they are off.

    Parameters
    ----------
    enabled
        The ``--progress/--no-progress`` value; None means "when stderr is a terminal".
    """

    def __init__(self, enabled: bool | None) -> None:
        self._stream = sys.stderr  # at call time: click's test runner replaces it
        self.enabled = self._stream.isatty() if enabled is None else enabled

    @contextlib.contextmanager
    def items(self, items: Sequence[T], label: str) -> Iterator[Iterable[T]]:
        """``items``, advancing a bar as they are consumed (pass it to a function that iterates lazily)."""
        if not self.enabled:
            yield items
            return
        with click.progressbar(items, label=label, show_pos=True, file=self._stream) as bar:
            yield bar

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[None]:
        """One step whose inside cannot be watched: a bar that fills when the step finishes."""
        if not self.enabled:
            yield
            return
        with click.progressbar(length=1, label=label, file=self._stream) as bar:
            yield
            bar.update(1)
