"""Sub-task config fields: ConfigurableField (retarget) and ChoiceField (TaskRegistry), overrides, history, storage."""

from __future__ import annotations

import copy
import inspect
import pickle
from pathlib import Path

import pytest
import yaml

from butler.formatters import PydanticConfigFormatter
from butler.storage_classes import StorageClassRegistry
from graph.config import (
    ChoiceField,
    ChoiceInstance,
    Config,
    ConfigurableField,
    ConfigurableInstance,
    HistoryEntry,
    TaskRegistry,
    field,
    format_config,
    format_history,
)
from graph.errors import ConfigError, ConfigFieldError, ConfigValueError
from graph.task import Task


class BackgroundConfig(Config):
    bin_size: int = field(128, doc="Size of the background bins (pixels).", gt=0)
    order: int = field(2, doc="Polynomial order.")


class BackgroundTask:
    ConfigClass = BackgroundConfig
    _DefaultName = "background"


class FancyBackgroundTask:
    """Another implementation with the same config class."""

    ConfigClass = BackgroundConfig
    _DefaultName = "background"


class SplineConfig(Config):
    knots: int = field(8, doc="Number of spline knots.")


class SplineBackgroundTask:
    ConfigClass = SplineConfig
    _DefaultName = "background"


class SimpleDetectionConfig(Config):
    threshold: float = field(5.0, doc="Detection threshold (sigma).")


class PeakDetectionConfig(Config):
    threshold: float = field(3.0, doc="Peak threshold (sigma).")
    min_pixels: int = field(4, doc="Fewest pixels in a peak.")


class SimpleDetection(Task):
    ConfigClass = SimpleDetectionConfig
    _DefaultName = "detection"


class PeakDetection(Task):
    ConfigClass = PeakDetectionConfig
    _DefaultName = "detection"


DETECTORS = TaskRegistry("Source detection algorithms.")
DETECTORS.register("simple", SimpleDetection)
DETECTORS.register("peak", PeakDetection)


class CalibrateConfig(Config):
    do_background: bool = field(True, doc="Subtract the background.")
    background = ConfigurableField(target=BackgroundTask, doc="How to fit the background.")
    detection = ChoiceField(DETECTORS, default="simple", doc="Source detection algorithm.")


class CalibrateTask(Task):
    ConfigClass = CalibrateConfig
    _DefaultName = "calibrate"


# -- ConfigurableField -----------------------------------------------------------------------------------


def test_configurable_field_holds_target_and_config() -> None:
    config = CalibrateConfig()
    assert isinstance(config.background, ConfigurableInstance)
    assert config.background.target is BackgroundTask
    assert (
        isinstance(config.background.config, BackgroundConfig)
        and config.background.active is config.background.config
    )
    assert config.background.ConfigClass is BackgroundConfig
    assert config.background.bin_size == 128
    assert CalibrateConfig().background.config is not config.background.config  # one per instance
    config.background.bin_size = 64
    line = inspect.currentframe().f_lineno - 1  # type: ignore[union-attr]
    config.apply_override("background.order", "3", "pipeline demo.yaml")
    assert config.background.config.bin_size == 64 and config.background.order == 3
    assert config.history("background.bin_size") == [
        HistoryEntry(128, "default"),
        HistoryEntry(64, f"{__file__}:{line}"),
    ]
    with pytest.raises(ConfigValueError, match=r"'background\.bin_size'.*greater than 0"):
        config.apply_override("background.bin_size", 0, "x")
    with pytest.raises(ConfigFieldError, match=r"'background\.bin_sise'.*did you mean 'bin_size'"):
        config.apply_override("background.bin_sise", 1, "x")
    with pytest.raises(ConfigFieldError, match="did you mean 'order'"):
        config.background.ordr = 1


def test_retarget_keeps_or_resets_the_config() -> None:
    config = CalibrateConfig()
    config.background.bin_size = 32
    config.background.retarget(FancyBackgroundTask)
    assert config.background.target is FancyBackgroundTask and config.background.bin_size == 32
    config.background.retarget(SplineBackgroundTask)
    assert isinstance(config.background.config, SplineConfig) and config.background.knots == 8
    config.background.retarget(BackgroundTask, ConfigClass=BackgroundConfig)
    assert config.background.bin_size == 128
    history = config.history("background")
    assert [entry.value for entry in history] == [
        "test_config_fields.BackgroundTask",
        "test_config_fields.FancyBackgroundTask",
        "test_config_fields.SplineBackgroundTask",
        "test_config_fields.BackgroundTask",
    ]
    assert history[1].source.startswith(f"{__file__}:")
    assert config.history("background.target") == history
    with pytest.raises(ConfigValueError, match="is not a task class"):
        config.background.retarget(int)


