"""The software versions a run used (the ``packages`` dataset written at init time)."""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Iterable, Iterator, Mapping

__all__ = ["Packages"]


class Packages(Mapping[str, str]):
    """Package name -> version string."""

    def __init__(self, versions: Mapping[str, str] | None = None) -> None:
        self._versions = dict(sorted((versions or {}).items()))

    @classmethod
    def from_environment(cls, names: Iterable[str] | None = None) -> Packages:
        """Versions of installed distributions (all of them, or ``names``) plus Python itself."""
        if names is None:
            versions = {
                d.metadata["Name"]: d.version
                for d in importlib.metadata.distributions()
                if d.metadata["Name"]
            }
        else:
            versions = {}
            for name in names:
                try:
                    versions[name] = importlib.metadata.version(name)
                except importlib.metadata.PackageNotFoundError:
                    continue
        versions["python"] = platform.python_version()
        return cls(versions)

    def difference(self, other: Packages) -> dict[str, tuple[str | None, str | None]]:
        """Packages whose versions differ: name -> (this version, other version)."""
        names = set(self) | set(other)
        return {n: (self.get(n), other.get(n)) for n in sorted(names) if self.get(n) != other.get(n)}

    def __getitem__(self, name: str) -> str:
        return self._versions[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._versions)

    def __len__(self) -> int:
        return len(self._versions)

    def __repr__(self) -> str:
        return f"Packages({len(self)} packages)"
