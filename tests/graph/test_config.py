"""Typed task configs: declaration checks, validation, overrides, history, freezing, plain data, connections."""

from __future__ import annotations

import copy
import inspect
import json
import pickle
import time
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from butler.formatters import PydanticConfigFormatter
from butler.storage_classes import StorageClassRegistry
from graph.config import Config, PipelineTaskConfig, field, format_config, format_history
from graph.config_history import HistoryEntry
from graph.connections import Input, Output, PipelineTaskConnections, PrerequisiteInput
from graph.errors import ConfigError, ConfigFieldError, ConfigValueError, ConnectionDefinitionError


class StatsConfig(Config):
    clip: float = field(3.0, doc="Sigma-clipping threshold.", gt=0)
    iterations: int = field(2, doc="Clipping iterations.", ge=1)


class IsrConfig(Config):
    do_bias: bool = field(True, doc="Subtract the bias.")
    do_flat: bool = field(True, doc="Divide by the flat.")
    gain: float = pydantic.Field(1.5, description="Gain (e-/ADU) when the header has none.")
    label: str = field("isr", doc="A free-form label.")
    saturation: float | None = field(None, doc="Saturation level (ADU); None: from the header.")
    bad_columns: list[int] = field(default_factory=list, doc="Columns to mask.")
    weights: dict[str, float] = field(default_factory=dict, doc="Per-band weights.")
    stats: StatsConfig = field(default_factory=StatsConfig, doc="Statistics of the overscan.")


class DemoConnections(PipelineTaskConnections, dimensions=("instrument", "exposure", "detector")):
    raw = Input(
        name="raw",
        storage_class="Image",
        dimensions=("instrument", "exposure", "detector"),
        doc="Raw frames.",
    )
    bias = PrerequisiteInput(name="bias", storage_class="Image", dimensions=("instrument", "detector"))
    post_isr = Output(
        name="postISRCCD",
        storage_class="Image",
        dimensions=("instrument", "exposure", "detector"),
        doc="Output.",
    )


class DemoTaskConfig(PipelineTaskConfig, connections=DemoConnections):
    do_flat: bool = field(True, doc="Divide by the flat.")
    stats: StatsConfig = field(default_factory=StatsConfig, doc="Statistics.")
    bands: tuple[str, ...] = field(("g", "r"), doc="Bands to process.")


class DerivedTaskConfig(DemoTaskConfig):
    extra: int = field(7, doc="One more field.")


class OtherConnections(PipelineTaskConnections, dimensions=("instrument",)):
    table = Output(name="summary", storage_class="ArrowTable", dimensions=("instrument",))


class RewiredTaskConfig(DemoTaskConfig, connections=OtherConnections):
    pass


# -- declaration checks -------------------------------------------------------------------------------


def test_fields_need_a_type_a_default_and_a_doc() -> None:
    with pytest.raises(ConfigError, match=r"NoDefault\.x has no default"):

        class NoDefault(Config):
            x: int = field(doc="No default.")

    with pytest.raises(ConfigError, match=r"NoDoc\.x has no doc"):

        class NoDoc(Config):
            x: int = 3

    with pytest.raises(ConfigError, match=r"NoType.*'x'"):

        class NoType(Config):
            x = field(3, doc="No type.")

    with pytest.raises(ConfigError, match=r"Shadow.*'freeze'"):

        class Shadow(Config):
            freeze: bool = field(True, doc="Clashes with Config.freeze.")

    class Fine(Config):
        x: int = field(3, doc="Fine.")
        y: str = pydantic.Field("a", description="Also fine.")

    assert Fine().x == 3 and Fine().y == "a"


def test_construction_validates_and_wraps_pydantic_errors() -> None:
    assert IsrConfig(gain=2).gain == 2.0
    with pytest.raises(ConfigValueError, match=r"Invalid IsrConfig: gain: .*valid number.*'lots'") as info:
        IsrConfig(gain="lots")
    assert not isinstance(info.value, pydantic.ValidationError)
    with pytest.raises(ConfigFieldError, match=r"unknown field 'do_flatt'; did you mean 'do_flat'"):
        IsrConfig(do_flatt=False)


