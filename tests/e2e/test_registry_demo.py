"""The registry demo behind `make demo` runs end to end through the butler command, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from butler.repository import open_registry

DEMO = Path(__file__).parents[2] / "docs" / "examples" / "registry-demo" / "run.sh"


@pytest.mark.slow
def test_registry_demo(tmp_path: Path) -> None:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", str(DEMO), str(tmp_path / "repo")], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "Registered 54 raw datasets in DemoCam/raw/all." in result.stdout
    assert "Showing the first 8 of 22 data IDs." in result.stdout + result.stderr
    with open_registry(tmp_path / "repo") as registry:
        assert registry.get_collection_chain("DemoCam/defaults") == ("DemoCam/raw/all",)
        refs = registry.query_datasets("raw", "DemoCam/defaults", where="band = 'r'")
        assert len(refs) == 2 * 9
