"""BpsConfig: layers and precedence, includes, variables, typed settings, a ctrl_bps submit file."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from bps.config import JOB_PLACEHOLDERS, MISSING, BpsConfig, load_bps_config
from bps.config_keys import short_wms_name
from bps.errors import BpsConfigError
from bps.workflow import WhenRun

MINIMAL = """
payload:
  payloadName: demo
  butlerConfig: /repo/butler.yaml
  inCollection: DemoCam/defaults
"""


def write(directory: Path, name: str, text: str) -> Path:
    """Write dedented YAML text to ``directory/name`` and return the path."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str, **overrides: object) -> BpsConfig:
    """Load a submit file made of ``MINIMAL`` plus ``text``."""
    return load_bps_config(write(tmp_path, "submit.yaml", MINIMAL + textwrap.dedent(text)), overrides)


# -- ctrl_bps compatibility ---------------------------------------------------------------------

CTRL_BPS_SUBMIT = """
pipelineYaml: "${PIPE_DIR}/pipelines/DRP.yaml#isr"
project: dev
campaign: quick
computeSite: local
requestMemory: 2048
requestCpus: 1
wmsServiceClass: lsst.ctrl.bps.parsl.ParslService
clusterAlgorithm: lsst.ctrl.bps.quantum_clustering_funcs.single_quantum_clustering
payload:
  payloadName: pipelines_check
  butlerConfig: ${PIPE_DIR}/DATA_REPO/butler.yaml
  inCollection: HSC/calib,HSC/raw/all,refcats
  dataQuery: exposure=903342 AND detector=10
pipetask:
  pipetaskInit:
    runQuantumCommand: "pipetask pre-exec-init-qbb {butlerConfig} <FILE:qgraphFile> {extraInitOptions}"
  isr:
    requestMemory: 4096
site:
  local:
    class: lsst.ctrl.bps.parsl.sites.Local
    cores: 2
  tiger:
    class: lsst.ctrl.bps.parsl.sites.princeton.Tiger
    nodes: 1
    walltime: "0:59:00"
parsl:
  log_level: DEBUG
saveDot: false
runPreCmdOpts: "--long-log"
"""


def test_ctrl_bps_submit_file_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPE_DIR", "/opt/pipe")
    config = load_bps_config(write(tmp_path, "submit.yaml", CTRL_BPS_SUBMIT))
    settings = config.settings
    assert settings.wms_service_class == "parsl"
    assert settings.cluster_algorithm == "single_quantum"
    assert settings.pipeline_yaml == "/opt/pipe/pipelines/DRP.yaml#isr"
    assert settings.payload.butler_config == "/opt/pipe/DATA_REPO/butler.yaml"
    assert settings.payload.data_query == "exposure=903342 AND detector=10"
    assert settings.compute_site == "local"
    assert config.get("class", site="local") == "local"
    assert config.get("requestMemory", pipetask="isr") == 4096
    assert config.get("butlerConfig") == "/opt/pipe/DATA_REPO/butler.yaml"
    assert config.get("runPreCmdOpts") == "--long-log" and config.get("qgraphPreCmdOpts") == ""
    assert config.command("runQuantumCommand", pipetask="pipetaskInit") == (
        "pipetask pre-exec-init-qbb /opt/pipe/DATA_REPO/butler.yaml <FILE:qgraphFile>"
    )


def test_defaults_and_derived_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PWD", str(tmp_path))
    config = load(tmp_path, "operator: alice\npipelineYaml: p.yaml\n")
    s = config.settings
    assert re.fullmatch(r"\d{8}T\d{6}Z", s.timestamp)
    assert s.payload.output == "u/alice/demo"
    assert s.payload.output_run == f"u/alice/demo/{s.timestamp}"
    assert s.uniq_proc_name == f"u_alice_demo_{s.timestamp}"
    assert s.submit_path == f"{tmp_path}/submit/u/alice/demo/{s.timestamp}"
    assert s.qgraph_file == f"{s.submit_path}/{s.uniq_proc_name}.qg"
    assert s.when_save_job_qgraph == "NEVER"
    assert s.final_job.when_run is WhenRun.ALWAYS
    assert s.final_job.commands == (
        "butler transfer-from-graph <FILE:qgraphFile> /repo/butler.yaml --register-dataset-types "
        "--update-output-chain",
    )
    run_command = config.command("runQuantumCommand")
    assert (
        run_command == "pipetask run-qbb /repo/butler.yaml <FILE:qgraphFile> --qgraph-node-id {qgraphNodeId}"
    )
    assert "qgraphNodeId" in JOB_PLACEHOLDERS
    created = config.command("createQuantumGraph")
    assert f"--output-run u/alice/demo/{s.timestamp}" in created and "-i DemoCam/defaults" in created


