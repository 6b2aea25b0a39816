"""Right after an erasure, by any route, or a retention purge, the live database files hold
nothing of the erased buyer that the master keys can open.

The tests read the files themselves, with the app's connections still open: the SQLite
database and its write-ahead log, and on PostgreSQL (after CHECKPOINT) every file of the
database's tables, TOAST tables and indexes, and of ``pg_statistic``. They look for the
wrapped data keys and ciphertexts captured before the erasure (including a name that a
later order overwrote), and try every window of those files that starts like a Guichet
ciphertext as a wrapped key under each master key and as each field under each data key.
A buyer who was not erased must still be found this way: that shows the files were read.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import IN_CI, csrf_token, outbox, post_form, published_event
from tests.privacy.helpers import buy, erase_by_api, order_path
from ticketing.catalog.models import Event
from ticketing.checkout.models import Order
from ticketing.crypto import DecryptionFailed, KeyRing, decrypt_field, unwrap_data_key
from ticketing.crypto.envelope import FORMAT_VERSION, NONCE_BYTES
from ticketing.extensions import db, keyring
from ticketing.models import utcnow
from ticketing.privacy.models import DataKey, Person
from ticketing.privacy.scrub import scrub_vault

VICTIM = "Sc7Rub.Victim@Example.NET"
FIRST_NAME, SECOND_NAME, POSTCODE = "Scrubbina Firstname", "Scrubbina Secondname", "SR-4471"
WITNESS = "still.here@example.org"
TAG_BYTES = 16
WRAPPED_KEY_BYTES = 1 + NONCE_BYTES + 32 + TAG_BYTES
LINK = re.compile(r"http://localhost(/privacy/my-data/[A-Za-z0-9_.\-]+)")


@dataclass
class Captured:
    """What the vault held for one person before the erasure: every version we saw."""

    person_id: uuid.UUID
    data_key: bytes
    wrapped: set[tuple[str, bytes]] = field(default_factory=set)
    sealed: dict[str, set[bytes]] = field(default_factory=dict)


def _capture(app, codes: list[str], into: dict[uuid.UUID, Captured]) -> None:
    with app.app_context():
        ring = keyring()
        for code in codes:
            person_id = db.session.execute(sa.select(Order.person_id).where(Order.code == code)).scalar_one()
            person = db.session.get(Person, person_id)
            key = db.session.get(DataKey, person_id)
            data_key = unwrap_data_key(ring, person_id, key.master_key_id, key.wrapped_key)
            seen = into.setdefault(person_id, Captured(person_id, data_key))
            seen.wrapped.add((key.master_key_id, key.wrapped_key))
            for name in ("email", "name", "postcode"):
                sealed = getattr(person, f"{name}_ct")
                if sealed is not None:
                    seen.sealed.setdefault(name, set()).add(sealed)
        db.session.rollback()


def live_files(app) -> dict[str, bytes]:
    """The database files as they are at this moment, without closing any connection
    (closing SQLite's last one would checkpoint the log and hide what an erasure left)."""
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            path = Path(engine.url.database)
            files = [path, path.with_name(path.name + "-wal")]
            return {f.name: f.read_bytes() for f in files if f.exists()}
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("CHECKPOINT")
            data_directory = Path(connection.exec_driver_sql("SHOW data_directory").scalar_one())
            relations = connection.execute(
                sa.text(
                    "SELECT pg_relation_filepath(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE (n.nspname IN ('public', 'pg_toast') OR c.relname = 'pg_statistic') "
                    "AND pg_relation_filepath(c.oid) IS NOT NULL"
                )
            ).scalars()
            relations = list(relations)
    if not os.access(data_directory, os.R_OK):
        if IN_CI:
            pytest.fail(f"the test must run as a user who can read {data_directory} (root, on the server's machine)")
        pytest.skip(f"cannot read {data_directory}: run as root on the database server's machine")
    files = {}
    for relation in relations:
        main = data_directory / relation
        forks = re.compile(re.escape(main.name) + r"(\.\d+|_fsm|_vm|_init)?")
        for path in main.parent.iterdir():
            if forks.fullmatch(path.name):
                files[relation + path.name[len(main.name) :]] = path.read_bytes()
    return files


def decryptable(files: dict[str, bytes], persons: list[Captured], ring: KeyRing) -> list[str]:
    """Every place in the files where a person's data key or field can be opened, or a
    captured copy of either lies."""
    found = []
    for name, content in files.items():
        for person in persons:
            for _key_id, wrapped in person.wrapped:
                if wrapped in content:
                    found.append(f"{name}: a wrapped data key of {person.person_id}")
            for field_name, copies in person.sealed.items():
                found += [f"{name}: a {field_name} ciphertext of {person.person_id}" for c in copies if c in content]
        for start in (match.start() for match in re.finditer(re.escape(FORMAT_VERSION), content)):
            for person in persons:
                found += _opens_at(content, start, person, ring, name)
    return found


def _opens_at(content: bytes, start: int, person: Captured, ring: KeyRing, name: str) -> list[str]:
    opened = []
    window = content[start : start + WRAPPED_KEY_BYTES]
    for key_id in ring.master_keys:
        try:
            unwrap_data_key(ring, person.person_id, key_id, window)
            opened.append(f"{name}@{start}: unwraps {person.person_id}'s data key under {key_id}")
        except DecryptionFailed:
            pass
    for field_name, copies in person.sealed.items():
        for length in {len(c) for c in copies}:
            try:
                decrypt_field(person.data_key, person.person_id, field_name, content[start : start + length])
                opened.append(f"{name}@{start}: opens {person.person_id}'s {field_name}")
            except DecryptionFailed:
                pass
    return opened


def _gather_statistics(app) -> None:
    """What autovacuum does on its own once a table has changed enough: ANALYZE, which on
    PostgreSQL copies sample values of each column into ``pg_statistic``."""
    with app.app_context(), db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE")


def _end_event(app, event_id) -> None:
    with app.app_context():
        ends = utcnow() - dt.timedelta(days=40)
        db.session.execute(
            sa.update(Event)
            .where(Event.id == event_id)
            .values(starts_at=ends - dt.timedelta(hours=2), ends_at=ends, retention_days=30)
        )
        db.session.commit()


def _victim_orders_linked(app, codes: list[str]) -> list[str]:
    with app.app_context():
        linked = db.session.execute(
            sa.select(Order.code).where(Order.code.in_(codes), Order.person_id.is_not(None))
        ).scalars()
        return list(linked)


def _erase(app, client, runner, route: str, orders: list[dict], event) -> None:
    """Erase the victim through one route, order by order until none is linked any more
    (whether two orders with one email are one person or two is the vault's business)."""
    codes = [order["code"] for order in orders]
    if route == "retention":
        _end_event(app, event.id)
        result = runner.invoke(args=["purge-personal-data"])
        assert result.exit_code == 0, result.output
    for order in orders:
        if order["code"] not in _victim_orders_linked(app, codes):
            continue
        if route == "api_order_token":
            assert erase_by_api(client, order).status_code == 200
        elif route == "order_link":
            erased = client.post(
                f"{order_path(order)}/erase",
                data={"csrf_token": csrf_token(client, order_path(order)), "confirm": "yes"},
            )
            assert erased.status_code == 200
        elif route == "email_link":
            post_form(client, "/privacy", "/privacy/request", {"email": VICTIM})
            mail = outbox(app)[-1].read_text().replace("=\n", "")
            link = LINK.search(mail).group(1)
            assert post_form(client, link, f"{link}/erase", {"confirm": "yes"}).status_code == 200
    assert _victim_orders_linked(app, codes) == []


@pytest.mark.parametrize("route", ["order_link", "api_order_token", "email_link", "retention"])
def test_nothing_of_an_erased_buyer_opens_in_the_database_files(app, client, runner, route):
    gone = published_event(app, ask_name=True, ask_postcode=True, price_cents=0, fee_cents=0)
    kept = published_event(app, price_cents=0, fee_cents=0)
    victim: dict[uuid.UUID, Captured] = {}
    witness: dict[uuid.UUID, Captured] = {}
    first = buy(client, gone, VICTIM, name=FIRST_NAME, postcode=POSTCODE)
    _capture(app, [first["code"]], victim)
    second = buy(client, gone, VICTIM, name=SECOND_NAME, postcode=POSTCODE)
    _capture(app, [first["code"], second["code"]], victim)
    _capture(app, [buy(client, kept, WITNESS)["code"]], witness)
    assert any(len(copies) == 2 for person in victim.values() for copies in person.sealed.values()) or (
        len(victim) == 2
    ), "the second order should have overwritten the name, or made a second person"
    _gather_statistics(app)

    _erase(app, client, runner, route, [first, second], gone)

    files = live_files(app)
    with app.app_context():
        ring = keyring()
    assert decryptable(files, list(victim.values()), ring) == []
    assert decryptable(files, list(witness.values()), ring), "the buyer not erased must still be found"


def test_plain_vacuum_leaves_a_deleted_row_in_the_heap_and_vacuum_full_does_not(pg_app):
    """Why the scrub rewrites the vault's tables: a plain VACUUM marks a dead row's space
    free and leaves its bytes in the page (here, the last row inserted, which nothing moves
    over); VACUUM FULL copies the live rows into new files."""
    secret = os.urandom(32)
    with pg_app.app_context(), db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("CREATE TABLE scrub_probe (id integer PRIMARY KEY, secret bytea)")
        try:
            rows = [{"id": n, "secret": os.urandom(32)} for n in range(1, 50)] + [{"id": 50, "secret": secret}]
            connection.execute(sa.text("INSERT INTO scrub_probe VALUES (:id, :secret)"), rows)
            connection.exec_driver_sql("DELETE FROM scrub_probe WHERE id = 50")

            connection.exec_driver_sql("VACUUM scrub_probe")
            after_vacuum = _heap_file(connection, "scrub_probe")
            connection.exec_driver_sql("VACUUM (FULL) scrub_probe")
            after_full = _heap_file(connection, "scrub_probe")
        finally:
            connection.exec_driver_sql("DROP TABLE scrub_probe")

    assert secret in after_vacuum
    assert secret not in after_full


def _heap_file(connection, table: str) -> bytes:
    connection.exec_driver_sql("CHECKPOINT")
    data_directory = Path(connection.exec_driver_sql("SHOW data_directory").scalar_one())
    relation = connection.execute(sa.text("SELECT pg_relation_filepath(:t)"), {"t": table}).scalar_one()
    if not os.access(data_directory, os.R_OK):
        if IN_CI:
            pytest.fail(f"the test must run as a user who can read {data_directory}")
        pytest.skip(f"cannot read {data_directory}")
    return (data_directory / relation).read_bytes()


def test_scrub_waits_for_readers_and_says_when_it_could_not_finish(app, client):
    """A reader in the way (an open snapshot on SQLite, a transaction on the vault's
    tables on PostgreSQL) makes the scrub give up after its wait and answer False; the
    next scrub, once the reader is gone, finishes."""
    buy(client, published_event(app), "reader.in.the.way@example.org")
    with app.app_context():
        engine = db.engine
        reader = engine.connect()
        reader.execute(sa.select(sa.func.count()).select_from(Person)).scalar_one()
        try:
            blocked = scrub_vault(engine, wait_seconds=0.05)
        finally:
            reader.close()
        finished = scrub_vault(engine, wait_seconds=5)
        log_left = _log_size(engine)

    assert blocked is False
    assert finished is True
    assert log_left == 0


def _log_size(engine) -> int:
    """Bytes of SQLite's write-ahead log after the scrub (PostgreSQL's is not the scrub's)."""
    if engine.dialect.name != "sqlite":
        return 0
    wal = Path(engine.url.database + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_an_erasure_whose_scrub_is_blocked_answers_with_its_receipt_and_the_purge_finishes(
    app, client, runner, monkeypatch, caplog
):
    """The documented fallback: a reader outlasting the scrub's wait leaves the erasure
    committed and answered, a warning in the log, and the daily purge completes the scrub."""
    monkeypatch.setattr("ticketing.privacy.scrub.SCRUB_WAIT_SECONDS", 0.2)
    order = buy(client, published_event(app, price_cents=0, fee_cents=0), VICTIM)
    victim: dict[uuid.UUID, Captured] = {}
    _capture(app, [order["code"]], victim)
    with app.app_context():
        reader = db.engine.connect()
        reader.execute(sa.select(sa.func.count()).select_from(Person)).scalar_one()
    try:
        erased = erase_by_api(client, order)
        with app.app_context():
            left_behind = decryptable(live_files(app), list(victim.values()), keyring())
    finally:
        reader.close()

    purged = runner.invoke(args=["purge-personal-data"])

    assert erased.status_code == 200 and erased.get_json()["receipt_id"]
    assert "vault scrub incomplete" in caplog.text
    assert left_behind, "with the scrub blocked, the leftovers should still be there for this test to mean anything"
    assert purged.exit_code == 0, purged.output
    with app.app_context():
        assert decryptable(live_files(app), list(victim.values()), keyring()) == []
