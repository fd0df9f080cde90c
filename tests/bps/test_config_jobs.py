"""BpsConfig per-job values (JobResources aggregation), engine settings, plugin defaults, dumps."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field
from test_config_load import load, write

import bps.config
from bps.config_dump import format_config_dump, format_explain, parse_key_path
from bps.errors import BpsConfigError, EngineNotInstalledError
from bps.wms import WmsService, WmsSettings
from bps.workflow import JobResources

RESOURCES = """
requestMemory: 1000
requestWalltime: 600
memoryLimit: 100000
pipetask:
  isr:
    requestMemory: 4096
    requestCpus: 2
    requestDisk: 10
    retryUnlessExit: 3
    numberOfRetries: 5
  calibrate:
    requestWalltime: "00:20:00"
    preemptible: true
    memoryMultiplier: 2
    requestMemoryMax: 16000
    memoryLimit: 32000
cluster:
  calib:
    pipetasks: isr, calibrate
    dimensions: detector
    requestCpus: 4
  other:
    pipetasks: isr
    queue: long
finalJob:
  requestMemory: 500
"""


def test_job_resources_single_label(tmp_path: Path) -> None:
    config = load(tmp_path, RESOURCES)
    isr = config.job_resources(cluster=None, label_counts={"isr": 1})
    assert isr == JobResources(
        request_cpus=2,
        request_memory=4096,
        memory_limit=100000,
        request_disk=10,
        request_walltime=600,
        number_of_retries=5,
        retry_unless_exit=(3,),
    )
    other = config.job_resources(cluster=None, label_counts={"other": 1})
    assert other.request_memory == 1000 and other.retry_unless_exit == (1, 2) and other.number_of_retries == 3


def test_job_resources_aggregate_over_a_cluster(tmp_path: Path) -> None:
    config = load(tmp_path, RESOURCES)
    calib = config.job_resources(cluster="calib", label_counts={"isr": 3, "calibrate": 2})
    assert calib.request_cpus == 4  # the cluster section wins
    assert calib.request_memory == 4096  # max
    assert calib.request_memory_max == 16000  # max of the labels that set it
    assert calib.memory_multiplier == 2.0
    assert calib.memory_limit == 32000  # the smallest limit
    assert calib.request_disk == 3 * 10 + 2 * 0  # summed over quanta
    assert calib.request_walltime == 3 * 600 + 2 * 1200
    assert calib.number_of_retries == 5
    assert calib.retry_unless_exit == (1, 2, 3)  # union
    assert calib.preemptible is True  # any
    assert calib.memory_for_attempt(3) == 16000
    assert config.job_resources(cluster="calib", label_counts={"isr": 3, "calibrate": 2}) is calib  # cached
    assert config.job_resources(cluster="other", label_counts={"isr": 1}).queue == "long"


def test_job_resources_command_line_wins(tmp_path: Path) -> None:
    config = load(tmp_path, RESOURCES, requestMemory=7777)
    assert (
        config.job_resources(cluster="calib", label_counts={"isr": 1, "calibrate": 1}).request_memory == 7777
    )


def test_job_resources_init_and_final(tmp_path: Path) -> None:
    config = load(tmp_path, RESOURCES)
    final = config.job_resources(cluster="finalJob", label_counts={})
    assert final.request_memory == 500 and final.number_of_retries == 1
    init = config.job_resources(cluster=None, label_counts={"pipetaskInit": 1})
    assert init.request_memory == 1000 and init.number_of_retries == 1


def test_job_resources_disagreeing_queue(tmp_path: Path) -> None:
    config = load(tmp_path, "pipetask:\n  a:\n    queue: short\n  b:\n    queue: long\n")
    with pytest.raises(
        BpsConfigError, match=re.escape("queue of cluster 'c': the tasks of one job disagree")
    ):
        config.job_resources(cluster="c", label_counts={"a": 1, "b": 1})


class ToySettings(WmsSettings):
    """A small engine settings class, like a plugin's."""

    site_class: str = Field(default="local", alias="class")
    max_workers: int = 2
    partition: str | None = None


