"""Declarative base, shared column types and transaction setup. Imports no domain."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import DateTime, MetaData, TypeDecorator, event
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, scoped_session

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores UTC, returns aware datetimes, on SQLite (no time zones) and PostgreSQL alike.

    A naive datetime is refused: every time in Guichet is an instant, and a guess about
    its zone is how doors open an hour late.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC instant is needed")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


WROTE = "guichet_wrote"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# A session remembers whether one of its write transactions (begun by ``begin_write``)
# committed, so that an error after the commit is not answered "nothing was recorded".
WRITE_OPEN = "guichet_write_open"
COMMITTED_WRITE = "guichet_committed_write"


class WriteInOpenTransaction(RuntimeError):
    """``begin_write`` was called while the session's transaction had already written:
    committing that silently would join two units of work, rolling it back would lose one."""


def configure_engine(engine: Engine) -> None:
    """Track writes for ``begin_write``; make SQLite safe under concurrency.

    pysqlite's own transaction handling is switched off so that we issue BEGIN ourselves:
    writers take ``BEGIN IMMEDIATE`` (see ``begin_write``), which waits for the write lock
    up front. A deferred transaction that reads first and writes later can fail with
    "database is locked" when another writer got in between, whatever the busy timeout.
    """

    @event.listens_for(engine, "after_cursor_execute")
    def _note_write(connection: Connection, _cursor, _statement, _parameters, context, _many) -> None:  # type: ignore[no-untyped-def]
        if context.isinsert or context.isupdate or context.isdelete:
            connection.info[WROTE] = True

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _forget_writes(connection: Connection) -> None:
        # A connection the server dropped is discarded with its info; reading it would raise.
        if not connection.invalidated:
            connection.info.pop(WROTE, None)

    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # Freed space is overwritten with zeros, so an erased person's bytes do not stay in
        # the file's pages (see ticketing/privacy/scrub.py for the log).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("guichet_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def begin_write(session: Session | scoped_session[Session]) -> None:
    """Start the transaction of a service that writes: one unit of work, from here to its
    commit.

    On SQLite it takes the write lock at once (``BEGIN IMMEDIATE``); on PostgreSQL it is a
    plain transaction. Call it before the service's first statement. A transaction left
    open by reads only (a route that loaded the event before calling the service) is
    ended first, which loses nothing; one that has written, or holds unflushed changes,
    raises ``WriteInOpenTransaction``: its owner must commit or roll back first.
    """
    real = session() if isinstance(session, scoped_session) else session
    if real.in_transaction():
        if real.new or real.dirty or real.deleted or real.connection().info.get(WROTE, False):
            raise WriteInOpenTransaction("begin_write inside a transaction that has written; commit or roll back first")
        real.commit()  # nothing written: this only ends the read, and keeps loaded objects usable
    real.connection(execution_options={"guichet_write": True})
    real.info[WRITE_OPEN] = True


@event.listens_for(Session, "after_commit")
def _note_committed_write(session: Session) -> None:
    if not session.in_nested_transaction() and session.info.pop(WRITE_OPEN, False):
        session.info[COMMITTED_WRITE] = True


@event.listens_for(Session, "after_soft_rollback")
def _forget_open_write(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(WRITE_OPEN, None)


def has_committed_a_write(session: Session | scoped_session[Session]) -> bool:
    """True once a write transaction of this session committed (since ``forget_committed_writes``)."""
    real = session() if isinstance(session, scoped_session) else session
    return bool(real.info.get(COMMITTED_WRITE, False))


def forget_committed_writes(session: Session | scoped_session[Session]) -> None:
    """Start counting afresh: a request does so before it runs (tests may reuse a session)."""
    real = session() if isinstance(session, scoped_session) else session
    real.info.pop(COMMITTED_WRITE, None)
