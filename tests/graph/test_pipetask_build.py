"""``pipetask build`` run through click's CliRunner as a user would type it."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from graph.cli.pipetask import main

ISR = "pipeline_test_tasks.IsrTask"
CALIBRATE = "pipeline_test_tasks.CalibrateTask"
SUMMARY = "pipeline_test_tasks.SummaryTask"

PIPELINE = f"""\
description: A small test pipeline.
parameters:
  saturation: 60000
tasks:
  isr:
    class: {ISR}
    config:
      saturation: parameters.saturation
  calibrate: {CALIBRATE}
  summary: {SUMMARY}
subsets:
  single: [isr, calibrate]
contracts:
  - contract: isr.do_flat == calibrate.do_flat
    msg: flat-fielding must agree
"""


def run(*args: str, exit_code: int = 0) -> Result:
    """Invoke ``pipetask ARGS`` and check its exit code (showing what it wrote if that is wrong)."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == exit_code, (result.output, result.exception)
    return result


def fails(*args: str, match: str, exit_code: int = 1) -> str:
    """Run a failing command; check it printed exactly one line ``Error: ...`` containing ``match``."""
    result = run(*args, exit_code=exit_code)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert match in lines[0], lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def write(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.fixture
def pipeline(tmp_path: Path) -> str:
    return write(tmp_path / "pipeline.yaml", PIPELINE)


@pytest.fixture
def broken_module(tmp_path: Path) -> Iterator[str]:
    """A task module whose import raises inside the module."""
    (tmp_path / "broken_tasks_for_build.py").write_text(
        "X = 1\nraise ZeroDivisionError('broken on purpose')\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield "broken_tasks_for_build.Task"
    sys.path.remove(str(tmp_path))
    sys.modules.pop("broken_tasks_for_build", None)


# -- what it shows ---------------------------------------------------------------------------------


def test_build_without_show_reports_ok(pipeline: str) -> None:
    assert "Pipeline OK: 3 task(s)" in run("build", "-p", pipeline).output


def test_show_tasks_graph_and_dataset_types(pipeline: str) -> None:
    output = run(
        "build", "-p", pipeline, "--show", "tasks", "--show", "graph", "--show", "dataset-types"
    ).stdout
    assert f"isr: {ISR} {{instrument, detector, exposure}}" in output
    assert "raw, bias (prerequisite), flat (prerequisite) -> postISRCCD" in output
    assert "postISRCCD [multiple], demo_refcat (prerequisite) -> calexp, src" in output
    assert "init: src_schema -> (nothing)" in output
    assert (
        "bias: Image {instrument, detector} [calibration, prerequisite]; overall input; read by isr" in output
    )
    assert "src: ArrowTable {instrument, detector, visit}; written by calibrate; read by summary" in output
    assert "packages: Packages {} [init]; written by the framework" in output


def test_show_config_and_history(pipeline: str, tmp_path: Path) -> None:
    overrides = write(tmp_path / "flat.py", "config.do_flat = False\nconfig.flat_scale = 3.0\n")
    output = run(
        "build",
        "-p",
        pipeline,
        "-c",
        "calibrate:do_flat=false",
        "-C",
        f"isr:{overrides}",
        "--show",
        "config=isr:*flat*",
        "--show",
        "history=isr:saturation",
        "--show",
        "history=isr:do_flat",
    ).stdout
    assert "do_flat: false  # Divide by the flat." in output
    assert "flat_scale: 3.0  # Scale applied to the flat." in output
    assert "saturation" not in output.split("\n")[0]
    assert "pipeline.yaml (tasks.isr.config)" in output
    assert "60000" in output
    assert f"command line: -C isr:{overrides}:1" in output


def test_show_pipeline_is_expanded_yaml(pipeline: str) -> None:
    output = run("build", "-p", f"{pipeline}#single", "-c", "isr:note=hello", "--show", "pipeline").stdout
    assert "summary" not in output
    assert "note: hello" in output
    assert "contract: isr.do_flat == calibrate.do_flat" in output


def test_overrides_apply_in_command_line_order(pipeline: str, tmp_path: Path) -> None:
    overrides = write(tmp_path / "sat.py", "config.saturation = 1000\n")

    def saturation(*args: str) -> str:
        output = run("build", "-p", pipeline, *args, "--show", "config=isr:saturation").stdout
        return output.split(":", 1)[1].split("#")[0].strip()

    assert saturation() == "60000"
    assert saturation("-c", "isr:saturation=5") == "5"
    assert saturation("-c", "isr:saturation=5", "-C", f"isr:{overrides}") == "1000"
    assert saturation("-C", f"isr:{overrides}", "-c", "isr:saturation=5") == "5"
    assert (
        saturation("-c", "isr:saturation=5", "-C", f"isr:{overrides}", "--config", "isr:saturation=7") == "7"
    )
    assert saturation("-c", "isr:saturation=5", "-c", "isr:saturation=6") == "6"


def test_save_pipeline_and_drawings(pipeline: str, tmp_path: Path) -> None:
    overrides = write(tmp_path / "sat.py", "config.saturation = 1000\n")
    saved, dot, mermaid, svg = (tmp_path / name for name in ("saved.yaml", "p.dot", "p.md", "p.svg"))
    run(
        "build", "-p", pipeline, "-C", f"isr:{overrides}", "-c", "isr:do_flat=false", "-c", "calibrate:do_flat=false",
        "--save-pipeline", str(saved), "--pipeline-dot", str(dot), "--pipeline-mermaid", str(mermaid),
        "--pipeline-svg", str(svg),
    )  # fmt: skip
    saved_text = saved.read_text()
    assert "do_flat: false" in saved_text and "'false'" not in saved_text and "saturation: 1000" in saved_text
    assert dot.read_text().startswith("digraph")
    assert "```mermaid" in mermaid.read_text()
    assert "<svg" in svg.read_text()
    original = run("build", "-p", pipeline, "-C", f"isr:{overrides}", "-c", "isr:do_flat=false",
                   "-c", "calibrate:do_flat=false", "--show", "config=isr").stdout  # fmt: skip
    assert run("build", "-p", str(saved), "--show", "config=isr").stdout == original
    assert "saturation: 1000" in run("build", "-p", str(saved), "--show", "config=isr:saturation").stdout


# -- errors ----------------------------------------------------------------------------------------


def test_unknown_task_class(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", "tasks:\n  x: pipeline_test_tasks.NoSuchTask\n")
    fails("build", "-p", path, match="module 'pipeline_test_tasks' has no 'NoSuchTask'")
    path = write(tmp_path / "p.yaml", "tasks:\n  x: no_such_package.Task\n")
    fails("build", "-p", path, match="no module named 'no_such_package'")


def test_import_error_inside_task_module(tmp_path: Path, broken_module: str) -> None:
    path = write(tmp_path / "p.yaml", f"tasks:\n  x: {broken_module}\n")
    fails("build", "-p", path, match="ZeroDivisionError: broken on purpose")


def test_unknown_config_field_and_wrong_type(pipeline: str, tmp_path: Path) -> None:
    fails("build", "-p", pipeline, "-c", "isr:do_flatt=false", match="do_flat")
    fails("build", "-p", pipeline, "-c", "isr:saturation=lots", match="saturation")
    path = write(tmp_path / "p.yaml", f"tasks:\n  isr:\n    class: {ISR}\n    config:\n      saturaton: 3\n")
    fails("build", "-p", path, match="saturation")


def test_failing_contract_shows_expression(pipeline: str) -> None:
    line = fails("build", "-p", pipeline, "-c", "isr:do_flat=false", match="isr.do_flat == calibrate.do_flat")
    assert "flat-fielding must agree" in line


def test_graph_errors(tmp_path: Path) -> None:
    two = write(tmp_path / "two.yaml", f"tasks:\n  isr: {ISR}\n  isr2: {ISR}\n")
    line = fails("build", "-p", two, match="produced by two tasks")
    assert "isr.post_isr" in line and "isr2.post_isr" in line
    cycle = write(
        tmp_path / "cycle.yaml",
        f"tasks:\n  isr: {ISR}\n  calibrate: {CALIBRATE}\n  loop:\n    class: pipeline_test_tasks.LoopTask\n"
        "    config: {connections.raw: raw}\n",
    )
    fails("build", "-p", cycle, match="cycle: ")
    storage = write(
        tmp_path / "storage.yaml",
        f"tasks:\n  isr: {ISR}\n  calibrate: {CALIBRATE}\n  t: pipeline_test_tasks.TableAsImageTask\n",
    )
    fails("build", "-p", storage, match="cannot be converted")


def test_selection_and_subset_errors(pipeline: str, tmp_path: Path) -> None:
    fails("build", "-p", f"{pipeline}#singel", match="did you mean 'single'")
    path = write(tmp_path / "p.yaml", f"tasks:\n  isr: {ISR}\nsubsets:\n  s: [isr, calibrate]\n")
    fails("build", "-p", path, match="subset 's' names label 'calibrate' not in the pipeline")
    fails("build", "-p", pipeline, "-c", "isrr:do_flat=false", match="did you mean 'isr'")
    fails("build", "-p", pipeline, "-c", "isr", match="label:field=value")
    fails("build", "-p", pipeline, "--show", "config=nope:x", match="Unknown task label 'nope'")
    fails("build", "-p", pipeline, "--show", "config=isr:do_flatt", match="did you mean 'do_flat'")
    fails("build", "-p", pipeline, "--show", "history=isr:do_flatt", match="do_flat")


def test_python_in_yaml_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.yaml",
        f"tasks:\n  isr:\n    class: {ISR}\n    config:\n      python: config.do_flat = False\n",
    )
    fails("build", "-p", path, match="'python:' is not allowed")


def test_bad_show_is_a_usage_error(pipeline: str) -> None:
    result = run("build", "-p", pipeline, "--show", "everything", exit_code=2)
    assert "Cannot show 'everything'" in result.output


def test_traceback_only_with_debug(pipeline: str) -> None:
    result = run("--log-level", "DEBUG", "build", "-p", pipeline, "-c", "isr:do_flatt=1", exit_code=1)
    assert "Traceback" in result.stderr and "Error: " in result.stderr
