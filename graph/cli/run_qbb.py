"""``pipetask run-qbb`` and ``pipetask pre-exec-init-qbb``: what batch jobs run, parsed with argparse.

Every job of a workflow starts a Python process for these, so they avoid click and keep their
import path short (`graph.cli.entry` sends them here without importing click). ``run-qbb`` never
opens the registry: no SQLAlchemy is imported. Exit codes: 0 every quantum succeeded; 1 a quantum
raised (or was blocked or not run because of one); 2 usage (bad option, unknown node id);
3 infrastructure (unreadable graph, missing input file, unusable datastore).
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import traceback
import uuid
from argparse import SUPPRESS
from collections.abc import Sequence

from butler.errors import ButlerError

from ..errors import GraphError, QuantumGraphError, QuantumGraphFileError
from ..execute_report import EXIT_INFRASTRUCTURE, ExecutionReport, RunStatus

__all__ = ["EXIT_USAGE", "QBB_COMMANDS", "main"]

EXIT_USAGE = 2
"""Bad command line or unknown node id (argparse's own code for usage errors)."""

QBB_COMMANDS = ("run-qbb", "pre-exec-init-qbb")
"""Subcommands handled here instead of by the click group."""

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipetask", description="Batch-job commands of pipetask.")
    parser.add_argument(
        "--log-level", choices=_LOG_LEVELS, type=str.upper, default=None, help=argparse.SUPPRESS
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{run-qbb,pre-exec-init-qbb}")

    run = commands.add_parser(
        "run-qbb",
        help="Run quanta of a graph file through the datastore alone (no registry connection).",
        description="Read only the given quanta from FILE and run them in dependency order, writing "
        "outputs and <label>_metadata/<label>_log datasets into the repository's datastore. Exit codes: "
        "0 all succeeded, 1 a quantum raised, 2 usage, 3 infrastructure (unreadable graph, missing "
        "input file).",
    )
    run.add_argument("repo", metavar="REPO", help="Repository root (its butler.yaml names the datastore).")
    run.add_argument("graph", metavar="FILE", help="The .qg file.")
    run.add_argument(
        "--qgraph-node-id",
        dest="node_ids",
        nargs="+",
        required=True,
        metavar="ID",
        help="Node ids of the quanta to run (UUIDs; several, or comma-separated).",
    )
    run.add_argument(
        "--keep-going",
        action="store_true",
        help="After a failure, still run quanta that do not depend on it (default: stop at the first).",
    )
    run.add_argument(
        "--log-level", choices=_LOG_LEVELS, type=str.upper, default=SUPPRESS, help="Default INFO."
    )

    init = commands.add_parser(
        "pre-exec-init-qbb",
        help="Register dataset types and the output run; write configs, init outputs and packages.",
        description="Run once before the jobs of a graph: registers its dataset types and output run and "
        "writes configs, init outputs and the packages dataset. Running it again changes nothing; a "
        "stored config or package list that differs is an error unless clobbered.",
    )
    init.add_argument("repo", metavar="REPO", help="Repository root.")
    init.add_argument("graph", metavar="FILE", help="The .qg file.")
    init.add_argument("--clobber-config", action="store_true", help="Replace stored configs that differ.")
    init.add_argument(
        "--clobber-versions", action="store_true", help="Replace a stored package list that differs."
    )
    init.add_argument(
        "--log-level", choices=_LOG_LEVELS, type=str.upper, default=SUPPRESS, help="Default INFO."
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``run-qbb`` or ``pre-exec-init-qbb`` with ``argv`` (default ``sys.argv[1:]``); the exit code."""
    try:
        args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:  # argparse: 2 for usage errors, 0 for --help
        return int(exit_.code or 0)
    level = args.log_level or "INFO"
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)
    for handler in logging.getLogger().handlers:
        # Task loggers run at INFO while a quantum runs (for its log dataset); stderr keeps this level.
        handler.setLevel(level)
    try:
        if args.command == "run-qbb":
            return _run_qbb(args)
        return _pre_exec_init(args)
    except (GraphError, ButlerError) as err:
        if level == "DEBUG":
            traceback.print_exc()
        print(f"Error: {err}", file=sys.stderr)
        return err.exit_code
    except Exception as err:  # a job must end with a code a workflow can act on
        traceback.print_exc()
        print(f"Error: internal error: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE


def _node_ids(values: Sequence[str]) -> list[uuid.UUID] | None:
    ids = []
    for value in values:
        for part in value.split(","):
            if not part.strip():
                continue
            try:
                ids.append(uuid.UUID(part.strip()))
            except ValueError:
                print(f"Error: --qgraph-node-id {part!r} is not a UUID.", file=sys.stderr)
                return None
    return ids


def _run_qbb(args: argparse.Namespace) -> int:
    # Imported here so that usage errors are reported before the job's imports (~0.2 s).
    from ..run_qbb import run_qbb

    _imports_done()

    node_ids = _node_ids(args.node_ids)
    if not node_ids:
        if node_ids is not None:
            print("Error: --qgraph-node-id names no quanta.", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = run_qbb(args.repo, args.graph, node_ids, keep_going=args.keep_going)
    except QuantumGraphFileError as err:
        print(f"Error: {err}", file=sys.stderr)
        return err.exit_code
    except QuantumGraphError as err:  # a node id not in the graph
        print(f"Error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ButlerError as err:  # no repository, or an unusable datastore configuration
        print(f"Error: {err}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE
    _print_report(report)
    return report.exit_code


def _imports_done() -> None:
    """Turn garbage collection back on if the console script turned it off for the imports.

    What the imports made lives as long as the process: `gc.freeze` keeps collections from
    scanning it again and again while quanta run.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _print_report(report: ExecutionReport) -> None:
    for failure in report.failures:
        print(f"FAILED {failure.describe()}", file=sys.stderr)
    counts = ", ".join(
        f"{report.total(status)} {status.value.replace('_', ' ')}"
        for status in RunStatus
        if report.total(status)
    )
    print(f"{report.total()} quanta in {report.wall_time:.2f} s: {counts or 'nothing to do'}.")


def _pre_exec_init(args: argparse.Namespace) -> int:
    # The registry (and SQLAlchemy) is needed here, not by run-qbb: import it only for this command.
    from butler.butler import Butler

    from ..pre_exec_init import pre_exec_init
    from ..qgraph_io import read_quantum_graph

    graph = read_quantum_graph(args.graph)
    with Butler(args.repo) as butler:
        report = pre_exec_init(
            butler,
            graph,
            register_dataset_types=True,
            clobber_config=args.clobber_config,
            clobber_versions=args.clobber_versions,
        )
    run = graph.metadata.output_run
    print(f"Output run {run}: {'created' if report.created_run else 'exists'}.")
    print(f"Dataset types registered: {len(report.registered_dataset_types)}.")
    for what, names in (
        ("Written", report.written),
        ("Replaced", report.replaced),
        ("Unchanged", report.unchanged),
    ):
        if names:
            print(f"{what}: {', '.join(names)}.")
    return 0
