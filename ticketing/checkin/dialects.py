"""The one place where check-in differs between SQLite and PostgreSQL.

Both run ``INSERT ... ON CONFLICT DO NOTHING`` with the same SQL, but SQLAlchemy offers it
only through each dialect's own ``insert`` construct. Every other statement of check-in
is the same object on both databases.
"""

from __future__ import annotations

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def insert_unless_present(session: Session, table: Table) -> Insert:
    """``INSERT INTO table ... ON CONFLICT DO NOTHING`` for the session's database: a row a
    unique index already holds (a retried request, a second admission) is not inserted."""
    return _INSERTS[session.get_bind().dialect.name](table).on_conflict_do_nothing()