def test_operator_defaults_to_login_name(tmp_path: Path) -> None:
    import getpass

    assert load(tmp_path, "").settings.operator == getpass.getuser()


# -- precedence ------------------------------------------------------------------------------------


PRECEDENCE = """
requestMemory: 1000
includeConfigs: [inc.yaml]
cluster:
  calib:
    pipetasks: isr, calibrate
    dimensions: detector
    requestMemory: 5000
pipetask:
  isr:
    requestMemory: 4000
site:
  local:
    requestMemory: 3000
"""


def test_lookup_order(tmp_path: Path) -> None:
    write(tmp_path, "inc.yaml", "requestMemory: 500\nrequestCpus: 3\n")
    config = load(tmp_path, PRECEDENCE)
    assert config.get("requestMemory", cluster="calib", pipetask="isr") == 5000
    assert config.get("requestMemory", pipetask="isr") == 4000
    assert config.get("requestMemory", pipetask="other") == 3000
    assert config.get("requestMemory", site="") == 1000
    assert config.get("requestCpus") == 3
    assert config.get("requestCpus", site="elsewhere") == 3
    layers = [s.layer for s in config.explain("requestMemory", cluster="calib", pipetask="isr")]
    assert layers == [
        "cluster.calib",
        "pipetask.isr",
        "site.local",
        "submit file",
        "include inc.yaml",
        "bps defaults",
    ]

    overridden = load(tmp_path, PRECEDENCE, requestMemory=9999, outputRun="u/me/fixed", computeSite=None)
    assert overridden.get("requestMemory", cluster="calib", pipetask="isr") == 9999
    assert overridden.explain("requestMemory")[0].layer == "command line"
    assert overridden.settings.payload.output_run == "u/me/fixed"
    assert overridden.settings.uniq_proc_name == "u_me_fixed"


def test_payload_keys_are_top_level_keys(tmp_path: Path) -> None:
    config = load(tmp_path, "dataQuery: top\nextraQgraphOptions: '-d {dataQuery}'\n")
    assert config.get("dataQuery") == "top"  # a top-level value in the same file as payload: is fine
    config = load(tmp_path, "extraQgraphOptions: '--x {butlerConfig}'\n", butlerConfig="/cmd/butler.yaml")
    assert config.settings.extra_qgraph_options == "--x /cmd/butler.yaml"
    assert config.settings.payload.butler_config == "/cmd/butler.yaml"


