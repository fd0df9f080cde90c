"""``bps acquire|...|submit FILE`` on bad input: every error is one line naming what is wrong, and a
submission that fails early leaves no submit directory (or an incomplete one) and no indexed run."""

from __future__ import annotations

from pathlib import Path

import pytest
from bps_cli import bps

from bps.cli.submit_commands import overrides_from


def submit_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "submit.yaml"
    path.write_text(
        "payload:\n  payloadName: test\n  butlerConfig: /nowhere/repo\n  inCollection: in\n"
        f"pipelineYaml: pipeline.yaml\nsubmitPath: {tmp_path}/submit\n{text}"
    )
    return path


def test_overrides_map_options_to_config_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    overrides = overrides_from(
        {"butler_config": "repo", "output_run": "u/x/y", "data_query": None, "input": "a,b"}
    )
    assert overrides == {"butlerConfig": str(tmp_path / "repo"), "outputRun": "u/x/y", "inCollection": "a,b"}
    assert overrides_from({"butler_config": "s3://bucket/repo"}) == {"butlerConfig": "s3://bucket/repo"}


def test_bad_yaml_syntax_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("payload:\n  payloadName: [unclosed\n")
    code, _, err = bps("submit", str(path))
    assert code == 1 and err.startswith(f"Error: {path}:3:1: YAML syntax error")
    assert err.count("\n") == 1
    assert not (tmp_path / "submit").exists()


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    code, _, err = bps("prepare", str(submit_file(tmp_path, "requestMemmory: 4096\n")))
    assert code == 1 and "requestMemmory" in err and "requestMemory" in err and err.count("\n") == 1


def test_engine_not_installed_names_the_extra_and_starts_nothing(tmp_path: Path) -> None:
    code, _, err = bps("submit", str(submit_file(tmp_path, "wmsServiceClass: htcondor\n")))
    assert code == 1 and "pip install 'quanta[htcondor]'" in err
    assert not (tmp_path / "submit").exists()
    # Only prepare and submit need the engine.
    assert "htcondor" not in bps("--log-level", "DEBUG", "config-dump", str(submit_file(tmp_path, "")))[2]


def test_failing_graph_generation_propagates_its_exit_code(tmp_path: Path) -> None:
    path = submit_file(tmp_path, 'createQuantumGraph: "echo making {outputRun}; echo boom >&2; exit 7"\n')
    code, _, err = bps("acquire", str(path), "--output-run", "u/test/run1")
    assert code == 7
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0]
    assert errors[0].startswith("Error: createQuantumGraph failed with exit code 7: boom (its output is in")
    log = tmp_path / "submit" / "quantumGraphGeneration.out"
    assert log.read_text() == "making u/test/run1\nboom\n"
    assert (tmp_path / "submit" / "submit.yaml").read_text() == path.read_text()
    assert (tmp_path / "submit" / "u_test_run1_config.yaml").is_file()


def test_graph_generation_that_writes_nothing(tmp_path: Path) -> None:
    code, _, err = bps("acquire", str(submit_file(tmp_path, 'createQuantumGraph: "true"\n')))
    assert code == 1 and "createQuantumGraph exited 0 but wrote no" in err


def test_missing_qgraph_file(tmp_path: Path) -> None:
    code, _, err = bps("acquire", str(submit_file(tmp_path, "")), "-g", str(tmp_path / "none.qg"))
    assert code == 1 and "qgraphFile" in err and "none.qg" in err and "does not exist" in err


def test_existing_submit_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "submit").mkdir()
    (tmp_path / "submit" / "other").write_text("x")
    code, _, err = bps("acquire", str(submit_file(tmp_path, "")))
    assert code == 1 and "already exists and is not empty" in err


def test_from_submit_dir_usage(tmp_path: Path) -> None:
    path = submit_file(tmp_path, "")
    assert bps("submit", "--from-submit-dir", str(tmp_path), str(path))[0] == 2
    assert bps("submit", "--from-submit-dir", str(tmp_path), "-b", "repo")[0] == 2
    assert bps("submit")[0] == 2
    code, _, err = bps("submit", "--from-submit-dir", str(tmp_path))
    assert code == 1 and "has no prepared.json" in err


def test_config_dump_and_explain(tmp_path: Path) -> None:
    path = submit_file(tmp_path, "requestMemory: 4096\n")
    code, out, _ = bps("config-dump", str(path))
    assert code == 0 and "requestMemory: 4096" in out
    code, out, _ = bps("config-dump", str(path), "--explain", "requestMemory")
    assert code == 0 and "4096" in out and "2048" in out and "bps defaults" in out
