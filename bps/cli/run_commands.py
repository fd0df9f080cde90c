"""``bps report|status|cancel|restart|ping``: look at and act on submitted runs.

A run is named by ``--id``: the engine's run id, the run name, or the submit directory's path.
"""

from __future__ import annotations

import os

import click

from .. import run_control
from ..progress import follow_run, progress_wanted
from ..report_table import detail_text, reports_to_json, summary_table
from ..wms import Capability
from .app import CliState

__all__ = ["COMMANDS"]

_ID_HELP = "Run id, run name or submit directory."
DEFAULT_ENGINE_VARIABLE = "BPS_WMS_SERVICE_CLASS"


@click.command(short_help="Show runs, or one run's jobs per label and its failures.")
@click.option("--id", "run_id", metavar="ID", help=_ID_HELP + " Without it: a summary of the indexed runs.")
@click.option("--user", metavar="USER", help="Only runs of this operator (without --id).")
@click.option(
    "--hist", type=float, metavar="DAYS", help="Only runs submitted in the last DAYS (without --id)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option(
    "--return-exit-codes", is_flag=True, help="Add payload (1, 2) and infrastructure exit codes per label."
)
def report(
    run_id: str | None, user: str | None, hist: float | None, as_json: bool, return_exit_codes: bool
) -> None:
    """Print the state of runs: one line per run; with --id, also the jobs per label and state, and
    each failed job with its exit code, reason and log file.
    """
    reports = run_control.report_runs(run_id, user=user, hist_days=hist)
    if as_json:
        click.echo(reports_to_json(reports, return_exit_codes=return_exit_codes))
        return
    if not reports:
        click.echo("No runs found.")
        return
    click.echo(summary_table(reports))
    if run_id is not None:
        click.echo()
        click.echo(detail_text(reports[0], return_exit_codes=return_exit_codes))


@click.command(short_help="Print a run's state; the exit code is the state's value (0 succeeded).")
@click.option("--id", "run_id", required=True, metavar="ID", help=_ID_HELP)
@click.pass_context
def status(ctx: click.Context, run_id: str) -> None:
    """Print the state of a run and exit with its value: SUCCEEDED 0, RUNNING 15, FAILED 19, ..."""
    state = run_control.status_of_run(run_id)
    click.echo(state.name)
    ctx.exit(int(state))


@click.command(short_help="Stop a run and its jobs.")
@click.option("--id", "run_id", required=True, metavar="ID", help=_ID_HELP)
def cancel(run_id: str) -> None:
    """Stop a run's engine and jobs; finished work stays (`bps restart` resumes it)."""
    record = run_control.cancel_run(run_id)
    click.echo(f"Cancelled run {record.run_id} ({record.run_name}).")


@click.command(short_help="Run again the jobs of a run that did not succeed.")
@click.option("--id", "run_id", required=True, metavar="ID", help=_ID_HELP)
@click.option("--wait", is_flag=True, help="Follow the run until it ends; exit with its state (0 succeeded).")
@click.pass_context
def restart(ctx: click.Context, run_id: str, wait: bool) -> None:
    """Restart a failed, cancelled or interrupted run; jobs that succeeded are not run again."""
    record = run_control.restart_run(run_id)
    click.echo(f"Run Id: {record.run_id}")
    click.echo(f"Run Name: {record.run_name}")
    if wait:
        state: CliState = ctx.obj
        service = run_control.engine_for_run(record)
        run_control.require(service, Capability.REPORT, "report, so --wait cannot follow the run")
        final = follow_run(service, record.submit_dir, show_bar=progress_wanted(state.progress))
        click.echo(f"Run {final.run.run_name} ended {final.state.name}.")
        ctx.exit(int(final.state))


@click.command(short_help="Check that an engine is usable here.")
@click.option(
    "--wms",
    metavar="NAME",
    help=f"Engine short name or class path (default: ${DEFAULT_ENGINE_VARIABLE}, else parsl).",
)
def ping(wms: str | None) -> None:
    """Check that the engine's library loads and that it can run jobs here; print what it found."""
    name = wms or os.environ.get(DEFAULT_ENGINE_VARIABLE) or "parsl"
    click.echo(run_control.ping_engine(name))


COMMANDS = (report, status, cancel, restart, ping)