def test_retarget_by_import_path_from_overrides() -> None:
    config = CalibrateConfig()
    config.apply_override(
        "background.target", "test_config_fields.SplineBackgroundTask", "pipeline demo.yaml"
    )
    assert config.background.target is SplineBackgroundTask
    assert config.history("background")[-1] == HistoryEntry(
        "test_config_fields.SplineBackgroundTask", "pipeline demo.yaml"
    )
    with pytest.raises(ConfigValueError, match=r"Cannot import 'test_config_fields\.Nope'"):
        config.apply_override("background.target", "test_config_fields.Nope", "x")
    with pytest.raises(ConfigValueError, match=r"Cannot import 'no_such_module_here\.Task'"):
        config.apply_override("background.target", "no_such_module_here.Task", "x")
    with pytest.raises(ConfigFieldError, match=r"'background\.active' cannot be set"):
        config.apply_override("background.active", 1, "x")


def test_configurable_field_declaration_errors() -> None:
    with pytest.raises(ConfigValueError, match="is not a task class"):
        ConfigurableField(target=int, doc="Not a task.")
    with pytest.raises(ConfigError, match="doc"):
        ConfigurableField(target=BackgroundTask, doc="")

    class TargetConfig(Config):
        target: int = field(1, doc="Clashes with ConfigurableInstance.target.")

    class ClashingTask:
        ConfigClass = TargetConfig

    with pytest.raises(ConfigValueError, match=r"fields \['target'\]"):
        ConfigurableField(target=ClashingTask, doc="Clash.")


# -- ChoiceField ---------------------------------------------------------------------------------------


def test_task_registry() -> None:
    registry = TaskRegistry()
    assert registry.register("simple", SimpleDetection) is SimpleDetection
    registry.register("simple", SimpleDetection)  # same class again is fine
    with pytest.raises(ConfigError, match="already registered"):
        registry.register("simple", PeakDetection)
    with pytest.raises(ConfigValueError, match="is not a task class"):
        registry.register("int", int)
    with pytest.raises(KeyError, match="did you mean 'simple'"):
        registry["simpel"]
    assert list(registry) == ["simple"] and len(registry) == 1 and "simple" in registry


def test_choice_field_switches_implementation() -> None:
    config = CalibrateConfig()
    assert isinstance(config.detection, ChoiceInstance)
    assert config.detection.name == "simple" and config.detection.target is SimpleDetection
    assert config.detection.threshold == 5.0 and isinstance(config.detection.active, SimpleDetectionConfig)
    config.detection.threshold = 6.0
    config.apply_override("detection.name", "peak", "command line")
    assert config.detection.target is PeakDetection and config.detection.active == PeakDetectionConfig()
    config.apply_override("detection.threshold", 3, "command line")
    config.detection.min_pixels = 9
    assert config.detection.active.threshold == 3.0 and config.detection.min_pixels == 9
    config.detection.name = "simple"
    assert config.detection.threshold == 6.0  # its earlier config is kept
    config.detection["peak"].threshold = 2.0  # configure an inactive implementation
    config.detection.name = "peak"
    assert config.detection.threshold == 2.0 and config.detection.min_pixels == 9
    history = config.history("detection.name")
    assert [entry.value for entry in history] == ["simple", "peak", "simple", "peak"]
    assert history[1].source == "command line" and history[2].source.startswith(f"{__file__}:")
    assert config.history("detection") == history


def test_choice_field_errors() -> None:
    config = CalibrateConfig()
    with pytest.raises(
        ConfigValueError, match=r"'peek' for 'detection\.name'.*registered: peak, simple.*'peak'"
    ):
        config.apply_override("detection.name", "peek", "x")
    with pytest.raises(ConfigValueError, match="registered implementation"):
        config.detection.name = 3
    with pytest.raises(ConfigFieldError, match=r"'detection\.min_pixels'.*SimpleDetectionConfig"):
        config.apply_override("detection.min_pixels", 3, "x")
    with pytest.raises(ConfigFieldError, match=r"'detection\.target' cannot be set; set 'detection\.name'"):
        config.apply_override("detection.target", "test_config_fields.PeakDetection", "x")
    config.apply_override("detection.target", "test_config_fields.SimpleDetection", "x")  # unchanged: fine

    class BadDefault(Config):
        detection = ChoiceField(DETECTORS, default="nope", doc="Unknown default.")

    with pytest.raises(ConfigValueError, match="'nope'"):
        BadDefault()


def test_nested_overrides_apply_the_selection_first() -> None:
    config = CalibrateConfig()
    config.apply_overrides(
        {"detection": {"threshold": 2.5, "name": "peak"}, "background": {"bin_size": 16}},
        "pipeline demo.yaml",
    )
    assert config.detection.name == "peak" and config.detection.threshold == 2.5
    assert config.background.bin_size == 16


