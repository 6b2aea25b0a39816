"""Kept autocommit connections for the two hottest paths: the streaming gate and door scans.

nginx asks the gate for every segment of every viewer, and a door scans a ticket every
second or two; each needs one or two statements, and no transaction around them (one
statement decides: a prepared SELECT, or an UPDATE whose WHERE settles races). Through a
Session and SQLAlchemy's pool the same statements cost about three times the CPU: pool
checkout, switching the connection to autocommit and back, building Core results. So on
PostgreSQL each thread keeps one autocommit psycopg connection and runs server-side
prepared statements on it: one round trip each, no BEGIN, no pre-ping. A connection found
dead is replaced, and a statement safe to repeat is tried once more.

SQLite (one process, small venues) has no such need; callers use Core there.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError


class AutocommitConnections:
    """One kept autocommit connection per thread (none kept in tests)."""

    def __init__(self, engine: Engine, *, keep_connections: bool) -> None:
        self.engine = engine
        # Tests keep no connection between calls, so none outlives the app under test.
        self.keep_connections = keep_connections
        self._local = threading.local()

    def fetch_one(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any], *, repeatable: bool) -> Any:
        """The first row (a tuple) of one prepared statement, or None.

        ``repeatable``: the statement may run twice without harm (a read), so a connection
        that died since its last use is replaced and the statement tried again. A write is
        not repeated: its first try may have committed before the connection broke.
        """
        for attempt in (1, 2):
            connection = self._connection()
            try:
                row = connection.driver_connection.execute(sql, parameters, prepare=True).fetchone()
            except Exception as error:  # noqa: BLE001 - the driver's own error types; re-raised below
                self._drop(connection)
                if attempt == 2 or not repeatable or not is_disconnect(error):
                    raise
                continue
            if not self.keep_connections:
                connection.close()
            return row
        return None

    def run(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any]) -> None:
        """One prepared statement whose result is not needed, never repeated (see ``fetch_one``)."""
        connection = self._connection()
        try:
            connection.driver_connection.execute(sql, parameters, prepare=True)
        except Exception:
            self._drop(connection)
            raise
        if not self.keep_connections:
            connection.close()

    def current_backend_pid(self) -> int | None:
        """The server process of this thread's kept connection (tests kill it on purpose)."""
        connection = getattr(self._local, "connection", None)
        return connection.driver_connection.info.backend_pid if connection is not None else None

    def close(self) -> None:
        """Close this thread's kept connection and the engine's pool."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            self._local.connection = None
            connection.close()
        self.engine.dispose()

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None) if self.keep_connections else None
        if connection is None:
            connection = self.engine.raw_connection()
            if self.keep_connections:
                self._local.connection = connection
        return connection

    def _drop(self, connection: Any) -> None:
        self._local.connection = None
        with contextlib.suppress(DBAPIError):
            connection.invalidate()


def autocommit_connections(uri: str, *, testing: bool) -> AutocommitConnections | None:
    """PostgreSQL only (None for SQLite): a small pool of its own, in autocommit, no pre-ping.

    Tests return each connection to the pool after each statement, and dispose of the
    pool with the app (``close``), so no connection outlives the app under test.
    """
    if not uri.startswith("postgresql"):
        return None
    engine = create_engine(uri, pool_size=16, max_overflow=16, pool_pre_ping=False, isolation_level="AUTOCOMMIT")
    return AutocommitConnections(engine, keep_connections=not testing)


def is_database_error(error: Exception) -> bool:
    """An error of the database or its driver, raw (psycopg) or wrapped (SQLAlchemy)."""
    import psycopg

    return isinstance(error, (psycopg.Error, DBAPIError))


def is_disconnect(error: Exception) -> bool:
    """A server restart, a killed backend, a network cut: psycopg's OperationalError family."""
    import psycopg

    return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))
