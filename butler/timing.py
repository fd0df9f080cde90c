"""Logging how long an operation took and the process's peak memory, for every long registry operation."""

from __future__ import annotations

import contextlib
import logging
import resource
import sys
import time
from collections.abc import Iterator

__all__ = ["log_duration", "peak_rss_mb"]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


@contextlib.contextmanager
def log_duration(logger: logging.Logger, what: str, level: int = logging.INFO) -> Iterator[None]:
    """Log ``what`` with its wall-clock seconds and the peak RSS when the block finishes without error."""
    start = time.perf_counter()
    yield
    if logger.isEnabledFor(level):
        logger.log(
            level, "%s in %.2f s (peak memory %.0f MB).", what, time.perf_counter() - start, peak_rss_mb()
        )
