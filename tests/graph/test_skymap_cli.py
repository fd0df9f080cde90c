"""``butler register-skymap``, run through click's CliRunner as a user would type it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from butler.cli import main
from butler.repository import create_repository, open_registry

DEMO_CONFIG = Path(__file__).parents[2] / "submit_templates" / "examples" / "demo_skymap.yaml"


def run(*args: str, exit_code: int = 0) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == exit_code, (result.output, result.exception)
    return result


@pytest.fixture
def repo(tmp_path: Path) -> str:
    create_repository(tmp_path / "repo")
    return str(tmp_path / "repo")


def test_register_demo_skymap_twice(repo: str) -> None:
    result = run("register-skymap", repo, "--name", "demo-rings", "--config", str(DEMO_CONFIG))
    assert "Registered sky map 'demo-rings' (hash " in result.output
    assert "1 tract(s) [9813], 182 patch(es); config stored as skyMap in RUN 'skymaps'." in result.output
    result = run("register-skymap", repo, "--name", "demo-rings", "--config", str(DEMO_CONFIG))
    assert "already registered with this configuration; nothing to do" in result.output
    with open_registry(repo) as registry:
        assert len(registry.query_dimension_records("patch", data_id={"skymap": "demo-rings"})) == 182
    other = Path(repo) / "other.yaml"
    other.write_text(DEMO_CONFIG.read_text().replace("patch_border: 20", "patch_border: 40"))
    result = run("register-skymap", repo, "--name", "demo-rings", "--config", str(other), exit_code=1)
    assert "Error: Sky map 'demo-rings' is already registered with a different definition" in result.output
    assert "patch_border: 20 registered, 40 given" in result.output


@pytest.mark.parametrize(
    ("text", "messages"),
    [
        (
            "num_rings: 12\npixel_scal: 0.4\n",
            ["unknown key 'pixel_scal' (did you mean 'pixel_scale'?)", "valid keys: num_rings, ra_start"],
        ),
        ("num_rings: twelve\n", ["key 'num_rings': Input should be a valid integer", "got 'twelve'"]),
        ("- num_rings\n", ["must be a mapping of keys"]),
    ],
)
def test_bad_config_files_are_named(repo: str, tmp_path: Path, text: str, messages: list[str]) -> None:
    path = tmp_path / "sky.yaml"
    path.write_text(text)
    result = run("register-skymap", repo, "--name", "x", "--config", str(path), exit_code=1)
    assert (
        f"Error: Invalid sky map config {path}: " in result.output
        or f"Sky map config {path}" in result.output
    )
    for message in messages:
        assert message in result.output
    assert "Traceback" not in result.output
    with open_registry(repo) as registry:
        assert registry.query_dimension_records("skymap") == []


def test_missing_config_file_and_repository(repo: str, tmp_path: Path) -> None:
    result = run("register-skymap", repo, "--name", "x", "--config", str(tmp_path / "nope.yaml"), exit_code=1)
    assert f"Error: Cannot read sky map config {tmp_path / 'nope.yaml'}: No such file" in result.output
    result = run(
        "register-skymap", str(tmp_path / "norepo"), "--name", "x", "--config", str(DEMO_CONFIG), exit_code=1
    )
    assert "No data repository at" in result.output
    result = run("register-skymap", repo, "--config", str(DEMO_CONFIG), exit_code=2)
    assert "Missing option '--name'" in result.output