# -- validation on assignment ----------------------------------------------------------------------------


def test_wrong_type_names_path_value_and_expected_type() -> None:
    config = IsrConfig()
    with pytest.raises(ConfigValueError) as info:
        config.gain = "lots"
    message = str(info.value)
    assert "'gain'" in message and "'lots'" in message and "expected float" in message
    with pytest.raises(ConfigValueError, match=r"-1 for config field 'stats\.clip'.*greater than 0"):
        config.apply_override("stats.clip", -1, "test")
    with pytest.raises(
        ConfigValueError, match=r"'bad_columns'.*expected list\[int\].*1: Input should be a valid integer"
    ):
        config.bad_columns = [1, "x"]
    assert config.gain == 1.5 and config.stats.clip == 3.0 and config.bad_columns == []


def test_unknown_fields_suggest_close_names() -> None:
    config = IsrConfig()
    with pytest.raises(ConfigFieldError, match=r"Unknown config field 'do_flatt'.*did you mean 'do_flat'"):
        config.do_flatt = False
    with pytest.raises(ConfigFieldError, match=r"did you mean 'saturation'"):
        _ = config.saturaton
    with pytest.raises(ConfigFieldError, match=r"'stats\.clipp'.*StatsConfig has no field 'clipp'.*'clip'"):
        config.apply_override("stats.clipp", 2, "test")
    with pytest.raises(ConfigFieldError, match=r"'gain' holds a float value, not a sub-config"):
        config.apply_override("gain.value", 2, "test")
    with pytest.raises(ConfigFieldError, match=r"unknown field 'stats\.clp'; did you mean 'clip'"):
        IsrConfig.from_dict({"stats": {"clp": 1}})
    assert not hasattr(config, "nope")  # ConfigFieldError is an AttributeError
    with pytest.raises(ConfigError, match="cannot be deleted"):
        del config.gain


def test_nested_configs_are_independent_and_accept_mappings() -> None:
    a, b = IsrConfig(), IsrConfig()
    a.stats.clip = 5.0
    assert b.stats.clip == 3.0
    a.stats = {"clip": 2.0}
    assert isinstance(a.stats, StatsConfig) and a.stats.clip == 2.0 and a.stats.iterations == 2


# -- overrides -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ("do_flat", "false", False),
        ("do_flat", "False", False),
        ("gain", "2", 2.0),
        ("label", "3", "3"),
        ("label", "null", "null"),
        ("label", "", ""),
        ("saturation", "null", None),
        ("saturation", "6.5e4", 65000.0),
        ("bad_columns", "[1, 2]", [1, 2]),
        ("weights", "{g: 1.5}", {"g": 1.5}),
        ("stats.iterations", "4", 4),
    ],
)
def test_string_overrides_are_parsed_as_yaml(path: str, text: str, expected: Any) -> None:
    config = IsrConfig()
    config.apply_override(path, text, "command line")
    value: Any = config
    for part in path.split("."):
        value = getattr(value, part)
    assert value == expected and type(value) is type(expected)


def test_bad_string_override_reports_the_value() -> None:
    with pytest.raises(ConfigValueError, match=r"Invalid value 'lots' for config field 'gain'"):
        IsrConfig().apply_override("gain", "lots", "command line")
    with pytest.raises(ConfigValueError, match=r"\[1, 'x'\] for config field 'bad_columns'"):
        IsrConfig().apply_override("bad_columns", "[1, x]", "command line")
    with pytest.raises(ConfigFieldError, match="Invalid config field path"):
        IsrConfig().apply_override("stats..clip", 1, "command line")


def test_apply_overrides_nested_and_dotted_last_wins() -> None:
    config = IsrConfig()
    config.apply_overrides(
        {
            "stats": {"clip": 4.0, "iterations": "3"},
            "stats.clip": 5.0,
            "weights": {"g": 1.0, "r": 2.0},  # a dict-valued field takes the mapping whole
            "do_flat": False,
        },
        "pipeline demo.yaml",
    )
    assert config.stats.clip == 5.0 and config.stats.iterations == 3
    assert config.weights == {"g": 1.0, "r": 2.0} and config.do_flat is False
    assert [e.value for e in config.history("stats.clip")] == [3.0, 4.0, 5.0]
    with pytest.raises(ConfigFieldError, match=r"'stats\.clipp'"):
        config.apply_overrides({"stats": {"clipp": 1}}, "x")


