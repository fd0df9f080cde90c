"""``bps acquire|cluster|transform|prepare|submit FILE``: run the stages of a submission up to one.

The options override the submit YAML (the highest layer of the config); ``bps submit --wait``
follows the run to its end, ``--from-submit-dir`` submits a directory ``bps prepare`` made.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..api import Stage, StageResult, run_stages, submit_prepared_dir
from ..progress import follow_run, progress_wanted
from ..report_table import failed_jobs_table, label_table
from ..run_control import require
from ..wms import Capability
from .app import CliState

__all__ = ["COMMANDS", "OVERRIDE_KEYS", "overrides_from", "submit_options"]

OVERRIDE_KEYS = {
    "compute_site": "computeSite",
    "wms_service_class": "wmsServiceClass",
    "butler_config": "butlerConfig",
    "input": "inCollection",
    "output": "output",
    "output_run": "outputRun",
    "data_query": "dataQuery",
    "pipeline": "pipelineYaml",
    "qgraph": "qgraphFile",
    "extra_qgraph_options": "extraQgraphOptions",
    "extra_run_quantum_options": "extraRunQuantumOptions",
    "extra_init_options": "extraInitOptions",
    "submit_path": "submitPath",
}
"""Option (parameter name) -> the config key it overrides."""

_OPTIONS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("--compute-site",), "SITE", "Site to run on (computeSite)."),
    (("--wms-service-class",), "ENGINE", "Engine: a short name (parsl) or a class path (wmsServiceClass)."),
    (("-b", "--butler-config"), "REPO", "Data repository (payload.butlerConfig)."),
    (("-i", "--input"), "COLLECTIONS", "Input collections, comma-separated (payload.inCollection)."),
    (("-o", "--output"), "CHAIN", "Output CHAINED collection (payload.output)."),
    (("--output-run",), "RUN", "Output RUN collection (payload.outputRun)."),
    (("-d", "--data-query"), "WHERE", "Data query (payload.dataQuery)."),
    (("-p", "--pipeline"), "FILE", "Pipeline YAML (pipelineYaml)."),
    (("-g", "--qgraph"), "FILE", "An existing quantum graph to run instead of making one (qgraphFile)."),
    (("--extra-qgraph-options",), "TEXT", "Appended to the createQuantumGraph command."),
    (("--extra-run-quantum-options",), "TEXT", "Appended to each job's pipetask run-qbb command."),
    (("--extra-init-options",), "TEXT", "Appended to the pipetaskInit job's command."),
    (("--submit-path",), "DIR", "The new submit directory (submitPath; default ${PWD}/submit/{outputRun})."),
)


def submit_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add the config-override options (as ctrl_bps's) to a command."""
    for names, metavar, help_text in reversed(_OPTIONS):
        function = click.option(*names, metavar=metavar, default=None, help=help_text)(function)
    return function


_PATH_OPTIONS = frozenset({"butler_config", "pipeline", "qgraph", "submit_path"})
"""Options naming local paths: made absolute, as jobs run in other directories."""


def overrides_from(options: dict[str, Any]) -> dict[str, object]:
    """The command-line config values given, by camelCase key; relative local paths made absolute."""
    overrides: dict[str, object] = {}
    for name, key in OVERRIDE_KEYS.items():
        value = options.get(name)
        if value is None:
            continue
        if name in _PATH_OPTIONS and "://" not in value and "{" not in value:
            value = str(Path(value).expanduser().absolute())
        overrides[key] = value
    return overrides


def _echo_result(result: StageResult, until: Stage) -> None:
    click.echo(f"Submit dir: {result.submit_dir}")
    click.echo(f"Quanta: {result.quanta}")
    if result.clusters is not None:
        click.echo(f"Clusters: {result.clusters}")
    if result.workflow is not None and until >= Stage.TRANSFORM:
        counts = result.workflow.job_counts()
        details = ", ".join(f"{label} {count}" for label, count in counts.items())
        click.echo(f"Jobs: {sum(counts.values())} ({details})")
    if result.record is not None:
        click.echo(f"Run Id: {result.record.run_id}")
        click.echo(f"Run Name: {result.record.run_name}")


def _stage_command(until: Stage, summary: str) -> click.Command:
    @click.command(name=until.name.lower(), short_help=summary)
    @click.argument(
        "submit_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path)
    )
    @submit_options
    def command(submit_file: Path, **options: Any) -> None:
        result = run_stages(submit_file, overrides_from(options), until=until)
        _echo_result(result, until)

    command.help = (
        f"{summary} Creates a new submit directory (submitPath) and stops after {until.name.lower()}."
    )
    return command


@click.command(short_help="Run every stage and submit the workflow to the engine.")
@click.argument(
    "submit_file",
    metavar="[FILE]",
    required=False,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@submit_options
@click.option(
    "--from-submit-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    metavar="DIR",
    help="Submit a directory made by `bps prepare` (no FILE, no overrides).",
)
@click.option("--wait", is_flag=True, help="Follow the run until it ends; exit with its state (0 succeeded).")
@click.pass_context
def submit(
    ctx: click.Context, /, submit_file: Path | None, from_submit_dir: Path | None, wait: bool, **options: Any
) -> None:
    """Make the quantum graph of FILE (or copy qgraphFile), cluster it, build the workflow, prepare the
    engine's files and submit; returns once the engine has the run (with --wait, when the run ends).
    """
    overrides = overrides_from(options)
    if from_submit_dir is not None:
        if submit_file is not None or overrides:
            raise click.UsageError("--from-submit-dir takes neither FILE nor config overrides.")
        result = submit_prepared_dir(from_submit_dir)
    elif submit_file is None:
        raise click.UsageError("Give the submit FILE (or --from-submit-dir DIR).")
    else:
        result = run_stages(submit_file, overrides, until=Stage.SUBMIT)
    _echo_result(result, Stage.SUBMIT)
    if wait and result.service is not None:
        require(result.service, Capability.REPORT, "report, so --wait cannot follow the run")
        state: CliState = ctx.obj
        report = follow_run(result.service, result.submit_dir, show_bar=progress_wanted(state.progress))
        click.echo(f"Run {report.run.run_name} ended {report.state.name}.")
        click.echo(label_table(report))
        failed = failed_jobs_table(report)
        if failed:
            click.echo(f"\nFailed jobs:\n{failed}")
        ctx.exit(int(report.state))


COMMANDS = (
    _stage_command(Stage.ACQUIRE, "Make (or copy) the quantum graph."),
    _stage_command(Stage.CLUSTER, "Make the quantum graph and cluster its quanta into jobs."),
    _stage_command(Stage.TRANSFORM, "Make the quantum graph, cluster it and build the generic workflow."),
    _stage_command(Stage.PREPARE, "Everything up to writing the engine's files; submits nothing."),
    submit,
)
