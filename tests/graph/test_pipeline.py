"""Tests of graph.pipeline and graph.pipeline_file: pipeline YAML, imports, selection, overrides, saving."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pipeline_test_tasks import CalibrateTask, IsrTask

from graph.errors import ConfigError, ConfigFieldError, ContractError, PipelineFileError, SubsetError
from graph.pipeline import Pipeline, PythonFileOverride, ValueOverride, parse_config_option

ISR = "pipeline_test_tasks.IsrTask"
CALIBRATE = "pipeline_test_tasks.CalibrateTask"
SUMMARY = "pipeline_test_tasks.SummaryTask"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """An ingredients pipeline of three tasks with subsets, a contract, parameters and steps."""
    return write(
        tmp_path / "ingredients" / "base.yaml",
        f"""
        description: |
          Base pipeline.
          Second line.
        instrument: graph.demo.instrument.DemoCam
        parameters:
          flat_scale: 2.5
        tasks:
          isr:
            class: {ISR}
            config:
              flat_scale: parameters.flat_scale
              saturation: 60000
          calibrate: {CALIBRATE}
          summary:
            class: {SUMMARY}
            config:
              - columns: [ra]
              - columns: [ra, dec, mag]
        subsets:
          step1:
            subset: [isr, calibrate]
            description: Single-detector processing.
          step2: [summary]
          detector_only: [isr]
        contracts:
          - isr.do_flat == calibrate.do_flat
          - contract: summary.columns[0] == 'ra'
            msg: RA first
        steps:
          - label: step1
            dimensions: [instrument, visit]
          - label: step2
            dimensions: [instrument]
        """,
    )


# -- reading ---------------------------------------------------------------------------------------


def test_read_everything(base: Path) -> None:
    pipeline = Pipeline.from_yaml(base)
    assert pipeline.description.startswith("Base pipeline.\nSecond line.")
    assert pipeline.instrument == "graph.demo.instrument.DemoCam"
    assert dict(pipeline.parameters) == {"flat_scale": 2.5}
    assert pipeline.labels == ("isr", "calibrate", "summary")
    assert pipeline.tasks["calibrate"].task_class == CALIBRATE
    assert pipeline.tasks["calibrate"].overrides == ()
    summary = pipeline.tasks["summary"].overrides
    assert [o.values for o in summary if isinstance(o, ValueOverride)] == [
        {"columns": ["ra"]},
        {"columns": ["ra", "dec", "mag"]},
    ]
    assert "base.yaml (tasks.summary.config[1])" in summary[1].source
    assert pipeline.subsets["step1"].labels == ("isr", "calibrate")
    assert pipeline.subsets["step1"].description == "Single-detector processing."
    assert [c.expression for c in pipeline.contracts] == [
        "isr.do_flat == calibrate.do_flat",
        "summary.columns[0] == 'ra'",
    ]
    assert pipeline.contracts[1].msg == "RA first"
    assert [(s.label, s.dimensions) for s in pipeline.steps] == [
        ("step1", ("instrument", "visit")),
        ("step2", ("instrument",)),
    ]


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", f"description: x\ntask:\n  isr: {ISR}\n")
    with pytest.raises(PipelineFileError) as info:
        Pipeline.from_yaml(path)
    text = str(info.value)
    assert str(path) in text and "'task'" in text and "did you mean 'tasks'" in text
    assert (
        "valid keys: description, instrument, parameters, imports, tasks, subsets, contracts, steps" in text
    )


@pytest.mark.parametrize(
    ("yaml_text", "match"),
    [
        (
            f"tasks:\n  isr:\n    klass: {ISR}\n",
            r"unknown key 'klass' in tasks.isr \(did you mean 'class'\?\)",
        ),
        (
            f"tasks:\n  isr:\n    class: {ISR}\n    config:\n      python: config.do_flat = False\n",
            "'python:' is not allowed",
        ),
        (
            f"tasks:\n  isr:\n    class: {ISR}\n    config:\n      file: overrides.py\n",
            "'file:' is not allowed",
        ),
        (f"tasks:\n  isr:\n    class: {ISR}\n    config:\n      dataId: {{detector: 1}}\n", "not supported"),
        (f"tasks:\n  isr: {ISR}\n  isr: {CALIBRATE}\n", "duplicate key"),
        (f"tasks:\n  1isr: {ISR}\n", "task label '1isr' is invalid"),
        (f"tasks:\n  parameters: {ISR}\n", "reserved"),
        ("tasks: [a, b]\n", "tasks must be a mapping"),
        ("- just\n- a list\n", "must be a mapping"),
        ("tasks: {isr: [unclosed\n", "not valid pipeline YAML"),
        ("inherits: other.yaml\n", "use 'imports'"),
        (
            f"tasks:\n  isr: {ISR}\nsubsets:\n  s: [isr, calibrat]\n",
            "subset 's' names label 'calibrat' not in the pipeline",
        ),
        (f"tasks:\n  isr: {ISR}\nsubsets:\n  isr: [isr]\n", "same name as a task label"),
        (f"tasks:\n  isr: {ISR}\nsteps:\n  - label: nothing\n", "step 'nothing' is not a labeled subset"),
        (
            f"tasks:\n  isr: {ISR}\nsteps:\n  - {{label: s, dims: [x]}}\nsubsets:\n  s: [isr]\n",
            "unknown key 'dims'",
        ),
        (
            f"tasks:\n  isr: {ISR}\n  cal: {CALIBRATE}\nsubsets:\n  s: [isr]\nsteps:\n  - label: s\n",
            "'cal' in no step",
        ),
        (
            f"tasks:\n  isr: {ISR}\nsubsets:\n  a: [isr]\n  b: [isr]\nsteps:\n  - label: a\n  - label: b\n",
            "task 'isr' is in two steps, 'a' and 'b'",
        ),
        (f"tasks:\n  isr: {ISR}\ncontracts:\n  - isr.do_flat ==\n", "not a valid expression"),
        (f"tasks:\n  isr: {ISR}\ncontracts:\n  - open('x')\n", "contracts do not allow"),
        (
            f"tasks:\n  isr: {ISR}\ncontracts:\n  - {{contract: 'True', message: m}}\n",
            "unknown key 'message'",
        ),
        (
            f"tasks:\n  isr:\n    class: {ISR}\n    config:\n      saturation: parameters.sat\n",
            "parameter 'sat'",
        ),
        ("instrument: [A, B]\n", "instrument must be one string"),
        (
            "tasks:\n  isr:\n    config:\n      do_flat: false\n",
            "has no 'class' and no import defines 'isr'",
        ),
    ],
)
def test_malformed_files(tmp_path: Path, yaml_text: str, match: str) -> None:
    path = write(tmp_path / "bad.yaml", yaml_text)
    with pytest.raises((PipelineFileError, ContractError), match=match) as info:
        Pipeline.from_yaml(path)
    assert "bad.yaml" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PipelineFileError, match="does not exist"):
        Pipeline.from_yaml(tmp_path / "nope.yaml")


# -- imports ---------------------------------------------------------------------------------------


def test_import_relative_path_and_override_config(base: Path, tmp_path: Path) -> None:
    path = write(
        tmp_path / "pipelines" / "top.yaml",
        f"""
        description: Top.
        parameters:
          flat_scale: 4.0
        imports:
          - location: ../ingredients/base.yaml
        tasks:
          isr:
            class: {ISR}
            config:
              saturation: 50000
          extra:
            class: {ISR}
            config:
              connections.post_isr: otherPostISRCCD
        subsets:
          step3: [extra]
        steps:
          - {{label: step1, dimensions: [instrument, visit]}}
          - {{label: step2}}
          - {{label: step3, sharding_dimensions: [instrument, exposure]}}
        """,
    )
    pipeline = Pipeline.from_yaml(path)
    assert pipeline.labels == ("isr", "calibrate", "summary", "extra")
    assert pipeline.description == "Top."
    assert pipeline.instrument == "graph.demo.instrument.DemoCam"
    assert pipeline.parameters["flat_scale"] == 4.0
    isr = pipeline.tasks["isr"]
    assert [o.values for o in isr.overrides if isinstance(o, ValueOverride)] == [
        {"flat_scale": "parameters.flat_scale", "saturation": 60000},
        {"saturation": 50000},
    ]
    assert isr.source.endswith("base.yaml")
    assert len(pipeline.contracts) == 2
    assert [(step.label, step.dimensions) for step in pipeline.steps] == [
        ("step1", ("instrument", "visit")),
        ("step2", ()),
        ("step3", ("instrument", "exposure")),
    ]


def test_import_include_exclude_and_subset_modes(base: Path, tmp_path: Path) -> None:
    def top(entry: str) -> Pipeline:
        return Pipeline.from_yaml(write(tmp_path / "top.yaml", f"imports:\n  - {entry}\n"))

    included = top("{location: ingredients/base.yaml, include: [step1], labeledSubsetModifyMode: DROP}")
    assert included.labels == ("isr", "calibrate")
    assert set(included.subsets) == {"step1", "detector_only"}
    assert [c.expression for c in included.contracts] == ["isr.do_flat == calibrate.do_flat"]
    assert [s.label for s in included.steps] == ["step1"]

    excluded = top("{location: ingredients/base.yaml, exclude: [calibrate], labeledSubsetModifyMode: EDIT}")
    assert excluded.labels == ("isr", "summary")
    assert excluded.subsets["step1"].labels == ("isr",)
    assert excluded.contracts[0].expression == "summary.columns[0] == 'ra'"

    with pytest.raises(SubsetError, match="labeled subset 'step1' would lose label 'calibrate'"):
        top("{location: ingredients/base.yaml, exclude: [calibrate]}")
    with pytest.raises(
        SubsetError, match=r"'calibrat' is neither a task label nor a labeled subset.*'calibrate'"
    ):
        top("{location: ingredients/base.yaml, include: [calibrat]}")
    with pytest.raises(PipelineFileError, match="both 'include' and 'exclude'"):
        top("{location: ingredients/base.yaml, include: [isr], exclude: [summary]}")
    with pytest.raises(PipelineFileError, match="labeledSubsetModifyMode must be one of ASSERT, DROP, EDIT"):
        top("{location: ingredients/base.yaml, labeledSubsetModifyMode: KEEP}")

    no_contracts = top("{location: ingredients/base.yaml, importContracts: false}")
    assert no_contracts.contracts == ()
    no_instrument = top("{location: ingredients/base.yaml, instrument: null}")
    assert no_instrument.instrument is None
    other = top("{location: ingredients/base.yaml, instrument: OtherCam}")
    assert other.instrument == "OtherCam"


def test_import_conflicts_and_cycles(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "more.yaml", f"tasks:\n  isr: {ISR}\n")
    with pytest.raises(PipelineFileError) as info:
        Pipeline.from_yaml(
            write(tmp_path / "top.yaml", "imports:\n  - ingredients/base.yaml\n  - more.yaml\n")
        )
    assert "'isr' is defined by two imports" in str(info.value)
    assert "base.yaml" in str(info.value) and "more.yaml" in str(info.value)

    write(tmp_path / "a.yaml", "imports: [b.yaml]\n")
    write(tmp_path / "b.yaml", "imports: [a.yaml]\n")
    with pytest.raises(PipelineFileError, match="import each other in a cycle"):
        Pipeline.from_yaml(tmp_path / "a.yaml")

    with pytest.raises(PipelineFileError, match=r"does not exist \(imported by"):
        Pipeline.from_yaml(write(tmp_path / "top.yaml", "imports: [missing.yaml]\n"))

    monkeypatch.setenv("PIPE_DIR", str(tmp_path / "ingredients"))
    pipeline = Pipeline.from_yaml(write(tmp_path / "env.yaml", "imports:\n  - $PIPE_DIR/base.yaml\n"))
    assert pipeline.labels == ("isr", "calibrate", "summary")
    monkeypatch.delenv("PIPE_DIR")
    with pytest.raises(PipelineFileError, match="environment variable"):
        Pipeline.from_yaml(tmp_path / "env.yaml")

    write(tmp_path / "cam.yaml", f"instrument: OtherCam\ntasks:\n  other: {ISR}\n")
    with pytest.raises(PipelineFileError, match="two instruments"):
        Pipeline.from_yaml(write(tmp_path / "top.yaml", "imports: [ingredients/base.yaml, cam.yaml]\n"))


# -- selection -------------------------------------------------------------------------------------


def test_hash_selection(base: Path) -> None:
    step2 = Pipeline.from_yaml(f"{base}#step2")
    assert step2.labels == ("summary",)
    assert set(step2.subsets) == {"step2"}
    assert [s.label for s in step2.steps] == ["step2"]
    assert [c.expression for c in step2.contracts] == ["summary.columns[0] == 'ra'"]

    mixed = Pipeline.from_yaml(f"{base}#summary,detector_only")
    assert mixed.labels == ("isr", "summary")
    assert mixed.subsets["step1"].labels == ("isr",)

    with pytest.raises(SubsetError) as info:
        Pipeline.from_yaml(f"{base}#isr,calibrat")
    assert "'calibrat'" in str(info.value) and "did you mean 'calibrate'" in str(info.value)
    with pytest.raises(SubsetError, match="ranges"):
        Pipeline.from_yaml(f"{base}#isr..summary")
    with pytest.raises(SubsetError, match="Empty label selection"):
        Pipeline.from_yaml(f"{base}#")


def test_subset_and_remove_task(base: Path) -> None:
    pipeline = Pipeline.from_yaml(base)
    sub = pipeline.subset(["step1"])
    assert sub.labels == ("isr", "calibrate") and pipeline.labels == ("isr", "calibrate", "summary")
    pipeline.remove_task("calibrate")
    assert pipeline.labels == ("isr", "summary")
    assert pipeline.subsets["step1"].labels == ("isr",)
    assert [c.expression for c in pipeline.contracts] == ["summary.columns[0] == 'ra'"]
    with pytest.raises(SubsetError, match="Unknown task label 'calibrate'"):
        pipeline.remove_task("calibrate")


# -- Python construction and overrides -------------------------------------------------------------


def test_from_tasks_and_editing() -> None:
    pipeline = Pipeline.from_tasks({"isr": IsrTask, "calibrate": CALIBRATE}, description="Built in Python.")
    assert pipeline.labels == ("isr", "calibrate")
    assert pipeline.tasks["isr"].task_class == ISR
    assert pipeline.task_class("isr") is IsrTask
    assert pipeline.task_class("calibrate") is CalibrateTask
    pipeline.add_task("summary", SUMMARY, {"columns": ["ra"]})
    pipeline.add_subset("all", ["isr", "calibrate", "summary"], "Everything.")
    pipeline.add_step("all", ["instrument"])
    pipeline.add_contract("isr.do_flat == calibrate.do_flat", "flats agree")
    pipeline.validate()
    with pytest.raises(PipelineFileError, match="already used"):
        pipeline.add_task("isr", IsrTask)
    with pytest.raises(SubsetError, match=r"Unknown task label 'isrr'.*did you mean 'isr'"):
        pipeline.add_config_override("isrr", "do_flat", False)
    with pytest.raises(SubsetError, match="Unknown task label 'nope'"):
        pipeline.add_subset("bad", ["nope"])
    with pytest.raises(SubsetError, match="labeled subset 'nothing'"):
        pipeline.add_step("nothing")


def test_command_line_overrides_in_order(tmp_path: Path) -> None:
    overrides = write(tmp_path / "overrides.py", "config.saturation = 1000\nconfig.do_flat = False\n")
    pipeline = Pipeline.from_tasks({"isr": IsrTask})
    pipeline.add_command_line_overrides(
        [("-c", "isr:saturation=5"), ("-C", f"isr:{overrides}"), ("-c", "isr:do_flat=true")]
    )
    kinds = [type(o) for o in pipeline.tasks["isr"].overrides]
    assert kinds == [ValueOverride, PythonFileOverride, ValueOverride]
    assert pipeline.tasks["isr"].overrides[0].source == "command line: -c isr:saturation=5"
    with pytest.raises(SubsetError, match="Unknown task label 'calib'"):
        pipeline.add_command_line_overrides([("-c", "calib:x=1")])
    for bad in ("isr", "isr:do_flat", ":x=1", "isr:=1"):
        with pytest.raises(ConfigError, match="label:field=value"):
            parse_config_option(bad)
    assert parse_config_option("isr:a.b=x=y") == ("isr", "a.b", "x=y")


def test_equality_and_primitives(base: Path) -> None:
    assert Pipeline.from_yaml(base) == Pipeline.from_yaml(base)
    assert Pipeline.from_yaml(base) != Pipeline.from_yaml(f"{base}#step1")
    document = Pipeline.from_yaml(base).to_primitives()
    assert list(document) == [
        "description",
        "instrument",
        "parameters",
        "tasks",
        "subsets",
        "contracts",
        "steps",
    ]
    assert document["tasks"]["calibrate"] == CALIBRATE


def test_write_yaml_round_trip_without_configs(base: Path, tmp_path: Path) -> None:
    top = write(
        tmp_path / "top.yaml",
        "description: Top.\nimports:\n  - {location: ingredients/base.yaml, exclude: [summary], "
        "labeledSubsetModifyMode: DROP}\n",
    )
    pipeline = Pipeline.from_yaml(top)
    out = tmp_path / "out" / "expanded.yaml"
    pipeline.write_yaml(out)
    again = Pipeline.from_yaml(out)
    assert again == pipeline
    assert "imports" not in out.read_text()
    assert [p.name for p in out.parent.iterdir()] == ["expanded.yaml"]  # no temporary left behind


# -- configs ---------------------------------------------------------------------------------------


def test_make_config_applies_parameters_and_blocks_in_order(base: Path, tmp_path: Path) -> None:
    top = write(
        tmp_path / "top.yaml",
        f"""
        parameters:
          flat_scale: 4.0
        imports: [ingredients/base.yaml]
        tasks:
          isr:
            class: {ISR}
            config:
              saturation: 50000
        """,
    )
    pipeline = Pipeline.from_yaml(top)
    config = pipeline.make_config("isr")
    assert config.flat_scale == 4.0  # the importing file's parameter wins
    assert config.saturation == 50000
    assert pipeline.make_config("summary").columns == ["ra", "dec", "mag"]
    assert pipeline.make_config("calibrate").detection.threshold == 5.0


def test_command_line_last_wins(tmp_path: Path) -> None:
    overrides = write(tmp_path / "overrides.py", "config.saturation = 1000\nconfig.do_flat = False\n")
    pipeline = Pipeline.from_tasks({"isr": IsrTask})
    pipeline.add_config_override("isr", "saturation", 7)
    pipeline.add_command_line_overrides(
        [("-c", "isr:saturation=5"), ("-C", f"isr:{overrides}"), ("-c", "isr:do_flat=true")]
    )
    config = pipeline.make_config("isr")
    assert config.saturation == 1000 and config.do_flat is True
    pipeline.add_command_line_overrides([("-c", "isr:saturation=3")])
    assert pipeline.make_config("isr").saturation == 3


def test_bad_overrides_raise_config_errors(tmp_path: Path) -> None:
    pipeline = Pipeline.from_tasks({"isr": IsrTask})
    pipeline.add_config_override("isr", "do_flatt", False)
    with pytest.raises(ConfigFieldError, match="do_flat"):
        pipeline.make_config("isr")
    pipeline = Pipeline.from_tasks({"isr": IsrTask})
    pipeline.add_python_override_file("isr", tmp_path / "missing.py")
    with pytest.raises(ConfigError, match="does not exist"):
        pipeline.make_config("isr")


def test_write_yaml_expands_python_override_files(tmp_path: Path) -> None:
    overrides = write(tmp_path / "overrides.py", "config.saturation = 1000\nconfig.note = 'from file'\n")
    pipeline = Pipeline.from_tasks({"isr": IsrTask, "calibrate": CalibrateTask})
    pipeline.add_config_override("isr", "saturation", 5)
    pipeline.add_python_override_file("isr", overrides)
    pipeline.add_config_override("isr", "do_flat", "false")
    pipeline.add_config_override("calibrate", "bands", ["r"])
    subtasks = write(
        tmp_path / "subtasks.py",
        "config.detection.threshold = 9.0\nconfig.measurement.name = 'fast'\nconfig.measurement.fast = False\n",
    )
    pipeline.add_python_override_file("calibrate", subtasks)
    out = tmp_path / "saved.yaml"
    pipeline.write_yaml(out)
    again = Pipeline.from_yaml(out)
    assert all(isinstance(o, ValueOverride) for o in again.tasks["isr"].overrides)
    for label in ("isr", "calibrate"):
        assert again.make_config(label).to_dict() == pipeline.make_config(label).to_dict()
    assert again.make_config("isr").note == "from file"
    calibrate = again.make_config("calibrate")
    assert calibrate.detection.threshold == 9.0
    assert calibrate.measurement.name == "fast" and calibrate.measurement.fast is False
