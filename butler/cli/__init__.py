"""The ``butler`` command: create data repositories, fill and query their registry, and move datasets in and out.

`main` is the console-script entry point. Each ``*_commands`` module holds one family of
subcommands; `app` holds the group itself and its error handling.
"""

from __future__ import annotations

from . import dataset_commands, query_commands, registry_commands, repository_commands
from .app import COMMAND_ENTRY_POINTS, ButlerGroup, main

__all__ = ["COMMAND_ENTRY_POINTS", "ButlerGroup", "main"]

for _command in (
    *repository_commands.COMMANDS,
    *registry_commands.COMMANDS,
    *query_commands.COMMANDS,
    *dataset_commands.COMMANDS,
):
    main.add_command(_command)
del _command