def test_to_dict_shaped_overrides_round_trip() -> None:
    source = IsrConfig(do_flat=False)
    source.stats.iterations = 5
    target = IsrConfig()
    target.apply_overrides(source.to_dict(), "copied")
    assert target.diff(source) == []


# -- python override files ---------------------------------------------------------------------------


def test_load_python_binds_config_and_records_lines(tmp_path: Path) -> None:
    path = tmp_path / "overrides.py"
    path.write_text("import math\n\nconfig.do_flat = False\nconfig.stats.clip = math.sqrt(16)\n")
    config = IsrConfig()
    config.load_python(path)
    assert config.do_flat is False and config.stats.clip == 4.0
    assert config.history("do_flat")[-1] == HistoryEntry(False, f"file {path}:3")
    config.load_python(path, "command line: -C isr:overrides.py")
    assert config.history("stats.clip")[-1].source == "command line: -C isr:overrides.py:4"


def test_load_python_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text("config.do_flat = False\n\nconfig.gain = 1 / 0\n")
    with pytest.raises(ConfigError, match=rf"{path}, line 3: ZeroDivisionError: division by zero"):
        IsrConfig().load_python(path)
    path.write_text("x = 1\nconfig.do_flatt = True\n")
    with pytest.raises(
        ConfigFieldError, match=rf"{path}, line 2: Unknown config field 'do_flatt'.*'do_flat'"
    ):
        IsrConfig().load_python(path)
    path.write_text("def helper(c):\n    c.gain = 'lots'\n\nhelper(config)\n")
    with pytest.raises(ConfigValueError, match=rf"{path}, line 2: Invalid value 'lots'"):
        IsrConfig().load_python(path)
    path.write_text("config.do_flat = (\n")
    with pytest.raises(ConfigError, match=rf"{path}, line 1: syntax error"):
        IsrConfig().load_python(path)
    with pytest.raises(ConfigError, match="Cannot read config override file"):
        IsrConfig().load_python(tmp_path / "missing.py")


# -- history -----------------------------------------------------------------------------------------


def test_history_lists_default_then_every_override_in_order() -> None:
    config = IsrConfig()
    assert config.history("do_flat") == [HistoryEntry(True, "default")]
    config.apply_overrides({"do_flat": False}, "pipeline demo.yaml")
    config.apply_override("do_flat", "True", "command line -c isr:do_flat=True")
    config.do_flat = False
    assignment_line = inspect.currentframe().f_lineno - 1  # type: ignore[union-attr]
    assert config.history("do_flat") == [
        HistoryEntry(True, "default"),
        HistoryEntry(False, "pipeline demo.yaml"),
        HistoryEntry(True, "command line -c isr:do_flat=True"),
        HistoryEntry(False, f"{__file__}:{assignment_line}"),
    ]
    assert config.do_flat is False  # last wins
    assert IsrConfig(gain=2).history("gain") == [HistoryEntry(2.0, "constructor")]


def test_history_keeps_copies_of_mutable_values() -> None:
    config = IsrConfig()
    columns = [1]
    config.bad_columns = columns
    columns.append(2)
    config.apply_override("bad_columns", "[3]", "x")
    assert [e.value for e in config.history("bad_columns")] == [[], [1], [3]]


def test_format_history_aligns_values_newest_last() -> None:
    config = IsrConfig()
    config.apply_override("label", "calibrate", "pipeline demo.yaml")
    config.apply_override("label", "x", "command line")
    assert format_history(config, "label").splitlines() == [
        "isr        default",
        "calibrate  pipeline demo.yaml",
        "x          command line",
    ]
    with pytest.raises(ConfigFieldError, match="did you mean 'label'"):
        config.history("labl")


# -- freezing ----------------------------------------------------------------------------------------


