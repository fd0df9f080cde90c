"""Task metadata: the nested timings and quality numbers a task records for each quantum."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

__all__ = ["TaskMetadata"]

Scalar = int | float | str | bool
_SCALARS = (int, float, str, bool)


class TaskMetadata(MutableMapping[str, Any]):
    """A mapping of names to scalars, lists of scalars, or nested `TaskMetadata`.

    Dotted keys reach into nested levels: ``md["isr.timing.cpu"]``.
    """

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._values: dict[str, Any] = {}
        for key, value in (values or {}).items():
            self[key] = value

    def __getitem__(self, key: str) -> Any:
        head, _, rest = key.partition(".")
        value = self._values[head]
        return value[rest] if rest else value

    def __setitem__(self, key: str, value: Any) -> None:
        head, _, rest = key.partition(".")
        if rest:
            child = self._values.setdefault(head, TaskMetadata())
            if not isinstance(child, TaskMetadata):
                raise TypeError(f"Task metadata key {head!r} holds a value, not nested metadata.")
            child[rest] = value
            return
        self._values[head] = _checked(key, value)

    def __delitem__(self, key: str) -> None:
        del self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts and lists, for JSON/YAML."""
        return {k: v.to_dict() if isinstance(v, TaskMetadata) else v for k, v in self._values.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskMetadata:
        """Inverse of `to_dict`."""
        return cls(data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TaskMetadata):
            return self.to_dict() == other.to_dict()
        return NotImplemented

    def __repr__(self) -> str:
        return f"TaskMetadata({self.to_dict()!r})"


def _checked(key: str, value: Any) -> Any:
    if isinstance(value, TaskMetadata):
        return value
    if isinstance(value, Mapping):
        return TaskMetadata(value)
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, _SCALARS) for v in value):
        return list(value)
    raise TypeError(
        f"Task metadata {key!r} must be a scalar, a list of scalars or a mapping; got {type(value).__name__}."
    )
