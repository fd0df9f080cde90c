"""A repository's ``butler.yaml``: where its registry and its files are (readable without the SQL registry)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ButlerError, RepositoryNotFoundError
from .yaml_io import safe_load

__all__ = ["CONFIG_NAME", "ROOT_TOKEN", "RepositoryConfig"]

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
            data = safe_load(config_path.read_text()) or {}
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
