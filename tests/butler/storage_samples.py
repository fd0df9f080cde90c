"""One sample object per storage class, and how to compare them, for round-trip tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pydantic

from butler.image import Image
from butler.log_records import ButlerLogRecord, ButlerLogRecords
from butler.packages import Packages
from butler.task_metadata import TaskMetadata


class DemoConfig(pydantic.BaseModel):
    """A task-like config to store."""

    threshold: float = 5.0
    bands: list[str] = ["g", "r"]


def make_image() -> Image:
    rng = np.random.default_rng(7)
    return Image(
        rng.normal(size=(20, 30)).astype(np.float32),
        rng.integers(0, 8, size=(20, 30)).astype(np.int32),
        rng.random(size=(20, 30)).astype(np.float32),
        {"EXPTIME": 30.0, "FILTER": "g"},
    )


SAMPLES: dict[str, Any] = {
    "StructuredDataDict": {"a": 1, "b": [1, 2, 3], "c": {"d": "e"}},
    "StructuredDataList": [1, "two", 3.0],
    "ArrowTable": pa.table({"x": [1, 2, 3], "y": ["a", "b", "c"]}),
    "DataFrame": pd.DataFrame({"x": [1.5, 2.5], "y": ["p", "q"]}),
    "NumpyArray": np.arange(120, dtype=np.float64).reshape(10, 12),
    "Image": make_image(),
    "Config": DemoConfig(threshold=3.5),
    "TaskMetadata": TaskMetadata({"timing": {"cpu": 1.5, "max_rss_mb": 120}, "n_sources": 42}),
    "ButlerLogRecords": ButlerLogRecords([ButlerLogRecord("task", "INFO", "hello", 1.0e9)]),
    "Packages": Packages({"numpy": "2.0", "quanta": "0.1.0"}),
}


def same(a: Any, b: Any) -> bool:
    if isinstance(a, pa.Table):
        return a.equals(b)
    if isinstance(a, pd.DataFrame):
        return a.equals(b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, Packages):
        return dict(a) == dict(b)
    return bool(a == b)
