"""The one place where check-in differs between SQLite and PostgreSQL.

Both run ``INSERT ... ON CONFLICT DO NOTHING`` with the same SQL, but SQLAlchemy offers it
only through each dialect's own ``insert`` construct. Every other statement of check-in
is the same object on both databases.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@cache  # built once per database and table, as the other statements of a scan are
def insert_unless_present(dialect_name: str, table: Table) -> Insert:
    """``INSERT INTO table ... ON CONFLICT DO NOTHING`` for this database (``sqlite`` or
    ``postgresql``): a row a unique index already holds (a retried request, a second
    admission) is not inserted."""
    return _INSERTS[dialect_name](table).on_conflict_do_nothing()