def test_get_default_and_missing(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert config.get("requestMemoryMax", default=None) is None
    assert MISSING is not None
    with pytest.raises(BpsConfigError, match="requestMemoryMax: not set in any layer"):
        config.get("requestMemoryMax")


def test_includes_nested_and_relative(tmp_path: Path) -> None:
    write(tmp_path, "conf/a.yaml", "includeConfigs: [deeper/b.yaml]\nproject: from-a\nrequestCpus: 2\n")
    write(tmp_path, "conf/deeper/b.yaml", "project: from-b\ncampaign: from-b\nrequestCpus: 4\n")
    write(tmp_path, "conf/c.yaml", "requestCpus: 8\n")
    config = load(tmp_path, "includeConfigs: [conf/a.yaml, conf/c.yaml]\n")
    assert config.settings.project == "from-a"
    assert config.settings.campaign == "from-b"
    assert config.get("requestCpus") == 8  # a later include beats an earlier one
    names = [s.layer for s in config.explain("requestCpus")]
    assert names == ["include c.yaml", "include a.yaml", "include b.yaml", "bps defaults"]


def test_include_with_env_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITE_CONF", str(tmp_path / "site"))
    write(tmp_path, "site/s.yaml", "campaign: env-include\n")
    assert load(tmp_path, "includeConfigs: ${SITE_CONF}/s.yaml\n").settings.campaign == "env-include"


# -- variables -------------------------------------------------------------------------------------


def test_variables_env_and_escapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_ROOT", "/data")
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    config = load(
        tmp_path,
        """
        weekly: w_2026_47
        project: "{weekly}-$MY_ROOT-${MY_ROOT}-{{literal}}-$NOT_SET_ANYWHERE"
        requestMemory: "{bigMemory}"
        bigMemory: 8192
        extraRunQuantumOptions: "--job {jobName} --label {label} <FILE:qgraphFile>"
        """,
    )
    assert config.settings.project == "w_2026_47-/data-/data-{literal}-$NOT_SET_ANYWHERE"
    assert config.get("requestMemory") == 8192  # a lone {var} keeps the variable's type
    assert config.settings.extra_run_quantum_options == "--job {jobName} --label {label} <FILE:qgraphFile>"


def test_variables_resolve_in_the_lookup_scope(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        extraRunQuantumOptions: "--mode {mode}"
        mode: default
        pipetask:
          isr:
            mode: fast
        """,
    )
    assert config.command("runQuantumCommand", pipetask="isr").endswith("--mode fast")
    assert config.command("runQuantumCommand", pipetask="calibrate").endswith("--mode default")


def test_environment_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME_DIR", "/home/x")
    config = load(
        tmp_path,
        """
        environment:
          A: "{payloadName}"
          B: ${HOME_DIR}/b
          N: 4
        pipetask:
          isr:
            environment:
              A: isr-only
        """,
    )
    assert config.environment() == {"A": "demo", "B": "/home/x/b", "N": "4"}
    assert config.environment(pipetask="isr") == {"A": "isr-only", "B": "/home/x/b", "N": "4"}
    assert config.settings.environment == {"A": "demo", "B": "/home/x/b", "N": "4"}


def test_cluster_specs(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        clusterAlgorithm: dimensions
        cluster:
          calib:
            pipetasks: isr, calibrate
            dimensions: visit, detector
            equalDimensions: "visit:exposure"
            findDependencyMethod: sink
            partitionMaxSize: 10
          coadd:
            pipetasks: [makeWarp, assembleCoadd]
            dimensions: [tract, patch]
        """,
    )
    calib = config.clusters["calib"]
    assert calib.pipetasks == ("isr", "calibrate")
    assert calib.dimensions == ("visit", "detector")
    assert calib.equal_dimensions == (("visit", "exposure"),)
    assert calib.find_dependency_method == "sink"
    assert calib.partition_max_size == 10 and calib.partition_max_clusters is None
    assert config.clusters["coadd"].dimensions == ("tract", "patch")


def test_dump_yaml_reloads_to_the_same_settings(tmp_path: Path) -> None:
    write(tmp_path, "inc.yaml", "campaign: c1\n")
    config = load(
        tmp_path,
        "includeConfigs: [inc.yaml]\nproject: '{{x}}'\npipetask:\n  isr:\n    requestMemory: 4096\n",
    )
    assert config.settings.project == "{x}"
    dumped = write(tmp_path, "dump/resolved.yaml", config.dump_yaml())
    assert "includeConfigs" not in yaml.safe_load(dumped.read_text())
    again = load_bps_config(dumped)
    assert again.settings.model_dump(exclude={"include_configs"}) == config.settings.model_dump(
        exclude={"include_configs"}
    )
    assert again.get("requestMemory", pipetask="isr") == 4096
    assert again.command("runQuantumCommand") == config.command("runQuantumCommand")


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    with pytest.raises(AttributeError, match="frozen"):
        config.path = tmp_path
    with pytest.raises(ValueError, match="frozen"):
        config.settings.project = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("given", "short"),
    [
        ("lsst.ctrl.bps.parsl.ParslService", "parsl"),
        ("lsst.ctrl.bps.htcondor.HTCondorService", "htcondor"),
        ("lsst.ctrl.bps.wms.htcondor.htcondor_service.HTCondorService", "htcondor"),
        ("lsst.ctrl.bps.panda.PanDAService", "panda"),
        ("mypackage.engines.MyService", "mypackage.engines.MyService"),
        ("parsl", "parsl"),
    ],
)
def test_wms_service_class_names(given: str, short: str) -> None:
    assert short_wms_name(given) == short
