"""The ``pipetask`` console script: batch-job subcommands go to argparse, everything else to click.

``run-qbb`` and ``pre-exec-init-qbb`` run once per batch job, so their start-up time counts
millions of times: they are dispatched to `graph.cli.run_qbb` without importing click, and
``run-qbb`` then imports neither the registry nor SQLAlchemy.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_QBB_COMMANDS = ("run-qbb", "pre-exec-init-qbb")
"""As `graph.cli.run_qbb.QBB_COMMANDS` (not imported: this module must stay import-free)."""


def main(argv: Sequence[str] | None = None) -> None:
    """Dispatch ``pipetask`` by its subcommand; exits with the command's exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if _subcommand(args) in _QBB_COMMANDS:
        from .run_qbb import main as qbb_main

        sys.exit(qbb_main(args))
    from .pipetask import main as click_main

    click_main(args=args, prog_name="pipetask")


def _subcommand(args: Sequence[str]) -> str | None:
    """The first argument that is neither an option nor the value of ``--log-level``."""
    skip_value = False
    for arg in args:
        if skip_value:
            skip_value = False
            continue
        if arg == "--log-level":
            skip_value = True
            continue
        if not arg.startswith("-"):
            return arg
    return None
