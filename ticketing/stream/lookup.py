"""The gate's one database lookup, made as cheap as a query can be.

Every playlist and segment request of every viewer reaches the gate, so on PostgreSQL
its lookup is one server-side prepared statement on a kept autocommit connection (see
``ticketing.autocommit``). SQLite (one process, small venues, tests) goes through Core
on the app's engine.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import NamedTuple

from sqlalchemy import Engine, bindparam, select

from ticketing.autocommit import AutocommitConnections
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

    def __init__(self, engine: Engine, connections: AutocommitConnections | None) -> None:
        self.engine = engine  # SQLite: Core on the app's engine
        self.connections = connections  # PostgreSQL

    def row(self, viewer_id: uuid.UUID) -> GateRow | None:
        if self.connections is None:
            with self.engine.connect() as connection:
                found = connection.execute(CORE_QUERY, {"viewer_id": viewer_id}).first()
            return GateRow(*found) if found else None
        found = self.connections.fetch_one(POSTGRES_QUERY, (viewer_id,), repeatable=True)
        if found is None:
            return None
        ended_at, expires_at, status, event_status, stream_name = found
        return GateRow(_utc(ended_at), _utc(expires_at), status, event_status, stream_name)
