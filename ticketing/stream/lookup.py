"""The gate's one database lookup, made as cheap as a query can be.

Every playlist and segment request of every viewer reaches the gate, so its lookup is
one round trip and little Python: on PostgreSQL a server-side prepared statement on a
connection each gunicorn thread keeps (autocommit: no BEGIN/ROLLBACK; no pre-ping: a
connection found dead is replaced and the query tried once more). Through SQLAlchemy's
pool and Core the same query costs about three times the CPU. SQLite (one process, small
venues, tests) goes through Core on the app's engine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import uuid
from typing import Any, NamedTuple

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.exc import DBAPIError

from ticketing.catalog.models import Event
from ticketing.checkout.models import Ticket
from ticketing.stream.models import ViewerSession

CORE_QUERY = (
    select(
        ViewerSession.ended_at,
        ViewerSession.expires_at,
        Ticket.status,
        Event.status.label("event_status"),
        Event.stream_name,
    )
    .join(Ticket, Ticket.id == ViewerSession.ticket_id)
    .join(Event, Event.id == Ticket.event_id)
    .where(ViewerSession.id == bindparam("viewer_id"))
)

# The same query for psycopg, written out so that it can be prepared once per connection.
POSTGRES_QUERY = (
    "SELECT viewer_session.ended_at, viewer_session.expires_at, ticket.status, event.status, event.stream_name "
    "FROM viewer_session JOIN ticket ON ticket.id = viewer_session.ticket_id "
    "JOIN event ON event.id = ticket.event_id WHERE viewer_session.id = %s"
)


class GateRow(NamedTuple):
    ended_at: dt.datetime | None
    expires_at: dt.datetime
    status: str
    event_status: str
    stream_name: str | None


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


class GateLookup:
    """Reads a viewer session with its ticket's and event's status, by primary key."""

    def __init__(self, engine: Engine, *, keep_connections: bool) -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        # Tests keep no connection between calls, so none outlives the app under test.
        self.keep_connections = keep_connections
        self._local = threading.local()

    def row(self, viewer_id: uuid.UUID) -> GateRow | None:
        if not self.is_postgres:
            with self.engine.connect() as connection:
                found = connection.execute(CORE_QUERY, {"viewer_id": viewer_id}).first()
            return GateRow(*found) if found else None
        for attempt in (1, 2):
            connection = self._connection()
            try:
                found = connection.driver_connection.execute(POSTGRES_QUERY, (viewer_id,), prepare=True).fetchone()
            except Exception as error:  # noqa: BLE001 - the driver's own error types; re-raised below
                self._drop(connection)
                if attempt == 2 or not _is_disconnect(error):
                    raise
                continue
            if not self.keep_connections:
                connection.close()
            if found is None:
                return None
            ended_at, expires_at, status, event_status, stream_name = found
            return GateRow(_utc(ended_at), _utc(expires_at), status, event_status, stream_name)  # type: ignore[arg-type]
        return None

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


def is_database_error(error: Exception) -> bool:
    """An error of the database or its driver, raw (psycopg) or wrapped (SQLAlchemy)."""
    import psycopg

    return isinstance(error, (psycopg.Error, DBAPIError))


def _is_disconnect(error: Exception) -> bool:
    """A server restart, a killed backend, a network cut: psycopg's OperationalError family."""
    import psycopg

    return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))
