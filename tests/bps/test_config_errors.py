"""BpsConfig errors: each names the file and the key, and says what was expected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_config_load import MINIMAL, load, write

from bps.config import load_bps_config
from bps.errors import BpsConfigError


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "submit.yaml", "project: dev\npayload:\n  payloadName: [demo\n  other: x\n")
    with pytest.raises(BpsConfigError, match=re.escape(str(path)) + r":\d+:\d+: YAML syntax error"):
        load_bps_config(path)


def test_yaml_tab_error_position(tmp_path: Path) -> None:
    path = write(tmp_path, "submit.yaml", "project: dev\n\tcampaign: x\n")
    with pytest.raises(BpsConfigError, match=re.escape(f"{path}:2:1: YAML syntax error")):
        load_bps_config(path)


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(BpsConfigError, match="expected a mapping of keys at top level"):
        load_bps_config(write(tmp_path, "submit.yaml", "- a\n- b\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("requestMemroy: 4096\n", "submit.yaml: requestMemroy: unknown key; did you mean requestMemory?"),
        (
            "pipetask:\n  isr:\n    requestCpu: 2\n",
            "pipetask.isr.requestCpu: unknown key; did you mean requestCpus?",
        ),
        ("cluster:\n  c:\n    pipetask: isr\n", "cluster.c.pipetask: unknown key; did you mean pipetasks?"),
        ("finalJob:\n  whenrun: NEVER\n", "finalJob.whenrun: unknown key; did you mean whenRun?"),
        ("computeSight: local\n", "computeSight: unknown key; did you mean computeSite?"),
        ("bpsGenerateConfig: pkg.f()\n", "bpsGenerateConfig: not supported: config text is never executed"),
    ],
)
def test_unknown_keys(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(BpsConfigError, match=re.escape(message)):
        load(tmp_path, text)


def test_unknown_key_in_payload(tmp_path: Path) -> None:
    path = write(tmp_path, "submit.yaml", "payload:\n  payloadName: x\n  butlerConfg: /r\n")
    with pytest.raises(
        BpsConfigError,
        match=re.escape(f"{path}: payload.butlerConfg: unknown key; did you mean butlerConfig?"),
    ):
        load_bps_config(path)


def test_unknown_key_in_an_include_names_the_include(tmp_path: Path) -> None:
    inc = write(tmp_path, "inc.yaml", "numberOfRetrys: 2\n")
    with pytest.raises(BpsConfigError, match=re.escape(f"{inc}: numberOfRetrys: unknown key")):
        load(tmp_path, "includeConfigs: [inc.yaml]\n")


def test_unknown_command_line_key(tmp_path: Path) -> None:
    with pytest.raises(BpsConfigError, match="command line: outputRn: unknown key; did you mean outputRun"):
        load(tmp_path, "", outputRn="x")


def test_site_sections_pass_engine_keys_through(tmp_path: Path) -> None:
    config = load(tmp_path, "site:\n  local:\n    anyEngineKey: 3\n")
    assert config.get("anyEngineKey", site="local") == 3


def test_missing_include(tmp_path: Path) -> None:
    write(tmp_path, "conf/a.yaml", "includeConfigs: [missing.yaml]\n")
    with pytest.raises(BpsConfigError) as info:
        load(tmp_path, "includeConfigs: [conf/a.yaml]\n")
    assert str(info.value) == (
        f"{tmp_path / 'conf/a.yaml'}: includeConfigs: included file {tmp_path / 'conf/missing.yaml'} does not exist."
    )


def test_include_cycle(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "includeConfigs: [b.yaml]\n")
    write(tmp_path, "b.yaml", "includeConfigs: [a.yaml]\n")
    with pytest.raises(BpsConfigError, match="include cycle"):
        load(tmp_path, "includeConfigs: [a.yaml]\n")


def test_missing_submit_file(tmp_path: Path) -> None:
    with pytest.raises(BpsConfigError, match="nope.yaml: file not found"):
        load_bps_config(tmp_path / "nope.yaml")


def test_undefined_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "submit.yaml", MINIMAL + "project: '{campain}-x'\ncampaign: c\n")
    with pytest.raises(
        BpsConfigError,
        match=re.escape(f"{path}: project: undefined variable {{campain}}; did you mean campaign?"),
    ):
        load_bps_config(path)


def test_undefined_variable_in_a_section(tmp_path: Path) -> None:
    with pytest.raises(
        BpsConfigError, match=re.escape("pipetask.isr.runQuantumCommand: undefined variable {nowhere}")
    ):
        load(tmp_path, "pipetask:\n  isr:\n    runQuantumCommand: 'run {nowhere}'\n").command(
            "runQuantumCommand", pipetask="isr"
        )


def test_variable_cycle(tmp_path: Path) -> None:
    with pytest.raises(
        BpsConfigError, match=re.escape("variable cycle {project} -> {campaign} -> {project}")
    ):
        load(tmp_path, "project: '{campaign}'\ncampaign: 'c-{project}'\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("requestMemory: lots\n", "requestMemory (submit file): expected an integer, got 'lots'."),
        (
            "pipetask:\n  isr:\n    requestCpus: 1.5\n",
            "pipetask.isr.requestCpus: expected an integer, got 1.5.",
        ),
        ("preemptible: maybe\n", "preemptible (submit file): expected true or false, got 'maybe'."),
        ("retryUnlessExit: [1, x]\n", "expected an exit code or a list of exit codes"),
        ("requestWalltime: 1h\n", "requestWalltime (submit file): expected seconds"),
        ("project: [a, b]\n", "project: Input should be a valid string; got ['a', 'b']."),
        (
            "finalJob:\n  whenRun: SOMETIMES\n",
            "finalJob.whenRun: Input should be 'ALWAYS', 'SUCCESS' or 'NEVER'",
        ),
        ("whenSaveJobQgraph: TRANSFORM\n", "whenSaveJobQgraph: 'TRANSFORM' is not supported"),
        (
            "cluster:\n  c:\n    pipetasks: isr\n    partitionMaxSize: 0\n",
            "cluster.c.partitionMaxSize: expected a positive integer",
        ),
        (
            "cluster:\n  c:\n    pipetasks: isr\n    equalDimensions: visit\n",
            "cluster.c.equalDimensions: expected pairs",
        ),
        ("environment: [a]\n", "environment: expected a mapping"),
    ],
)
def test_wrong_types(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(BpsConfigError, match=re.escape(message)) as info:
        load(tmp_path, text)
    assert str(tmp_path / "submit.yaml") in str(info.value)


def test_missing_payload_name(tmp_path: Path) -> None:
    path = write(tmp_path, "submit.yaml", "payload:\n  butlerConfig: /r\n")
    with pytest.raises(
        BpsConfigError,
        match=re.escape("uses {payloadName}, but no layer sets payloadName; set payload.payloadName"),
    ):
        load_bps_config(path)


def test_wrong_type_found_only_at_use(tmp_path: Path) -> None:
    config = load(tmp_path, "memoryValue: lots\npipetask:\n  isr:\n    requestMemory: '{memoryValue}'\n")
    with pytest.raises(
        BpsConfigError, match=re.escape("pipetask.isr.requestMemory: expected an integer, got 'lots'")
    ):
        config.job_resources(cluster=None, label_counts={"isr": 1})


def test_command_needs_an_unset_key(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    with pytest.raises(
        BpsConfigError,
        match=re.escape(
            "createQuantumGraph (bps defaults, bps_defaults.yaml) uses {pipelineYaml}, but no layer sets"
        ),
    ):
        config.command("createQuantumGraph")
