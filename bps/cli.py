"""The ``bps`` command: submit and follow campaigns on a workflow engine."""

from __future__ import annotations

import click

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Submit and follow batch-production campaigns.

    Subcommands (submit, prepare, report, status, cancel, restart, ping, config-dump) arrive
    with the batch-production layer.
    """
