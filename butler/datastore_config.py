"""Typed configuration of file datastores (validated from the ``datastore:`` section of butler.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Any

import pydantic

from .errors import ButlerError
from .yaml_io import safe_load

__all__ = ["CacheConfig", "Constraints", "DatastoreConfigError", "FileDatastoreConfig", "FormatterSpec"]


class DatastoreConfigError(ButlerError):
    """A datastore configuration has an unknown key or a value of the wrong type."""


class _Frozen(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class FormatterSpec(_Frozen):
    """A formatter and its write options."""

    formatter: str
    """Import path of the `Formatter` class."""
    write_options: dict[str, Any] = {}
    """Options passed to the formatter's constructor (e.g. Parquet ``compression``)."""


class CacheConfig(_Frozen):
    """Limits of the local cache of files read from a remote datastore (DMS-MWBT-REQ-0058)."""

    root: str | None = None
    """Cache directory; None means a directory under the system temporary directory."""
    max_size_mb: float = 1024
    """Total size above which the least recently used files are evicted, in MB."""
    max_files: int = 10_000
    """Number of files above which the least recently used files are evicted."""


class Constraints(_Frozen):
    """Which datasets a datastore takes, by dataset type name or storage class name."""

    accept: list[str] = []
    """Only these (empty: everything not rejected)."""
    reject: list[str] = []
    """Never these."""

    def allows(self, dataset_type: str, storage_class: str) -> bool:
        """Whether a dataset of this type and storage class passes the constraints."""
        names = {dataset_type, storage_class}
        if names & set(self.reject):
            return False
        return not self.accept or bool(names & set(self.accept))


class FileDatastoreConfig(_Frozen):
    """Configuration of a `FileDatastore`."""

    name: str = "FileDatastore"
    """Name recorded with every artifact."""
    root: str
    """Root URI: a local path or ``s3://bucket/prefix``."""
    templates: dict[str, str]
    """File template by dataset type name, storage class name, or ``default``."""
    formatters: dict[str, FormatterSpec]
    """Formatter by dataset type name or storage class name."""
    disassemble: list[str] = []
    """Composite storage classes written as one file per component."""
    checksum: bool = False
    """Whether to record and verify a blake2b checksum of every file."""
    cache: CacheConfig = CacheConfig()
    """Local cache for remote roots."""
    constraints: Constraints = Constraints()
    """Which datasets this datastore takes (matters inside a chained datastore)."""

    @pydantic.field_validator("formatters", mode="before")
    @classmethod
    def _formatter_shorthand(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: {"formatter": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], source: str, root: str | None = None
    ) -> FileDatastoreConfig:
        """Validate a mapping; ``<butlerRoot>`` in ``root`` becomes the repository directory."""
        values = dict(data)
        if root is not None and "root" in values:
            values["root"] = str(values["root"]).replace("<butlerRoot>", root)
        try:
            return cls.model_validate(values)
        except pydantic.ValidationError as err:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
            raise DatastoreConfigError(f"Invalid datastore configuration in {source}: {problems}") from None


def default_datastore_mapping() -> dict[str, Any]:
    """The packaged default datastore configuration, as a mapping (``<butlerRoot>`` not substituted)."""
    text = resources.files("butler").joinpath("data/datastore.yaml").read_text()
    data: dict[str, Any] = safe_load(text)
    return data