def test_to_dict_shaped_overrides_reach_sub_task_configs() -> None:
    source = CalibrateConfig()
    source.background.retarget(SplineBackgroundTask)
    source.background.knots = 3
    source.detection.name = "peak"
    source.detection.min_pixels = 1
    target = CalibrateConfig()
    target.apply_overrides(source.to_dict(), "copied")
    assert target.diff(source) == [] and target == source


# -- plain data, freezing, display ---------------------------------------------------------------------


def test_sub_task_fields_round_trip_through_plain_data() -> None:
    config = CalibrateConfig()
    config.background.retarget(SplineBackgroundTask)
    config.detection.name = "peak"
    config.detection.threshold = 1.5
    data = config.to_dict()
    assert data["background"] == {"target": "test_config_fields.SplineBackgroundTask", "config": {"knots": 8}}
    assert data["detection"] == {
        "name": "peak",
        "target": "test_config_fields.PeakDetection",
        "config": {"threshold": 1.5, "min_pixels": 4},
    }
    assert yaml.safe_load(yaml.safe_dump(data)) == data
    clone = CalibrateConfig.from_dict(data)
    assert clone == config and clone.diff(config) == []
    assert clone.background.target is SplineBackgroundTask and clone.detection.target is PeakDetection
    assert CalibrateConfig.from_dict({"detection": "peak"}).detection.name == "peak"
    with pytest.raises(ConfigValueError, match="unexpected keys"):
        CalibrateConfig.from_dict({"background": {"bin_size": 3}})


def test_explicit_config_class_is_stored() -> None:
    class Retargeted(Config):
        background = ConfigurableField(
            target=SplineBackgroundTask, ConfigClass=BackgroundConfig, doc="Odd pairing."
        )

    config = Retargeted()
    assert isinstance(config.background.config, BackgroundConfig)
    data = config.to_dict()
    assert data["background"]["config_class"] == "test_config_fields.BackgroundConfig"
    assert Retargeted.from_dict(data) == config


def test_diff_iter_fields_and_format_config_cover_sub_tasks() -> None:
    a, b = CalibrateConfig(), CalibrateConfig()
    b.background.retarget(FancyBackgroundTask)
    b.detection.name = "peak"
    assert a.diff(b) == [
        "background.target: test_config_fields.BackgroundTask != test_config_fields.FancyBackgroundTask",
        "detection.name: simple != peak",
        "detection.threshold: 5.0 != 3.0",
        "detection.min_pixels: <missing> != 4",
    ]
    assert [path for path, _, _ in a.iter_fields()] == [
        "do_background",
        "background.target",
        "background.bin_size",
        "background.order",
        "detection.name",
        "detection.threshold",
    ]
    assert format_config(a, "detection").splitlines() == [
        "detection.name: simple  # Source detection algorithm.",
        "detection.threshold: 5.0  # Detection threshold (sigma).",
    ]
    b.detection.name = "simple"
    assert format_history(b, "detection.name").splitlines()[0] == "simple  default"


def test_freeze_reaches_sub_task_configs() -> None:
    config = CalibrateConfig()
    config.freeze()
    assert config.background.frozen and config.background.config.frozen and config.detection.active.frozen
    with pytest.raises(ConfigError, match="retarget.*frozen"):
        config.background.retarget(FancyBackgroundTask)
    with pytest.raises(ConfigError, match=r"detection\.name.*frozen"):
        config.apply_override("detection.name", "peak", "x")
    with pytest.raises(ConfigError, match="frozen"):
        config.background.bin_size = 3
    assert config.detection["peak"].frozen  # made after freezing: frozen too
    for clone in (copy.deepcopy(config), pickle.loads(pickle.dumps(config))):
        assert clone == config and clone.background.frozen and clone.detection.active.frozen
        assert clone.history("detection.name") == config.history("detection.name")


def test_butler_formatter_round_trip(tmp_path: Path) -> None:
    config = CalibrateConfig(do_background=False)
    config.background.retarget(SplineBackgroundTask)
    config.detection.name = "peak"
    config.freeze()
    path = tmp_path / "calibrate_config.yaml"
    PydanticConfigFormatter().write(config, path)
    reloaded = PydanticConfigFormatter().read(path, StorageClassRegistry.default()["Config"])
    assert reloaded.diff(config) == [] and reloaded == config


def test_tasks_build_sub_tasks_from_either_field() -> None:
    config = CalibrateConfig()
    config.detection.name = "peak"
    config.detection.threshold = 4.0

    class Calibrate(CalibrateTask):
        def __init__(self, **kwargs: object) -> None:
            super().__init__(**kwargs)  # type: ignore[arg-type]
            self.detector = self.make_subtask("detection")

    task = Calibrate(config=config)
    assert isinstance(task.detector, PeakDetection) and task.detector.config.threshold == 4.0
    assert task.detector.full_name == "calibrate.detection" and task.config.frozen
