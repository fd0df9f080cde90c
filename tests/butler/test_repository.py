"""Repositories: creation refuses to overwrite, and opening checks the dimension universe."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from databases import DatabaseLocation

from butler import (
    DimensionUniverse,
    Registry,
    RepositoryExistsError,
    RepositoryNotFoundError,
    UniverseMismatchError,
)
from butler.repository import CONFIG_NAME, RepositoryConfig, create_repository, open_registry


def test_create_then_open(database: DatabaseLocation, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    config = create_repository(repo, db=database.url, namespace=database.namespace)
    assert (repo / CONFIG_NAME).is_file()
    assert RepositoryConfig.load(repo) == config
    with open_registry(repo) as registry:
        registry.register_run("run")
    with open_registry(repo / CONFIG_NAME) as registry:
        assert registry.query_collections() == ["run"]


def test_second_create_is_refused_and_wipes_nothing(database: DatabaseLocation, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    create_repository(repo, db=database.url, namespace=database.namespace)
    with open_registry(repo) as registry:
        registry.register_run("keep")
    with pytest.raises(RepositoryExistsError, match="already exists"):
        create_repository(repo, db=database.url, namespace=database.namespace)
    # Another directory pointing at the same database is refused too, and leaves no directory behind.
    with pytest.raises(RepositoryExistsError, match="refusing to overwrite"):
        create_repository(tmp_path / "other", db=database.url, namespace=database.namespace)
    assert not (tmp_path / "other").exists()
    with open_registry(repo) as registry:
        assert registry.query_collections() == ["keep"]


def test_default_repository_is_sqlite_inside_it(tmp_path: Path) -> None:
    config = create_repository(tmp_path / "repo")
    assert config.db == f"sqlite:///{(tmp_path / 'repo').resolve()}/registry.sqlite3"
    stored = yaml.safe_load((tmp_path / "repo" / CONFIG_NAME).read_text())
    assert stored["registry"]["db"] == "sqlite:///<butlerRoot>/registry.sqlite3"


def test_missing_repository(tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFoundError, match="butler create"):
        open_registry(tmp_path / "nowhere")


def test_incompatible_universe_is_refused(database: DatabaseLocation) -> None:
    Registry.create(database.url, namespace=database.namespace).close()
    default = DimensionUniverse.default()
    newer = DimensionUniverse(default.name, default.version + 1, default.elements, default.spatial_joins)
    with pytest.raises(UniverseMismatchError, match=r"quanta v2; this software uses quanta v3"):
        Registry.open(database.url, namespace=database.namespace, universe=newer)
