"""The ``bps`` command: submit campaigns to a workflow engine and follow their runs.

`main` is the console-script entry point; `app` holds the group (global options, error handling),
``submit_commands`` the stage commands, ``run_commands`` report/status/cancel/restart/ping and
``config_commands`` config-dump.
"""

from __future__ import annotations

from . import config_commands, run_commands, submit_commands
from .app import main

__all__ = ["main"]

for _command in (*submit_commands.COMMANDS, *run_commands.COMMANDS, *config_commands.COMMANDS):
    main.add_command(_command)
del _command