def test_engine_settings(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        computeSite: cluster
        site:
          cluster:
            class: lsst.ctrl.bps.parsl.sites.Slurm
            maxWorkers: 8
            partition: "{campaign}-part"
            requestMemory: 9000
        campaign: c7
        """,
    )
    settings = config.engine_settings(ToySettings)
    assert isinstance(settings, ToySettings)
    assert (settings.site_class, settings.max_workers, settings.partition) == ("slurm", 8, "c7-part")
    assert config.job_resources(cluster=None, label_counts={"isr": 1}).request_memory == 9000


@pytest.mark.parametrize(
    ("site", "message"),
    [
        ("maxWorker: 3", "site.local.maxWorker: unknown key; did you mean maxWorkers?"),
        ("maxWorkers: many", "site.local.maxWorkers: Input should be a valid integer"),
    ],
)
def test_engine_settings_errors(tmp_path: Path, site: str, message: str) -> None:
    config = load(tmp_path, f"site:\n  local:\n    {site}\n")
    with pytest.raises(BpsConfigError, match=re.escape(f"{tmp_path / 'submit.yaml'}: {message}")):
        config.engine_settings(ToySettings)


def test_engine_settings_unknown_site(tmp_path: Path) -> None:
    config = load(tmp_path, "computeSite: lcoal\n")
    with pytest.raises(BpsConfigError, match=re.escape("computeSite: no site.lcoal section (sites: local)")):
        config.engine_settings(ToySettings)


class ToyService(WmsService):
    """An engine whose defaults file sets a site and a resource."""

    name = "toy"
    capabilities: ClassVar[frozenset] = frozenset()  # type: ignore[type-arg]
    settings_class = ToySettings

    @classmethod
    def engine_version(cls) -> str:
        return "0"

    prepare = submit = status = report = None  # type: ignore[assignment]


def test_plugin_defaults_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = write(tmp_path, "toy_defaults.yaml", "requestCpus: 6\nsite:\n  toysite:\n    maxWorkers: 5\n")
    monkeypatch.setattr(ToyService, "defaults_file", defaults)

    def fake_load(name: str) -> type[WmsService]:
        assert name == "toy"
        return ToyService

    monkeypatch.setattr(bps.config, "load_service_class", fake_load)
    config = load(tmp_path, "wmsServiceClass: toy\ncomputeSite: toysite\n")
    assert config.get("requestCpus") == 6
    assert [s.layer for s in config.explain("requestCpus")] == ["plugin defaults (toy)", "bps defaults"]
    assert config.engine_settings(ToySettings) == ToySettings(max_workers=5)


def test_engine_not_installed_is_not_a_load_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> type[WmsService]:
        raise EngineNotInstalledError(f"Engine {name!r} is not installed")

    monkeypatch.setattr(bps.config, "load_service_class", missing)
    assert load(
        tmp_path, "wmsServiceClass: lsst.ctrl.bps.htcondor.HTCondorService\n"
    ).settings.wms_service_class == ("htcondor")


def test_explain_names_layers(tmp_path: Path) -> None:
    write(tmp_path, "inc.yaml", "requestMemory: 3000\n")
    config = load(
        tmp_path,
        "includeConfigs: [inc.yaml]\nrequestMemory: 2500\npipetask:\n  isr:\n    requestMemory: 4096\n",
    )
    text = format_explain(config, "pipetask.isr.requestMemory")
    lines = text.splitlines()
    assert lines[0] == "requestMemory (pipetask=isr, site=local) = 4096"
    assert re.match(r"  used  pipetask\.isr +4096 +\[.*submit\.yaml\]", lines[1])
    assert re.match(r"        submit file +2500 ", lines[2])
    assert re.match(r"        include inc\.yaml +3000 +\[.*inc\.yaml\]", lines[3])
    assert re.match(r"        bps defaults +2048 +\[.*bps_defaults\.yaml\]", lines[4])
    assert (
        format_explain(config, "requestMemoryMax") == "requestMemoryMax (site=local): not set in any layer.\n"
    )
    with pytest.raises(BpsConfigError, match="requestMemroy: unknown key; did you mean requestMemory"):
        format_explain(config, "requestMemroy")
    with_override = load(tmp_path, "", outputRun="u/x/y")
    assert "used  command line" in format_explain(with_override, "payload.outputRun")


def test_parse_key_path() -> None:
    assert parse_key_path("pipetask.isr.requestMemory") == ("requestMemory", {"pipetask": "isr"})
    assert parse_key_path("site.local.class") == ("class", {"site": "local"})
    assert parse_key_path("finalJob.whenRun") == ("whenRun", {"cluster": "finalJob"})
    assert parse_key_path("payload.butlerConfig") == ("butlerConfig", {})
    assert parse_key_path("requestCpus") == ("requestCpus", {})


def test_config_dump(tmp_path: Path) -> None:
    config = load(tmp_path, "pipetask:\n  isr:\n    requestMemory: 4096\n")
    text = format_config_dump(config)
    assert re.search(r"^payload\.payloadName: demo +# submit file$", text, re.M)
    assert re.search(r"^requestMemory: 2048 +# bps defaults$", text, re.M)
    assert re.search(r"^pipetask\.isr\.requestMemory: 4096 +# pipetask\.isr \(submit\.yaml\)$", text, re.M)
    assert re.search(r"^operator: \S+ +# bps defined$", text, re.M)
    assert re.search(r"^finalJob\.whenRun: ALWAYS +# finalJob \(bps_defaults\.yaml\)$", text, re.M)
