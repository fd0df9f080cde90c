"""``pipetask build``: read a pipeline, apply overrides, check it, and show, save or draw it.

The pipeline options (``-p``, ``-c``, ``-C``) and `PipelineCommand` are shared with the other
``pipetask`` subcommands that start from a pipeline: ``-c`` and ``-C`` apply in the order they
appear on the command line, after the pipeline file's own config, the last one winning.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

from butler.atomic_files import write_text_atomically

from ..config import format_config, format_history
from ..errors import ConfigFieldError, SubsetError
from ..pipeline import Pipeline
from ..pipeline_drawing import to_dot, to_mermaid, to_svg
from ..pipeline_graph import PipelineGraph

__all__ = ["SHOW_CHOICES", "PipelineCommand", "build", "load_pipeline", "pipeline_options", "show_text"]

_LOG = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., Any])

_ORDER_KEY = "quanta.config_override_order"
_OVERRIDE_PARAMS = {"config_overrides": "-c", "config_files": "-C"}
SHOW_CHOICES = (
    "pipeline",
    "config=LABEL[:PATTERN]",
    "history=LABEL:FIELD",
    "tasks",
    "dataset-types",
    "graph",
)
"""What ``--show`` accepts."""


class PipelineCommand(click.Command):
    """A command with `pipeline_options` that remembers the command-line order of ``-c`` and ``-C``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Record which of ``-c``/``-C`` came when, then parse as usual."""
        _, _, order = self.make_parser(ctx).parse_args(args=list(args))
        ctx.meta[_ORDER_KEY] = [
            _OVERRIDE_PARAMS[param.name] for param in order if param.name in _OVERRIDE_PARAMS
        ]
        return super().parse_args(ctx, args)


def pipeline_options(function: _F) -> _F:
    """Add ``-p/--pipeline``, ``-c/--config`` and ``-C/--config-file`` (use with `PipelineCommand`)."""
    options = [
        click.option(
            "-p",
            "--pipeline",
            "pipeline",
            required=True,
            metavar="PIPELINE[#LABELS]",
            help="Pipeline YAML file; '#a,b' after the path keeps only those task labels or labeled subsets.",
        ),
        click.option(
            "-c",
            "--config",
            "config_overrides",
            multiple=True,
            metavar="LABEL:FIELD=VALUE",
            help="Set a config field of one task (value parsed as YAML); repeatable, applied in "
            "command-line order together with -C, after the pipeline's config.",
        ),
        click.option(
            "-C",
            "--config-file",
            "config_files",
            multiple=True,
            metavar="LABEL:FILE.py",
            help="Run a Python config override file on one task's config (``config`` bound to it); repeatable.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def load_pipeline(
    ctx: click.Context, pipeline: str, config_overrides: Sequence[str], config_files: Sequence[str]
) -> Pipeline:
    """Read ``pipeline`` and add the ``-c``/``-C`` overrides in command-line order."""
    loaded = Pipeline.from_yaml(pipeline)
    order: list[str] = ctx.meta.get(_ORDER_KEY) or (
        ["-c"] * len(config_overrides) + ["-C"] * len(config_files)
    )
    values = {"-c": list(config_overrides), "-C": list(config_files)}
    options = []
    for option in order:
        if values[option]:
            options.append((option, values[option].pop(0)))
    options.extend(("-c", text) for text in values["-c"])
    options.extend(("-C", text) for text in values["-C"])
    loaded.add_command_line_overrides(options)
    return loaded


# -- text renderings -------------------------------------------------------------------------------


def _dims(names: Sequence[str]) -> str:
    return "{" + ", ".join(names) + "}"


def _tasks_text(graph: PipelineGraph) -> str:
    lines = []
    for label, node in graph.tasks.items():
        lines.append(f"{label}: {node.task_class_name} {_dims(node.dimensions.required)}")
    return "\n".join(lines)


def _dataset_types_text(graph: PipelineGraph) -> str:
    lines = []
    for name, node in graph.dataset_types.items():
        flags = [
            flag
            for flag, on in (
                ("init", node.is_init),
                ("calibration", node.is_calibration),
                ("prerequisite", node.is_prerequisite),
            )
            if on
        ]
        if node.producer is not None:
            origin = f"written by {node.producer}"
        elif node.consumers:
            origin = "overall input"
        else:
            origin = "written by the framework"
        readers = f"; read by {', '.join(node.consumers)}" if node.consumers else ""
        lines.append(
            f"{name}: {node.storage_class or '?'} {_dims(node.dimensions.required)}"
            f"{' [' + ', '.join(flags) + ']' if flags else ''}; {origin}{readers}"
        )
    return "\n".join(lines)


def _graph_text(graph: PipelineGraph) -> str:
    lines = []
    for label, node in graph.tasks.items():
        automatic = {f"{label}_metadata", f"{label}_log", f"{label}_config"}
        reads = []
        for edge in node.inputs + node.prerequisite_inputs:
            text = edge.full_name
            if edge.kind == "prerequisite_input":
                text += " (prerequisite)"
            if edge.multiple:
                text += " [multiple]"
            reads.append(text)
        writes = [edge.full_name for edge in node.outputs if edge.dataset_type_name not in automatic]
        lines.append(f"{label} {_dims(node.dimensions.required)}")
        lines.append(f"    {', '.join(reads) or '(nothing)'} -> {', '.join(writes) or '(nothing)'}")
        init_reads = [edge.full_name for edge in node.init_inputs]
        init_writes = [
            edge.full_name for edge in node.init_outputs if edge.dataset_type_name not in automatic
        ]
        if init_reads or init_writes:
            lines.append(
                f"    init: {', '.join(init_reads) or '(nothing)'} -> {', '.join(init_writes) or '(nothing)'}"
            )
    lines.append("(every task also writes <label>_config, <label>_metadata and <label>_log)")
    return "\n".join(lines)


def _split_label(value: str, what: str, example: str) -> tuple[str, str]:
    label, _, rest = value.partition(":")
    if not label:
        raise click.BadParameter(f"--show {what}= needs a task label, as in --show {what}={example}.")
    return label, rest


def show_text(item: str, pipeline: Pipeline, graph: PipelineGraph) -> str:
    """The text ``--show item`` prints (see `SHOW_CHOICES`)."""
    name, equals, argument = item.partition("=")
    if name == "pipeline" and not equals:
        return yaml.safe_dump(pipeline.expand_overrides().to_primitives(), sort_keys=False).rstrip()
    if name == "tasks" and not equals:
        return _tasks_text(graph)
    if name == "dataset-types" and not equals:
        return _dataset_types_text(graph)
    if name == "graph" and not equals:
        return _graph_text(graph)
    if name == "config" and equals:
        label, pattern = _split_label(argument, "config", "isr:*flat*")
        config = _graph_config(graph, label)
        text = format_config(config, pattern or "*")
        if not text:
            paths = [path for path, _, _ in config.iter_fields()]
            close = difflib.get_close_matches(pattern, paths, n=3)
            hint = (
                f"; did you mean {' or '.join(map(repr, close))}?"
                if close
                else " (patterns are globs: *flat*)."
            )
            raise ConfigFieldError(f"No config field of task {label!r} matches {pattern!r}{hint}")
        return text
    if name == "history" and equals:
        label, path = _split_label(argument, "history", "isr:do_flat")
        if not path:
            raise click.BadParameter(
                f"--show history={argument} needs a field, as in history={label}:do_flat."
            )
        return format_history(_graph_config(graph, label), path)
    raise click.BadParameter(
        f"Cannot show {item!r}; choose from {', '.join(SHOW_CHOICES)}.", param_hint="--show"
    )


def _graph_config(graph: PipelineGraph, label: str) -> Any:
    if label not in graph.tasks:
        close = difflib.get_close_matches(label, list(graph.tasks), n=3)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise SubsetError(f"Unknown task label {label!r} (pipeline has: {', '.join(graph.tasks)}){hint}")
    return graph.tasks[label].config


def _write_text(path: str, text: str) -> None:
    try:
        write_text_atomically(path, text)
    except OSError as err:
        raise click.FileError(path, hint=str(err)) from err


# -- the command -----------------------------------------------------------------------------------


@click.command(cls=PipelineCommand, short_help="Read, check and show a pipeline.")
@pipeline_options
@click.option(
    "--show",
    "show",
    multiple=True,
    metavar="WHAT",
    help="Print part of the result; repeatable. WHAT is one of: pipeline (expanded YAML), "
    "config=LABEL[:PATTERN] (fields matching a glob, with docs), history=LABEL:FIELD (where its value came "
    "from), tasks, dataset-types, graph (tasks in order, inputs -> outputs).",
)
@click.option(
    "--save-pipeline", type=click.Path(dir_okay=False), help="Write the expanded pipeline YAML here."
)
@click.option("--pipeline-dot", type=click.Path(dir_okay=False), help="Write a Graphviz DOT drawing here.")
@click.option(
    "--pipeline-mermaid", type=click.Path(dir_okay=False), help="Write a Mermaid (Markdown) drawing here."
)
@click.option("--pipeline-svg", type=click.Path(dir_okay=False), help="Write a standalone SVG drawing here.")
@click.pass_context
def build(
    ctx: click.Context,
    pipeline: str,
    config_overrides: tuple[str, ...],
    config_files: tuple[str, ...],
    show: tuple[str, ...],
    save_pipeline: str | None,
    pipeline_dot: str | None,
    pipeline_mermaid: str | None,
    pipeline_svg: str | None,
) -> None:
    """Read PIPELINE, apply -c/-C overrides, check contracts and connections, then show, save or draw it.

    Nothing is written to a data repository. Every problem (unknown task class or config field, a
    failed contract, two producers of one dataset type, a cycle, ...) is reported as one line.
    """
    loaded = load_pipeline(ctx, pipeline, config_overrides, config_files)
    graph = PipelineGraph.from_pipeline(loaded)
    _LOG.info(
        "Pipeline %s: %d task(s), %d dataset type(s).", pipeline, len(graph.tasks), len(graph.dataset_types)
    )
    texts = [show_text(item, loaded, graph) for item in show]
    for text in texts:
        click.echo(text)
    if save_pipeline:
        loaded.write_yaml(save_pipeline)
    title = _drawing_title(pipeline, loaded.description)
    # The framework's own <label>_config/_metadata/_log datasets would double the picture's size.
    if pipeline_dot:
        _write_text(pipeline_dot, to_dot(graph.to_networkx(include_automatic=False), title=title))
    if pipeline_mermaid:
        drawing = to_mermaid(graph.to_networkx(include_automatic=False), markdown=True, title=title)
        _write_text(pipeline_mermaid, drawing)
    if pipeline_svg:
        _write_text(pipeline_svg, to_svg(graph.to_networkx(include_automatic=False), title=title))
    if not show and not (save_pipeline or pipeline_dot or pipeline_mermaid or pipeline_svg):
        click.echo(f"Pipeline OK: {len(graph.tasks)} task(s), {len(graph.dataset_types)} dataset type(s).")


def _drawing_title(pipeline: str, description: str) -> str:
    """The pipeline file's name and the first sentence of its description, kept short."""
    name = Path(pipeline.split("#", 1)[0]).name
    sentence = description.strip().split(". ", 1)[0].splitlines()[0] if description.strip() else ""
    title = f"{name}: {sentence}" if sentence else name
    return title if len(title) <= 90 else title[:89].rstrip() + "\u2026"
