"""A DemoCam repository built with the butler commands docs/democam.md tells a user to type."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from butler.cli import main as butler_main
from graph.demo.simulate import simulate

EXAMPLES = Path(__file__).parents[2] / "submit_templates" / "examples"
"""The example pipeline and sky map shipped with the package."""


def butler_command(*args: str) -> str:
    """Run one ``butler`` subcommand as a user would; its output (it must succeed)."""
    result = CliRunner().invoke(butler_main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def build_democam_repository(work: Path, *, seed: int = 3) -> Path:
    """Simulate 6 visits x 4 detectors into ``work/survey`` and build ``work/repo`` from them."""
    simulate(work / "survey", visits=6, detectors=4, seed=seed)
    repo = str(work / "repo")
    butler_command("create", repo)
    butler_command("register-instrument", repo, "DemoCam")
    butler_command("write-curated-calibrations", repo, "DemoCam")
    butler_command("ingest-raws", repo, str(work / "survey" / "raw"))
    butler_command("define-visits", repo, "DemoCam")
    butler_command("ingest-refcat", repo, str(work / "survey" / "refcat" / "demo_refcat.parquet"))
    butler_command(
        "register-skymap", repo, "--name", "demo-rings", "--config", str(EXAMPLES / "demo_skymap.yaml")
    )
    return Path(repo)
