"""``bps config-dump FILE [--explain KEY]``: the resolved submit config, and where a value comes from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..config import load_bps_config
from ..config_dump import dump_text, explain_text
from .submit_commands import overrides_from, submit_options

__all__ = ["COMMANDS"]


@click.command(name="config-dump", short_help="Print the resolved submit config, or explain one key.")
@click.argument("submit_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--explain", "key", metavar="KEY", help="Show every layer that sets KEY, the winner first.")
@submit_options
def config_dump(submit_file: Path, key: str | None, **options: Any) -> None:
    """Print FILE's config with every layer merged and every variable expanded; with --explain KEY,
    the value of KEY in each layer (command line, cluster, pipetask, site, file, includes, defaults).
    """
    config = load_bps_config(submit_file, overrides_from(options))
    click.echo(explain_text(config, key) if key else dump_text(config), nl=False)


COMMANDS = (config_dump,)
