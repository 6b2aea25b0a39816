"""The gate's one database lookup, made as cheap as a query can be.

Every playlist and segment request of every viewer reaches the gate, so on PostgreSQL
its lookup is one server-side prepared statement on a kept autocommit connection, run
through libpq directly (``AutocommitConnections.fetch_raw``). SQLite (one process, small
venues, tests) goes through Core on the app's engine.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import NamedTuple

from sqlalchemy import Engine, bindparam, select

from ticketing.autocommit import AutocommitConnections, RawStatement, pg_text, pg_timestamp
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

# The same query for libpq, written out so that it can be prepared once per connection.
POSTGRES_STATEMENT = RawStatement(
    b"guichet_gate_row",
    b"SELECT viewer_session.ended_at, viewer_session.expires_at, ticket.status, event.status, event.stream_name "
    b"FROM viewer_session JOIN ticket ON ticket.id = viewer_session.ticket_id "
    b"JOIN event ON event.id = ticket.event_id WHERE viewer_session.id = $1",
)


class GateRow(NamedTuple):
    ended_at: dt.datetime | None
    expires_at: dt.datetime
    status: str
    event_status: str
    stream_name: str | None


class GateLookup:
    """Reads a viewer session with its ticket's and event's status, by primary key."""

    def __init__(self, engine: Engine, connections: AutocommitConnections | None) -> None:
        self.engine = engine  # SQLite: Core on the app's engine
        self.connections = connections  # PostgreSQL

    def row(self, viewer_id: uuid.UUID) -> GateRow | None:
        if self.connections is None:
            with self.engine.connect() as connection:
                found = connection.execute(CORE_QUERY, {"viewer_id": viewer_id}).first()
            return GateRow(*found) if found else None
        found = self.connections.fetch_raw(POSTGRES_STATEMENT, (str(viewer_id).encode("ascii"),), repeatable=True)
        if found is None:
            return None
        ended_at, expires_at, status, event_status, stream_name = found
        return GateRow(
            pg_timestamp(ended_at),
            pg_timestamp(expires_at),
            pg_text(status),
            pg_text(event_status),
            pg_text(stream_name),
        )
