"""The DemoCam walkthrough behind `make demo` runs end to end through the commands a user types."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from butler.repository import open_registry

DEMO = Path(__file__).parents[2] / "docs" / "examples" / "democam" / "run.sh"


@pytest.mark.slow
def test_democam_demo(tmp_path: Path) -> None:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", str(DEMO), str(tmp_path / "demo")], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "Ingested 24 raw file(s) into DemoCam/raw/all" in result.stdout
    assert "Defined 6 visit(s) of DemoCam" in result.stdout
    assert "182 patch(es)" in result.stdout
    assert "detectCoadd {band, skymap, tract, patch}" in result.stdout
    assert "Jobs: 153 (pipetaskInit 1, singleFrame 24," in result.stdout
    assert "ended SUCCEEDED" in result.stdout
    assert "<svg" in (tmp_path / "demo" / "pipeline.svg").read_text()
    with open_registry(tmp_path / "demo" / "repo") as registry:
        assert registry.get_collection_chain("DemoCam/defaults") == (
            "DemoCam/raw/all",
            "DemoCam/calib",
            "refcats",
            "skymaps",
        )
        assert len(registry.query_datasets("raw", "DemoCam/defaults", where="band = 'r'")) == 2 * 4
        flats = registry.query_datasets(
            "flat", "DemoCam/defaults", where="exposure IN (2025123000001, 2025123100001) AND detector = 0"
        )
        assert len({ref.run for ref in flats}) == 2  # each night finds the flat valid at its time
        assert registry.get_collection_chain("u/demo/coadds")[1:] == ("DemoCam/defaults",)
        assert len(registry.query_datasets("deepCoadd_det", "u/demo/coadds", where="band = 'g'")) == 12