def test_freeze_is_recursive_and_names_the_field() -> None:
    config = IsrConfig(bad_columns=[1, 2], weights={"g": 1.0})
    config.freeze()
    config.freeze()  # idempotent
    assert config.frozen and config.stats.frozen
    with pytest.raises(ConfigError, match=r"IsrConfig\.do_flat.*frozen"):
        config.do_flat = False
    with pytest.raises(ConfigError, match=r"stats\.clip.*frozen"):
        config.apply_override("stats.clip", 1.0, "x")
    with pytest.raises(ConfigError, match=r"StatsConfig\.clip.*frozen"):
        config.stats.clip = 1.0
    with pytest.raises(ConfigError, match=r"Cannot modify IsrConfig\.bad_columns: the config is frozen"):
        config.bad_columns.append(3)
    with pytest.raises(ConfigError, match=r"IsrConfig\.weights"):
        config.weights["r"] = 2.0
    assert config.bad_columns == [1, 2] and config.weights == {"g": 1.0}
    assert config.to_dict()["bad_columns"] == [1, 2]


def test_frozen_configs_copy_and_pickle() -> None:
    config = IsrConfig(bad_columns=[1])
    config.freeze()
    for clone in (copy.deepcopy(config), pickle.loads(pickle.dumps(config))):
        assert clone == config and clone.frozen
        with pytest.raises(ConfigError):
            clone.bad_columns.append(2)


# -- plain data ------------------------------------------------------------------------------------------


def test_to_dict_is_plain_and_round_trips() -> None:
    config = IsrConfig(saturation=6e4, bad_columns=[3], weights={"g": 0.5})
    config.stats.clip = 2.5
    config.freeze()
    data = config.to_dict()
    assert yaml.safe_load(yaml.safe_dump(data)) == data and json.loads(json.dumps(data)) == data
    assert set(data) == set(IsrConfig.model_fields)  # no private state
    clone = IsrConfig.from_dict(data)
    assert clone == config and clone.diff(config) == [] and not clone.frozen
    assert IsrConfig.from_dict({}) == IsrConfig()
    with pytest.raises(ConfigValueError, match=r"stats\.clip: Input should be greater than 0"):
        IsrConfig.from_dict({"stats": {"clip": 0}})


def test_diff_lists_differing_fields() -> None:
    a, b = IsrConfig(), IsrConfig()
    assert a.diff(b) == []
    b.do_flat = False
    b.stats.iterations = 4
    b.bad_columns = [7]
    assert a.diff(b) == ["do_flat: true != false", "bad_columns: [] != [7]", "stats.iterations: 2 != 4"]
    assert a.diff(StatsConfig())[0] == "config class: test_config.IsrConfig != test_config.StatsConfig"
    assert "clip: <missing> != 3.0" in a.diff(StatsConfig())


def test_iter_fields_and_format_config_with_patterns() -> None:
    config = IsrConfig()
    paths = [path for path, _, _ in config.iter_fields()]
    assert paths == [
        "do_bias",
        "do_flat",
        "gain",
        "label",
        "saturation",
        "bad_columns",
        "weights",
        "stats.clip",
        "stats.iterations",
    ]
    assert ("stats.clip", 3.0, "Sigma-clipping threshold.") in list(config.iter_fields())
    assert format_config(config, "do_*").splitlines() == [
        "do_bias: true  # Subtract the bias.",
        "do_flat: true  # Divide by the flat.",
    ]
    assert format_config(config, "STATS").splitlines() == [
        "stats.clip: 3.0  # Sigma-clipping threshold.",
        "stats.iterations: 2  # Clipping iterations.",
    ]
    assert (
        format_config(config, "saturation")
        == "saturation: null  # Saturation level (ADU); None: from the header."
    )
    assert len(format_config(config).splitlines()) == len(paths)
    assert format_config(config, "nothing*") == ""


# -- pipeline task configs and connections -----------------------------------------------------------


