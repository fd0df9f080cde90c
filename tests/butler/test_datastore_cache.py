"""The local cache of remote files: downloads once, evicts least recently used beyond its limits."""

from __future__ import annotations

import os
import time
from pathlib import Path

from lsst.resources import ResourcePath

from butler.datastore_cache import DatastoreCache
from butler.datastore_config import CacheConfig


def remote_files(tmp_path: Path, count: int, size: int) -> list[ResourcePath]:
    # Any URI scheme goes through the same download path; local files keep the test self-contained.
    files = []
    for index in range(count):
        path = tmp_path / "remote" / f"f{index}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(os.urandom(size))
        files.append(ResourcePath(path))
    return files


def test_downloads_once_and_returns_the_copy(tmp_path: Path) -> None:
    cache = DatastoreCache(CacheConfig(root=str(tmp_path / "cache")))
    (uri,) = remote_files(tmp_path, 1, 100)
    first = cache.local_copy(uri, "a.bin")
    Path(uri.ospath).unlink()  # a second read must not need the remote file
    assert cache.local_copy(uri, "a.bin") == first
    assert first.read_bytes() and cache.cached_files() == ["a.bin"]


def test_evicts_least_recently_used_by_count(tmp_path: Path) -> None:
    cache = DatastoreCache(CacheConfig(root=str(tmp_path / "cache"), max_files=2))
    uris = remote_files(tmp_path, 3, 10)
    cache.local_copy(uris[0], "0.bin")
    time.sleep(0.01)
    cache.local_copy(uris[1], "1.bin")
    time.sleep(0.01)
    cache.local_copy(uris[0], "0.bin")  # used again: now the most recent
    time.sleep(0.01)
    cache.local_copy(uris[2], "2.bin")
    assert cache.cached_files() == ["0.bin", "2.bin"]


def test_evicts_by_total_size(tmp_path: Path) -> None:
    cache = DatastoreCache(CacheConfig(root=str(tmp_path / "cache"), max_size_mb=2.5 / 1024))  # 2.5 KiB
    uris = remote_files(tmp_path, 4, 1024)
    for index, uri in enumerate(uris):
        cache.local_copy(uri, f"{index}.bin")
        time.sleep(0.01)
    assert cache.cached_files() == ["2.bin", "3.bin"]
