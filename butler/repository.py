"""Data repositories on disk: the ``butler.yaml`` that says where a repository's registry lives."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .datastore_config import default_datastore_mapping
from .errors import ButlerError, RepositoryExistsError, RepositoryNotFoundError
from .registry import Registry

__all__ = ["CONFIG_NAME", "RepositoryConfig", "create_repository", "open_registry"]

CONFIG_NAME = "butler.yaml"
"""File name of a repository's configuration, in the repository's root directory."""

ROOT_TOKEN = "<butlerRoot>"
"""Stands for the repository's root directory in configuration values, so a repository can move."""


@dataclass(frozen=True)
class RepositoryConfig:
    """Where a repository keeps its registry and its files."""

    root: Path
    """The repository's root directory."""
    db: str
    """SQLAlchemy URL of the registry database (``<butlerRoot>`` already substituted)."""
    namespace: str | None = None
    """PostgreSQL schema holding the registry tables (several repositories can share a database)."""
    datastore: dict[str, Any] | None = None
    """The raw ``datastore:`` mapping, built by `make_datastore` (None only for registry-only repositories)."""

    @classmethod
    def load(cls, location: str | Path) -> RepositoryConfig:
        """Read the configuration of the repository at ``location`` (its root or its ``butler.yaml``)."""
        path = Path(location)
        config_path = path if path.suffix in (".yaml", ".yml") else path / CONFIG_NAME
        if not config_path.is_file():
            raise RepositoryNotFoundError(
                f"No data repository at {str(location)!r}: {config_path} does not exist "
                "(create one with 'butler create')."
            )
        try:
            data = yaml.safe_load(config_path.read_text()) or {}
            registry: dict[str, Any] = data["registry"]
            db = str(registry["db"])
        except (yaml.YAMLError, KeyError, TypeError) as err:
            raise ButlerError(
                f"Invalid repository configuration {config_path}: expected registry.db ({err})."
            ) from err
        root = config_path.parent.resolve()
        datastore = data.get("datastore")
        return cls(
            root,
            db.replace(ROOT_TOKEN, str(root)),
            registry.get("namespace"),
            dict(datastore) if datastore else None,
        )


def create_repository(
    location: str | Path,
    db: str | None = None,
    namespace: str | None = None,
    datastore_root: str | None = None,
) -> RepositoryConfig:
    """Create a new repository: its directory, its registry schema, then its ``butler.yaml``.

    ``db`` defaults to a SQLite file inside the repository and ``datastore_root`` (a path or
    ``s3://bucket/prefix``) to the repository directory. Refuses (changing nothing) when a
    repository already exists at ``location`` or in the database.
    """
    root = Path(location)
    config_path = root / CONFIG_NAME
    if config_path.exists():
        raise RepositoryExistsError(f"A data repository already exists at {str(location)!r} ({config_path}).")
    if root.exists() and not root.is_dir():
        raise RepositoryExistsError(f"Cannot create a data repository at {str(location)!r}: it is a file.")
    made_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    stored_db = db if db is not None else f"sqlite:///{ROOT_TOKEN}/registry.sqlite3"
    resolved_db = stored_db.replace(ROOT_TOKEN, str(root.resolve()))
    try:
        Registry.create(resolved_db, namespace=namespace).close()
        datastore = default_datastore_mapping()
        if datastore_root is not None:
            datastore["root"] = datastore_root
            if "://" not in datastore_root:
                Path(datastore_root).mkdir(parents=True, exist_ok=True)
        data = {"registry": {"db": stored_db, "namespace": namespace}, "datastore": datastore}
        _write_atomically(config_path, yaml.safe_dump(data, sort_keys=False))
    except BaseException:
        if made_root:
            shutil.rmtree(root, ignore_errors=True)
        raise
    return RepositoryConfig.load(root)


def open_registry(location: str | Path) -> Registry:
    """Open the registry of the repository at ``location``."""
    config = RepositoryConfig.load(location)
    return Registry.open(config.db, namespace=config.namespace)


def _write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
