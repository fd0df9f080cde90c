"""A local cache of files read from a remote datastore, bounded in total size and file count."""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from .datastore_config import CacheConfig

if TYPE_CHECKING:
    from lsst.resources import ResourcePath

__all__ = ["DatastoreCache"]

_LOG = logging.getLogger(__name__)


class DatastoreCache:
    """Keeps local copies of remote files; evicts the least recently used beyond the limits."""

    def __init__(self, config: CacheConfig) -> None:
        root = config.root or os.path.join(tempfile.gettempdir(), f"quanta-cache-{os.getuid()}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(config.max_size_mb * 1024 * 1024)
        self.max_files = config.max_files

    def local_copy(self, uri: ResourcePath, key: str) -> Path:
        """A local file with the contents of ``uri``, downloaded on first use.

        ``key`` must identify the content (e.g. dataset UUID, component and extension).
        """
        path = self.root / key
        if path.exists():
            os.utime(path)  # mark as recently used
            return path
        from lsst.resources import ResourcePath

        partial = self.root / f".{key}.{uuid.uuid4().hex}.partial"
        ResourcePath(partial).transfer_from(uri, transfer="copy")
        os.replace(partial, path)
        self._evict()
        return path

    def _evict(self) -> None:
        files = sorted(
            (p for p in self.root.iterdir() if p.is_file() and not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime,
        )
        total = sum(p.stat().st_size for p in files)
        while files and (total > self.max_bytes or len(files) > self.max_files):
            oldest = files.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)
            _LOG.debug("Evicted %s from the datastore cache.", oldest.name)

    def cached_files(self) -> list[str]:
        """Names of the files in the cache."""
        return sorted(p.name for p in self.root.iterdir() if p.is_file() and not p.name.startswith("."))
