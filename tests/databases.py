"""Where test registries live: SQLite files, or PostgreSQL schemas on the server named by QUANTA_TEST_POSTGRES."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

POSTGRES_ENV = "QUANTA_TEST_POSTGRES"
BACKENDS = ["sqlite", "postgresql"]


@dataclass(frozen=True)
class DatabaseLocation:
    """Where a test's registry lives: a URL plus, on PostgreSQL, a schema of its own."""

    backend: str
    url: str
    namespace: str | None


def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set; PostgreSQL tests need a server (bash .ci/run starts one).")
    return url


def drop_schema(url: str, namespace: str) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE'))
    engine.dispose()
