"""The small JSON files of the Parsl engine: written atomically, read leniently.

Standard library only: the job wrapper, which every job runs, imports it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["read_json_object", "write_json_atomically"]


def write_json_atomically(path: Path, data: object) -> None:
    """Write ``data`` as JSON to ``path`` (parents created) through a temporary file and `os.replace`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None if it is missing, unreadable (e.g. being replaced) or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
