"""Leave nothing of an erased person in the live database files: the one place where the
vault's erasure differs between SQLite and PostgreSQL.

Deleting the data-key row and blanking the person row is not enough on disk. SQLite keeps
the old page images in its write-ahead log, and the freed space of a page holds the old
bytes unless ``secure_delete`` is on (``configure_engine`` turns it on for every
connection). PostgreSQL keeps the old row versions as dead tuples, and a plain VACUUM
only marks their space free: the bytes stay in the heap page until something happens to
overwrite them (``tests/privacy/test_scrub.py`` reads the heap files to show it). Only a
rewrite of the table (``VACUUM FULL``, indexes included) leaves no copy, so that is what
runs here, once no session can still see the erased rows (it would copy them otherwise).
Migration 0009 keeps ANALYZE from sampling the secret columns into ``pg_statistic``.

Both run after the erasure's commit, outside any transaction, and each waits at most
``SCRUB_WAIT_SECONDS`` for the readers and writers in its way: an erasure must not stall
the box office behind a long report. When it cannot finish, the erasure itself stands,
the failure is logged, and the next erasure or the daily purge (which always scrubs)
finishes the job. What stays meanwhile is under the same bound as a backup's copy, and
so is PostgreSQL's own write-ahead log (``pg_wal``), which is never rewritten.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ticketing.models import SQLITE_BUSY_TIMEOUT_MS

log = logging.getLogger(__name__)

SCRUB_WAIT_SECONDS = 5
# The vault's tables, the data key first: it is the one copy the master keys can open.
VAULT_TABLES = ("data_key", "person")


def scrub_vault(engine: Engine, *, wait_seconds: float | None = None) -> bool:
    """Remove the leftovers of erased rows from the live files; True when done.

    Call it only after the erasure committed, with no transaction of the caller's open
    on this engine (it takes its own connection). It never raises a database error: the
    erasure is already committed, and its answer must say so.
    """
    wait_ms = max(1, round((SCRUB_WAIT_SECONDS if wait_seconds is None else wait_seconds) * 1000))
    dialect = engine.dialect.name
    try:
        if dialect == "sqlite":
            done = _checkpoint_and_truncate_the_log(engine, wait_ms)
        elif dialect == "postgresql":
            done = _rewrite_vault_tables(engine, wait_ms)
        else:
            raise RuntimeError(f"unsupported database dialect {dialect}")
    except SQLAlchemyError as error:
        log.warning("vault scrub failed: %s", type(getattr(error, "orig", None) or error).__name__)
        done = False
    if not done:
        log.warning(
            "vault scrub incomplete on %s: erased rows may stay in the database files until the next scrub", dialect
        )
    return done


def _checkpoint_and_truncate_the_log(engine: Engine, wait_ms: int) -> bool:
    """Copy the log into the database file and truncate the log to zero bytes.

    With ``secure_delete`` the database file's pages carry zeros where the erased rows
    were; the log still holds every older image of those pages until it is truncated.
    TRUNCATE waits for writers and for readers still on an older snapshot: a reader that
    outlasts the wait leaves the log as it is (SQLite answers busy), and we say so.
    """
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={wait_ms}")
        try:
            busy, _log_frames, _checkpointed = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()
    finally:
        connection.close()
    return busy == 0


def _rewrite_vault_tables(engine: Engine, wait_ms: int) -> bool:
    """``VACUUM FULL`` the vault's tables: each is copied, live rows only, into new files,
    and the old files are emptied at commit.

    It holds an exclusive lock on one table at a time while it copies, so purchases wait
    for as long as one copy takes (``bench/retention.py`` measures it). It needs the
    tables' owner, which the app is, since it runs the migrations; anyone else would only
    get a warning from PostgreSQL, so that is checked first.
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        owned = connection.execute(
            text(
                "SELECT count(*) FROM pg_class WHERE oid = ANY(CAST(:tables AS regclass[])) "
                "AND pg_has_role(current_user, relowner, 'USAGE')"
            ),
            {"tables": list(VAULT_TABLES)},
        ).scalar_one()
        if owned != len(VAULT_TABLES):
            log.error("the database user does not own the vault tables, so it cannot rewrite them")
            return False
        if not _wait_for_older_snapshots(connection, wait_ms):
            return False
        connection.exec_driver_sql(f"SET lock_timeout = {wait_ms}")
        try:
            connection.exec_driver_sql(f"VACUUM (FULL) {', '.join(VAULT_TABLES)}")
        except DBAPIError as error:
            log.warning("vault tables not rewritten: %s", type(error.orig).__name__)
            return False
        finally:
            connection.exec_driver_sql("RESET lock_timeout")
    return True


# Sessions that may still see the rows erased before the mark; VACUUM FULL copies such
# rows ("recently dead") into the new files. A snapshot of this database older than the
# mark counts, and so does a transaction older than the mark in any database: transaction
# ids are shared by the whole server, so the rewrite's own snapshot would reach back to
# it. (A standby's feedback arrives through a walsender, which has no database.)
OLDER_SNAPSHOTS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND ("
    "age(backend_xid) > age(xid(:mark)) OR ((datname = current_database() OR datname IS NULL) "
    "AND age(backend_xmin) > age(xid(:mark))))"
)


def _wait_for_older_snapshots(connection: Connection, wait_ms: int) -> bool:
    """Wait until no session can still see the rows erased before now.

    PostgreSQL has no SQL call that waits for older snapshots to end, so this looks every
    few milliseconds; a report or a backup running for longer than the wait makes the scrub
    give up (and say so) rather than copy the rows it is meant to remove.
    """
    mark = connection.exec_driver_sql("SELECT pg_snapshot_xmax(pg_current_snapshot())").scalar_one()
    deadline = time.monotonic() + wait_ms / 1000
    while connection.execute(OLDER_SNAPSHOTS, {"mark": mark}).scalar_one():
        if time.monotonic() >= deadline:
            log.warning("vault tables not rewritten: a session older than the erasure is still open")
            return False
        time.sleep(0.01)
    return True
