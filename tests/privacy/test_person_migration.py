"""Migration 0007 splits a person shared by several orders into one record per order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from tests.conftest import PG_URL, dispose, make_app, make_organizer
from ticketing.catalog.models import Event
from ticketing.checkout.models import Order
from ticketing.crypto import hash_token
from ticketing.extensions import db, keyring
from ticketing.models import new_id, utcnow
from ticketing.privacy.vault import email_indexes, find_person_ids, read_person, store_person


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own, empty: this test migrates it step by step."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrating.sqlite3'}"
        return
    if not PG_URL:
        pytest.skip("TICKETING_TEST_DATABASE_URL is not set (set in CI, where this never skips)")
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"{admin.url.database}_migrating"
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield admin.url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# The event table as migration 0006 left it: later migrations add columns the ORM model
# writes, which the database does not have yet at that revision.
EVENT_AT_0006 = sa.table(
    "event",
    *(
        sa.column(name, Event.__table__.c[name].type)
        for name in (
            "id",
            "organizer_id",
            "title",
            "description",
            "venue_name",
            "venue_address",
            "starts_at",
            "ends_at",
            "timezone",
            "mode",
            "status",
            "currency",
            "ask_name",
            "ask_postcode",
            "retention_days",
            "stream_url",
            "stream_access",
            "stream_max_screens",
            "stream_screen_policy",
            "created_at",
            "updated_at",
        )
    ),
)


def _event(organizer_id, *, asks: bool) -> SimpleNamespace:
    now = utcnow()
    event = SimpleNamespace(id=new_id())
    db.session.execute(
        sa.insert(EVENT_AT_0006).values(
            id=event.id,
            organizer_id=organizer_id,
            title="Migrated",
            description="",
            venue_name="Salle",
            venue_address="",
            starts_at=(now + dt.timedelta(days=3)),
            ends_at=(now + dt.timedelta(days=3, hours=2)),
            timezone="Europe/Paris",
            mode="in_person",
            status="published",
            currency="EUR",
            ask_name=asks,
            ask_postcode=asks,
            retention_days=30,
            stream_url="",
            stream_access="gate",
            stream_max_screens=1,
            stream_screen_policy="newest_wins",
            created_at=now,
            updated_at=now,
        )
    )
    return event


def _order(event: SimpleNamespace, person_id, minutes: int) -> Order:
    now = utcnow() + dt.timedelta(minutes=minutes)
    return Order(
        id=new_id(),
        code=f"AAAAA-AAAA{minutes}",
        access_token_hash=hash_token(str(minutes)),
        event_id=event.id,
        person_id=person_id,
        status="paid",
        currency="EUR",
        subtotal_cents=0,
        fee_cents=0,
        total_cents=0,
        provider="free",
        hold_expires_at=now,
        created_at=now,
        paid_at=now,
    )


def test_a_person_shared_by_orders_becomes_one_record_per_order(empty_database, tmp_path):
    app = make_app(tmp_path / "instance", empty_database)
    try:
        with app.app_context():
            upgrade(revision="0006_mail_queue")
            organizer, _token = make_organizer()
            asks, silent = _event(organizer.id, asks=True), _event(organizer.id, asks=False)
            db.session.commit()
            shared = store_person(
                db.session, keyring(), email="Sh4red@Example.org", name="Sam", postcode="31000", now=utcnow()
            )
            db.session.add_all([_order(asks, shared, 1), _order(silent, shared, 2), _order(asks, shared, 3)])
            db.session.commit()

            upgrade()

            persons = dict(db.session.execute(sa.select(Order.code, Order.person_id)).all())
            records = {code: read_person(db.session, keyring(), person) for code, person in persons.items()}
            found = find_person_ids(db.session, email_indexes(keyring(), "sh4red@example.org"))
    finally:
        dispose(app)

    assert len(set(persons.values())) == 3 and persons["AAAAA-AAAA1"] == shared
    assert set(found) == set(persons.values())
    assert {code: (r.email, r.name, r.postcode) for code, r in records.items()} == {
        "AAAAA-AAAA1": ("Sh4red@Example.org", "Sam", "31000"),
        "AAAAA-AAAA2": ("Sh4red@Example.org", None, None),  # its event never asked for them
        "AAAAA-AAAA3": ("Sh4red@Example.org", "Sam", "31000"),
    }