def test_connections_field_is_generated_from_the_connections_class() -> None:
    config = DemoTaskConfig()
    assert DemoTaskConfig.connections_class is DemoConnections
    assert config.connections.to_dict() == {"raw": "raw", "bias": "bias", "post_isr": "postISRCCD"}
    docs = {path: doc for path, _, doc in config.iter_fields()}
    assert docs["connections.raw"] == "Raw frames."
    assert docs["connections.bias"] == "Dataset type name of connection 'bias'."
    config.apply_override("connections.post_isr", "myPostIsr", "pipeline")
    assert config.connections.post_isr == "myPostIsr"
    assert config.history("connections.post_isr")[0] == HistoryEntry("postISRCCD", "default")
    with pytest.raises(ConfigValueError, match=r"'connections\.raw'.*invalid dataset type name 'raw frames'"):
        config.apply_override("connections.raw", "raw frames", "pipeline")
    with pytest.raises(ConfigFieldError, match=r"did you mean 'post_isr'"):
        config.apply_override("connections.postisr", "x", "pipeline")
    connections = DemoConnections(config=config)
    assert connections.connection("post_isr").name == "myPostIsr"
    assert connections.connection("raw").name == "raw"


def test_connections_are_inherited_or_replaced_by_subclasses() -> None:
    derived = DerivedTaskConfig()
    assert DerivedTaskConfig.connections_class is DemoConnections
    assert derived.connections.to_dict() == DemoTaskConfig().connections.to_dict()
    assert derived.extra == 7 and derived.do_flat is True
    rewired = RewiredTaskConfig()
    assert RewiredTaskConfig.connections_class is OtherConnections
    assert rewired.connections.to_dict() == {"table": "summary"} and rewired.bands == ("g", "r")
    assert PipelineTaskConfig.connections_class is None and PipelineTaskConfig().connections.to_dict() == {}


def test_bad_connections_keyword() -> None:
    with pytest.raises(ConfigError, match="only accepted by PipelineTaskConfig subclasses"):

        class NotATask(Config, connections=DemoConnections):
            pass

    with pytest.raises(ConnectionDefinitionError, match="not a connections class"):

        class NotConnections(PipelineTaskConfig, connections=int):
            pass

    class ClashConnections(PipelineTaskConnections, dimensions=()):
        diff = Output(name="diffim", storage_class="Image", dimensions=())

    with pytest.raises(
        ConnectionDefinitionError, match=r"ClashConnections\.diff.*taken by a Config attribute"
    ):

        class Clash(PipelineTaskConfig, connections=ClashConnections):
            pass


def test_pipeline_task_config_round_trips_through_the_butler_formatter(tmp_path: Path) -> None:
    config = DemoTaskConfig(do_flat=False)
    config.stats.clip = 4.5
    config.apply_override("connections.raw", "rawish", "pipeline demo.yaml")
    config.freeze()
    path = tmp_path / "demo_config.yaml"
    formatter = PydanticConfigFormatter()
    formatter.write(config, path)
    stored = yaml.safe_load(path.read_text())
    assert stored["class"] == "test_config.DemoTaskConfig"
    assert stored["config"]["connections"] == {"raw": "rawish", "bias": "bias", "post_isr": "postISRCCD"}
    assert "history" not in path.read_text() and "frozen" not in path.read_text()
    reloaded = formatter.read(path, StorageClassRegistry.default()["Config"])
    assert type(reloaded) is DemoTaskConfig
    assert reloaded.diff(config) == [] and config.diff(reloaded) == [] and reloaded == config
    assert reloaded.bands == ("g", "r") and reloaded.connections.raw == "rawish"


# -- performance -------------------------------------------------------------------------------------


def test_a_fifty_field_config_constructs_well_under_a_millisecond() -> None:
    namespace: dict[str, Any] = {"__annotations__": {f"f{i}": int for i in range(50)}}
    namespace.update({f"f{i}": field(i, doc=f"Field {i}.") for i in range(50)})
    wide = type(Config)("WideConfig", (Config,), namespace)
    wide()  # warm up
    count = 200
    start = time.perf_counter()
    for _ in range(count):
        config = wide()
    per_config = (time.perf_counter() - start) / count
    assert per_config < 2e-4, f"{per_config * 1e6:.0f} us per construction"
    start = time.perf_counter()
    for i in range(count):
        config.f3 = i
    assert (time.perf_counter() - start) / count < 2e-4
