"""Fixtures shared by every layer's tests: registries on SQLite and on PostgreSQL.

PostgreSQL tests run against the server named by ``QUANTA_TEST_POSTGRES`` (``.ci/run`` starts one).
When the variable is unset they are skipped with that reason; when it is set and the server is
unreachable they fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import BACKENDS, DatabaseLocation, drop_schema, postgres_url

from butler import Registry


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseLocation]:
    """An empty database location on each backend (the registry is not created yet)."""
    if request.param == "sqlite":
        yield DatabaseLocation("sqlite", f"sqlite:///{tmp_path}/registry.sqlite3", None)
        return
    url = postgres_url()
    namespace = f"test_{uuid.uuid4().hex[:16]}"
    yield DatabaseLocation("postgresql", url, namespace)
    drop_schema(url, namespace)


@pytest.fixture
def registry(database: DatabaseLocation) -> Iterator[Registry]:
    """A new, empty registry on each backend."""
    registry = Registry.create(database.url, namespace=database.namespace)
    yield registry
    registry.close()
