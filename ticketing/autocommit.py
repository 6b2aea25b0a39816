"""Kept autocommit connections for the two hottest paths: the streaming gate and door scans.

nginx asks the gate for every segment of every viewer, and a door scans a ticket every
second or two; each needs one or two statements, and no transaction around them (one
statement decides: a prepared SELECT, or an UPDATE whose WHERE settles races). Through a
Session and SQLAlchemy's pool the same statements cost about three times the CPU: pool
checkout, switching the connection to autocommit and back, building Core results. So on
PostgreSQL each thread keeps one autocommit psycopg connection and runs server-side
prepared statements on it: one round trip each, no BEGIN, no pre-ping. A connection found
dead is replaced, and a statement safe to repeat is tried once more.

The gate's lookup goes one step further (``fetch_raw``): straight to libpq, at about half
psycopg's CPU per statement. Under ``bench/stream_gate.py``'s load that took the gate
from four fifths of a do-nothing route's throughput to the same.

SQLite (one process, small venues) has no such need; callers use Core there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

import psycopg
from psycopg import pq
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError

T = TypeVar("T")
RawParameters = Sequence[bytes | None]  # text, or None for NULL
RawRow = tuple[bytes | None, ...]


class RawStatement(NamedTuple):
    """A statement for ``AutocommitConnections.fetch_raw``, in libpq's own terms.

    ``sql`` uses ``$1, $2 ...`` placeholders; the server infers their types when it
    prepares the statement, so parameters travel as text. Columns come back in
    PostgreSQL's binary format, which needs no parsing: ``pg_text`` and ``pg_timestamp``
    read the two kinds the gate selects.
    """

    name: bytes  # the server-side prepared statement's name, unique among RawStatements
    sql: bytes


class AutocommitConnections:
    """One kept autocommit connection per thread (none kept in tests)."""

    def __init__(self, engine: Engine, *, keep_connections: bool) -> None:
        self.engine = engine
        # Tests keep no connection between calls, so none outlives the app under test.
        self.keep_connections = keep_connections
        self._local = threading.local()
        # The RawStatements prepared on each psycopg connection (kept or pooled).
        self._prepared: weakref.WeakKeyDictionary[Any, set[bytes]] = weakref.WeakKeyDictionary()

    def fetch_one(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any], *, repeatable: bool) -> Any:
        """The first row (a tuple) of one prepared statement, or None.

        ``repeatable``: the statement may run twice without harm (a read), so a connection
        that died since its last use is replaced and the statement tried again. A write is
        not repeated: its first try may have committed before the connection broke.
        """
        return self._attempt(
            lambda connection: connection.driver_connection.execute(sql, parameters, prepare=True).fetchone(),
            repeatable=repeatable,
        )

    def fetch_raw(self, statement: RawStatement, parameters: RawParameters, *, repeatable: bool) -> RawRow | None:
        """The first row of a ``RawStatement``, as binary column values, or None.

        psycopg's ``execute`` spends nearly as much CPU as the round trip itself on its
        cursor, adapters and generator-driven waiting; libpq's ``PQexecPrepared``, through
        psycopg's ``pq`` module, makes the same round trip in C (releasing the GIL while it
        waits). Errors are psycopg's own classes, so callers and ``is_disconnect`` treat
        both paths alike; ``repeatable`` is as for ``fetch_one``.
        """
        return self._attempt(
            lambda connection: self._execute_raw(connection.driver_connection, statement, parameters),
            repeatable=repeatable,
        )

    def run(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any]) -> None:
        """One prepared statement whose result is not needed, never repeated (see ``fetch_one``)."""
        self._attempt(
            lambda connection: connection.driver_connection.execute(sql, parameters, prepare=True),
            repeatable=False,
        )

    def _attempt(self, statement: Callable[[Any], T], *, repeatable: bool) -> T:
        """Run ``statement`` on this thread's connection; a connection that fails is dropped,
        and a repeatable statement whose connection had died is tried once more."""
        for attempt in (1, 2):
            connection = self._connection()
            try:
                result = statement(connection)
            except Exception as error:  # noqa: BLE001 - the driver's own error types; re-raised below
                self._drop(connection)
                if attempt == 2 or not repeatable or not is_disconnect(error):
                    raise
                continue
            if not self.keep_connections:
                connection.close()
            return result
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _execute_raw(self, driver_connection: Any, statement: RawStatement, parameters: RawParameters) -> RawRow | None:
        pgconn = driver_connection.pgconn
        prepared = self._prepared.get(driver_connection)
        if prepared is None:
            prepared = self._prepared[driver_connection] = set()
        if statement.name not in prepared:
            _prepare(pgconn, statement)
            prepared.add(statement.name)
        result = pgconn.exec_prepared(statement.name, parameters, None, pq.Format.BINARY)
        if result.status == pq.ExecStatus.FATAL_ERROR and _sqlstate(result) == _NO_SUCH_PREPARED_STATEMENT:
            _prepare(pgconn, statement)  # lost to a DEALLOCATE ALL or DISCARD ALL: prepare again
            result = pgconn.exec_prepared(statement.name, parameters, None, pq.Format.BINARY)
        _raise_unless_ok(pgconn, result)
        if result.ntuples == 0:
            return None
        return tuple(result.get_value(0, column) for column in range(result.nfields))

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


_NO_SUCH_PREPARED_STATEMENT = "26000"  # invalid_sql_statement_name


def _prepare(pgconn: Any, statement: RawStatement) -> None:
    _raise_unless_ok(pgconn, pgconn.prepare(statement.name, statement.sql))


def _sqlstate(result: Any) -> str | None:
    code = result.error_field(pq.DiagnosticField.SQLSTATE)
    return code.decode("ascii") if code else None


def _raise_unless_ok(pgconn: Any, result: Any) -> None:
    """Raise what psycopg would for a failed libpq result: the SQLSTATE's error class,
    or, with no SQLSTATE (the connection broke), ``OperationalError``."""
    if result.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        return
    message = (result.error_message or pgconn.error_message or b"libpq gave no message").decode("utf-8", "replace")
    sqlstate = _sqlstate(result)
    if sqlstate is None:
        raise psycopg.OperationalError(message.strip())
    try:
        error_class = psycopg.errors.lookup(sqlstate)
    except KeyError:  # a code newer than this psycopg
        error_class = psycopg.DatabaseError
    raise error_class(message.strip())


_POSTGRES_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def pg_timestamp(value: bytes | None) -> dt.datetime | None:
    """A ``timestamp`` or ``timestamptz`` column in binary format, as an aware UTC datetime.

    Both are microseconds since 2000-01-01 as a big-endian int64: UTC for timestamptz,
    and for the naive timestamps ``UTCDateTime`` stores, UTC by that type's contract.
    """
    if value is None:
        return None
    return _POSTGRES_EPOCH + dt.timedelta(microseconds=int.from_bytes(value, "big", signed=True))


def pg_text(value: bytes | None) -> str | None:
    """A text or varchar column in binary format: its bytes in the client encoding, which
    ``autocommit_connections`` sets to UTF-8."""
    return None if value is None else value.decode("utf-8")


def autocommit_connections(uri: str, *, testing: bool) -> AutocommitConnections | None:
    """PostgreSQL only (None for SQLite): a small pool of its own, in autocommit, no pre-ping.

    Tests return each connection to the pool after each statement, and dispose of the
    pool with the app (``close``), so no connection outlives the app under test.
    """
    if not uri.startswith("postgresql"):
        return None
    engine = create_engine(
        uri,
        pool_size=16,
        max_overflow=16,
        pool_pre_ping=False,
        isolation_level="AUTOCOMMIT",
        connect_args={"client_encoding": "utf8"},  # what pg_text decodes
    )
    return AutocommitConnections(engine, keep_connections=not testing)


def is_database_error(error: Exception) -> bool:
    """An error of the database or its driver, raw (psycopg) or wrapped (SQLAlchemy)."""
    return isinstance(error, (psycopg.Error, DBAPIError))


def is_disconnect(error: Exception) -> bool:
    """A server restart, a killed backend, a network cut: psycopg's OperationalError family."""
    return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))
