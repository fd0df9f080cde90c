"""Running the ``bps`` command in-process for the CLI tests."""

from __future__ import annotations

from click.testing import CliRunner

from bps.cli import main


def bps(*args: str) -> tuple[int, str, str]:
    """``bps ARGS...``: (exit code, stdout, stderr); an unexpected exception is raised, not swallowed."""
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr
