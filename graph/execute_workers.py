"""Worker processes of the local executor, each a small batch job the parent can kill when it overruns.

A worker opens the repository's datastore from ``butler.yaml`` (never the registry: the parent
alone writes to it, in batches), builds each task once, and for every node id the parent sends
reads that quantum from the ``.qg`` file and runs it with `graph.run_qbb.QuantumRunner`. Workers
are started with ``spawn`` (or ``forkserver``): nothing is inherited from the parent but the
arguments, so database connections and threads in the parent never leak into them.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

from .execute_report import QuantumRunResult, RunStatus
from .execute_tasks import TaskFactory
from .qgraph_io import read_quanta
from .run_qbb import QuantumRunner, open_job_datastore

__all__ = ["WorkerPool", "WorkerSpec"]

_LOG = logging.getLogger(__name__)

_POLL_SECONDS = 1.0
"""Longest wait before checking the workers' health and deadlines again."""

_STARTED = b"started"
"""What a worker sends when it begins a quantum: the timeout counts from then, not from its start-up."""


@dataclass(frozen=True)
class WorkerSpec:
    """What every worker needs (sent to it at start; small and picklable)."""

    repo: str
    """Repository root (its ``butler.yaml`` describes the datastore)."""
    graph_path: str
    """The ``.qg`` file the quanta are read from."""
    log_level: int
    """Logging threshold of the worker's stderr handler."""


Describe = Callable[[uuid.UUID], tuple[str, str]]
"""Given a node id, its task label and formatted data ID (for results the parent makes itself)."""


class _Worker:
    def __init__(self, context: Any, spec: WorkerSpec) -> None:
        parent_end, child_end = context.Pipe()
        self.process: BaseProcess = context.Process(
            target=_worker_main, args=(child_end, spec), name="quanta-worker", daemon=True
        )
        self.process.start()
        child_end.close()
        self.conn: multiprocessing.connection.Connection = parent_end
        self.index: int | None = None
        self.node_id: uuid.UUID | None = None
        self.started: float | None = None
        """When the worker said it started the quantum (None before: start-up does not count)."""
        self.submitted = 0.0

    def stop(self, kill: bool) -> None:
        try:
            if kill:
                self.process.kill()
            else:
                self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(5.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5.0)
        self.conn.close()


class WorkerPool:
    """Up to ``size`` worker processes, one quantum each at a time, with an optional per-quantum timeout.

    Parameters
    ----------
    size
        Number of processes.
    spec
        Repository, graph file and log level for the workers.
    timeout
        Seconds a quantum may run before its worker is killed (None: no limit).
    describe
        Label and data ID of a node id, for the results of killed or dead workers.
    start_method
        ``spawn`` or ``forkserver``.
    preload
        With ``forkserver``: modules the server imports once, so that workers forked from it start
        in milliseconds instead of importing them each (tasks, the job runner).
    """

    def __init__(
        self,
        size: int,
        spec: WorkerSpec,
        describe: Describe,
        *,
        timeout: float | None = None,
        start_method: str = "spawn",
        preload: Sequence[str] = (),
    ) -> None:
        if start_method not in ("spawn", "forkserver"):
            raise ValueError(f"Start method {start_method!r}: use 'spawn' or 'forkserver'.")
        self.size = size
        self.spec = spec
        self.describe = describe
        self.timeout = timeout
        self._context = multiprocessing.get_context(start_method)
        if start_method == "forkserver" and preload:
            # Takes effect when this process first starts its fork server.
            self._context.set_forkserver_preload([__name__, *preload])
        self._workers: list[_Worker] = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(kill=exc_info[0] is not None)

    def has_capacity(self) -> bool:
        """Whether a quantum can be handed out now."""
        return len(self._workers) < self.size or any(w.index is None for w in self._workers)

    def submit(self, index: int, node_id: uuid.UUID) -> None:
        """Hand quantum ``node_id`` (scheduler position ``index``) to an idle worker, starting one if needed."""
        worker = next((w for w in self._workers if w.index is None), None)
        if worker is None:
            worker = _Worker(self._context, self.spec)
            self._workers.append(worker)
        worker.index, worker.node_id = index, node_id
        worker.started, worker.submitted = None, time.monotonic()
        worker.conn.send(node_id.bytes)

    def busy(self) -> int:
        """Number of quanta running."""
        return sum(w.index is not None for w in self._workers)

    def wait(self) -> list[tuple[int, QuantumRunResult]]:
        """Block until at least one running quantum ends (or times out); its results by position."""
        results: list[tuple[int, QuantumRunResult]] = []
        while not results:
            busy = [w for w in self._workers if w.index is not None]
            if not busy:
                return results
            wait_for = _POLL_SECONDS
            deadlines = [w.started + self.timeout for w in busy if w.started is not None and self.timeout]
            if deadlines:
                wait_for = min(wait_for, max(0.0, min(deadlines) - time.monotonic()))
            ready = multiprocessing.connection.wait([w.conn for w in busy], timeout=wait_for)
            for worker in busy:
                if worker.conn in ready:
                    received = self._receive(worker)
                    if received is not None:
                        results.append(received)
                elif not worker.process.is_alive():
                    results.append(self._died(worker))
                elif (
                    self.timeout is not None
                    and worker.started is not None
                    and time.monotonic() - worker.started > self.timeout
                ):
                    results.append(self._timed_out(worker))
        return results

    def _finish(self, worker: _Worker) -> int:
        assert worker.index is not None
        index = worker.index
        worker.index = worker.node_id = None
        return index

    def _receive(self, worker: _Worker) -> tuple[int, QuantumRunResult] | None:
        try:
            result = worker.conn.recv()
        except (EOFError, OSError):
            return self._died(worker)
        if result == _STARTED:
            worker.started = time.monotonic()
            return None
        if result.label == "?" and worker.node_id is not None:
            label, data_id = self.describe(worker.node_id)
            result = dataclasses.replace(result, label=label, data_id=data_id)
        return self._finish(worker), result

    def _failure(self, worker: _Worker, error: str) -> tuple[int, QuantumRunResult]:
        assert worker.node_id is not None
        node_id = worker.node_id
        label, data_id = self.describe(node_id)
        wall = time.monotonic() - (worker.started or worker.submitted)
        self._workers.remove(worker)
        return self._finish(worker), QuantumRunResult(
            node_id, label, data_id, RunStatus.FAILED, error, wall_time=wall
        )

    def _died(self, worker: _Worker) -> tuple[int, QuantumRunResult]:
        worker.process.join(1.0)
        code = worker.process.exitcode
        _LOG.error(
            "Worker %s running quantum %s died (exit code %s).", worker.process.pid, worker.node_id, code
        )
        result = self._failure(worker, f"WorkerDied: the worker process died (exit code {code})")
        worker.stop(kill=True)
        return result

    def _timed_out(self, worker: _Worker) -> tuple[int, QuantumRunResult]:
        _LOG.error(
            "Quantum %s still running after %g s; killing worker %s.",
            worker.node_id,
            self.timeout,
            worker.process.pid,
        )
        worker.stop(kill=True)
        return self._failure(
            worker, f"timeout: still running after {self.timeout:g} s; its worker was killed"
        )

    def close(self, *, kill: bool = False) -> None:
        """Stop every worker (killing those still running a quantum, or all with ``kill``)."""
        for worker in self._workers:
            worker.stop(kill=kill or worker.index is not None)
        self._workers = []


def _worker_main(conn: multiprocessing.connection.Connection, spec: WorkerSpec) -> None:
    """Loop of one worker: receive a node id, run that quantum, send its result; None ends it."""
    logging.basicConfig(level=spec.log_level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        # Task loggers run at INFO while a quantum runs (for its log dataset); keep stderr quiet.
        handler.setLevel(spec.log_level)

    runner: QuantumRunner | None = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if message is None:
            return
        node_id = uuid.UUID(bytes=message)
        conn.send(_STARTED)
        start = time.perf_counter()
        try:
            graph = read_quanta(spec.graph_path, [node_id])
            if runner is None:
                job = open_job_datastore(spec.repo, graph.universe)
                runner = QuantumRunner(job, TaskFactory(graph.metadata.pipeline_yaml, spec.graph_path))
            result = runner.run_quantum(graph, node_id)
        except Exception as err:  # reading the graph or opening the datastore: not the task's fault
            _LOG.exception("Cannot run quantum %s.", node_id)
            result = QuantumRunResult(
                node_id,
                "?",
                "?",
                RunStatus.FAILED,
                f"{type(err).__name__}: {err}",
                infrastructure=True,
                wall_time=time.perf_counter() - start,
            )
        conn.send(result)
