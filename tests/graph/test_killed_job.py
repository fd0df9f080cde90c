"""A batch job killed in the middle of writing a file leaves no registered partial output.

The job process is SIGKILLed from inside the formatter after half of the array's bytes are written,
the way a preempted batch slot dies. The merge then registers what completed, counts the rest as
missing, and the repository stays consistent (no row without its file, no file without its row).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_execute import make_repository
from test_run_qbb import REPO_ROOT, TESTS, _framework_pipeline, _saved

from butler.butler import Butler
from graph.transfer import transfer_from_graph

_KILLED_JOB = """
import os, signal, sys
import numpy as np
from butler.formatters import numpy_format

def half_then_die(self, obj, path):
    data = np.ascontiguousarray(obj).tobytes()
    with open(path, "wb") as stream:
        stream.write(data[: len(data) // 2])
        stream.flush()
    os.kill(os.getpid(), signal.SIGKILL)

numpy_format.NpyFormatter.write = half_then_die
from graph.cli.run_qbb import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_job_killed_mid_write_leaves_no_registered_partial_output(tmp_path: Path) -> None:
    repo = make_repository(tmp_path / "repo")
    graph, path = _saved(repo, tmp_path, _framework_pipeline())
    first, second = graph.node_ids("add")[:2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(TESTS)])}
    ok = subprocess.run(
        [sys.executable, "-c", "import sys; from graph.cli.run_qbb import main; sys.exit(main(sys.argv[1:]))", "run-qbb", str(repo), str(path), "--qgraph-node-id", str(first)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_JOB, "run-qbb", str(repo), str(path), "--qgraph-node-id", str(second)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    # The killed write left only a hidden temporary file, never a file under the dataset's name.
    output = graph.quantum(second).outputs["output"][0]
    assert [p.name for p in repo.rglob(".*.tmp")], "the job should have died mid-write"
    with Butler(repo) as butler:
        report = transfer_from_graph(butler, graph, register_dataset_types=True)
        assert report.by_task["add"].registered >= 3  # the first quantum's output, metadata and log
        assert not butler.registry.get_dataset(output.id)
        assert butler.registry.get_dataset(graph.quantum(first).outputs["output"][0].id) is not None
        verify = butler.verify()
        assert not verify.missing_files and not verify.unrecorded_files, (
            verify
        )  # no row without file, no file without row
        again = transfer_from_graph(butler, graph)
        assert again.total.registered == 0  # running the merge twice changes nothing
