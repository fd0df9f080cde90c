"""Connections and transactions for the registry database (SQLite or PostgreSQL)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from .errors import ButlerError

__all__ = ["Database", "bulk_insert", "chunked", "inserted_id"]

_LOG = logging.getLogger(__name__)


class Database:
    """An engine plus the connection of the transaction in progress.

    Every registry operation runs inside `transaction`; nested calls join the outer
    transaction, so a bulk operation either commits whole or leaves nothing behind.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = _make_engine(url)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as err:
            raise ButlerError(f"Cannot use database URL {url!r}: {err}") from err
        self._connection: sa.Connection | None = None

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is in progress (nested calls join it)."""
        return self._connection is not None

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """Yield the connection of a transaction; commit on success, roll back on any exception."""
        if self._connection is not None:
            yield self._connection
            return
        try:
            connection_context = self.engine.begin()
            connection = connection_context.__enter__()
        except sa.exc.OperationalError as err:
            raise ButlerError(f"Cannot connect to registry database {self.engine.url!r}: {err.orig}") from err
        self._connection = connection
        try:
            yield connection
        except BaseException as err:
            self._connection = None
            connection_context.__exit__(type(err), err, err.__traceback__)
            raise
        else:
            self._connection = None
            connection_context.__exit__(None, None, None)

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()


def _make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, poolclass=sa.pool.NullPool if ":memory:" not in url else sa.pool.StaticPool
        )
        sa.event.listen(engine, "connect", _configure_sqlite)
        # pysqlite starts transactions lazily and not for DDL; issue BEGIN ourselves so that
        # schema changes and bulk inserts are rolled back together on error.
        sa.event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url, pool_pre_ping=True)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA busy_timeout = 60000")
    cursor.close()


def bulk_insert(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert many rows fast: COPY on PostgreSQL, a raw ``executemany`` on SQLite.

    Rows are tuples in ``columns`` order, already in database form except UUIDs, which may be
    `uuid.UUID`. This bypasses SQLAlchemy's per-row processing, which dominates bulk inserts.
    """
    if not rows:
        return
    dialect = conn.dialect.name
    quoted = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in columns)
    name = conn.dialect.identifier_preparer.format_table(table)
    uuid_positions = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, sa.Uuid)]
    dbapi_connection: Any = conn.connection.dbapi_connection
    if dialect == "postgresql":
        with dbapi_connection.cursor() as cursor, cursor.copy(f"COPY {name} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    # SQLAlchemy's Uuid type stores 32 hex digits on databases without a native UUID type.
    if uuid_positions == [0]:
        rows = [(row[0].hex, *row[1:]) for row in rows]
    elif uuid_positions == [2]:
        rows = [(row[0], row[1], row[2].hex, *row[3:]) for row in rows]
    elif uuid_positions:
        rows = [_with_hex_uuids(row, uuid_positions) for row in rows]
    placeholders = ", ".join("?" for _ in columns)
    cursor = dbapi_connection.cursor()
    try:
        cursor.executemany(f"INSERT INTO {name} ({quoted}) VALUES ({placeholders})", rows)
    finally:
        cursor.close()


def _with_hex_uuids(row: Sequence[Any], positions: Sequence[int]) -> tuple[Any, ...]:
    values = list(row)
    for i in positions:
        values[i] = values[i].hex
    return tuple(values)


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The integer primary key of the single row an INSERT created."""
    key = result.inserted_primary_key
    if key is None:
        raise ButlerError("The database did not return the key of the inserted row.")
    return int(key[0])


def chunked(items: Sequence[Any], size: int = 10_000) -> Iterator[Sequence[Any]]:
    """Successive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
