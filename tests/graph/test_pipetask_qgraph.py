"""``pipetask qgraph`` run through click's CliRunner as a user would type it."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import builder_campaign as campaign
import click
import pytest
from click.testing import CliRunner, Result

from butler.butler import Butler
from butler.repository import create_repository
from graph.cli.pipetask import main as pipetask_main
from graph.cli.qgraph import qgraph
from graph.qgraph_io import read_quantum_graph

PIPELINE = """\
description: isr, calibrate and a per-visit summary.
tasks:
  isr: pipeline_test_tasks.IsrTask
  calibrate: pipeline_test_tasks.CalibrateTask
  summary: pipeline_test_tasks.SummaryTask
"""


def _main() -> click.Group:
    if "qgraph" not in pipetask_main.commands:
        pipetask_main.add_command(qgraph)
    return pipetask_main


def run(*args: str, exit_code: int = 0) -> Result:
    """Invoke ``pipetask ARGS`` and check its exit code."""
    result = CliRunner().invoke(_main(), list(args))
    assert result.exit_code == exit_code, (result.output, result.exception)
    return result


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("qgraph_cli")
    create_repository(root / "repo")
    with Butler(root / "repo") as butler:
        campaign.populate(butler.registry)
    (root / "pipeline.yaml").write_text(PIPELINE)
    return root


def args(repo: Path, *extra: str) -> list[str]:
    return [
        "qgraph",
        "-b",
        str(repo / "repo"),
        "-p",
        str(repo / "pipeline.yaml"),
        "-i",
        campaign.INPUTS,
        *extra,
    ]


def test_counts_and_pruned_reasons_are_printed(repo: Path) -> None:
    result = run(*args(repo, "--output-run", "u/cli/a"))
    lines = result.output.splitlines()
    assert lines[0] == "Quantum graph for output run u/cli/a: 27 quanta."
    assert lines[1].split() == ["task", "quanta", "pruned"]
    assert lines[2].split() == ["isr", "12", "11"]
    assert lines[3].split() == ["calibrate", "12", "11"]
    assert lines[4].split() == ["summary", "3", "3"]
    assert lines[5].split() == ["total", "27", "25"]
    assert (
        "isr: 11 not made: needs a flat for flat: no flat in ['inputs'] valid at the exposure's time"
        in result.output
    )


def test_save_and_draw(repo: Path, tmp_path: Path) -> None:
    saved = tmp_path / "graph.qg"
    result = run(
        *args(repo, "-o", "u/cli", "-d", "band = 'g' AND detector = 1", "--save-qgraph", str(saved)),
        "--qgraph-dot",
        str(tmp_path / "g.dot"),
        "--qgraph-mermaid",
        str(tmp_path / "g.md"),
        "--qgraph-svg",
        str(tmp_path / "g.svg"),
    )
    assert "Quantum graph for output run u/cli/" in result.output and f"Saved to {saved}" in result.output
    assert saved.stat().st_size > 0
    graph = read_quantum_graph(saved)
    assert graph.quantum_count() == 3 + 3 + 3
    assert graph.metadata.output == "u/cli" and graph.metadata.output_run.startswith("u/cli/")
    assert "pipeline_test_tasks.IsrTask" in graph.metadata.pipeline_yaml
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    assert "flowchart" in (tmp_path / "g.md").read_text()
    ElementTree.parse(tmp_path / "g.svg")


def test_large_graphs_are_not_drawn(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("graph.cli.qgraph.MAX_DRAWN_QUANTA", 5)
    result = run(*args(repo, "--output-run", "u/cli/b", "--qgraph-svg", str(tmp_path / "g.svg")))
    assert "Not drawing the graph: it has 27 quanta" in result.output
    assert not (tmp_path / "g.svg").exists()


@pytest.mark.parametrize(
    ("extra", "message", "code"),
    [
        (("--output-run", "r", "-d", "band ="), "Error: Invalid data query 'band ='", 1),
        (("--output-run", "r", "-d", "band = 'z'"), "matches no dimension records", 1),
        (("--output-run", "r", "-i", "nowhere"), "Unknown input collection 'nowhere'", 1),
        ((), "Give -o/--output (a CHAINED collection) or --output-run", 2),
        (("--output-run", "r", "--bind", "novalue"), "is not NAME=VALUE", 2),
        (("--output-run", campaign.RAW_RUN), "already exists; pass --extend-run", 1),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(
    repo: Path, extra: tuple[str, ...], message: str, code: int
) -> None:
    command = args(repo, *extra)
    if "-i" in extra:
        index = command.index("-i")
        del command[index : index + 2]
    result = run(*command, exit_code=code)
    assert message in result.output


def test_bind_values_and_skip_existing(repo: Path) -> None:
    result = run(*args(repo, "--output-run", "u/cli/c", "-d", "exposure IN (:e)", "--bind", "e=[1, 3]"))
    assert "Quantum graph for output run u/cli/c: 18 quanta." in result.output
    result = run(*args(repo, "--output-run", "u/cli/c", "--skip-existing", "-d", "exposure = 1"))
    assert "u/cli/c" in result.output
