"""Data repositories on disk: the ``butler.yaml`` that says where a repository's registry lives."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from .atomic_files import write_text_atomically
from .datastore_config import default_datastore_mapping
from .errors import RepositoryExistsError
from .registry import Registry
from .repository_config import CONFIG_NAME, ROOT_TOKEN, RepositoryConfig

__all__ = ["CONFIG_NAME", "ROOT_TOKEN", "RepositoryConfig", "create_repository", "open_registry"]


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
        write_text_atomically(config_path, yaml.safe_dump(data, sort_keys=False))
    except BaseException:
        if made_root:
            shutil.rmtree(root, ignore_errors=True)
        raise
    return RepositoryConfig.load(root)


def open_registry(location: str | Path) -> Registry:
    """Open the registry of the repository at ``location``."""
    config = RepositoryConfig.load(location)
    return Registry.open(config.db, namespace=config.namespace)
