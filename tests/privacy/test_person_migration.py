"""Migration 0007 splits a person shared by several orders into one record per order."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from flask_migrate import upgrade

from tests.conftest import dispose, make_app
from ticketing.checkout.models import Order
from ticketing.crypto import blind_index, encrypt_field, hash_token, new_data_key, wrap_data_key
from ticketing.extensions import db, keyring
from ticketing.models import new_id, utcnow
from ticketing.privacy.vault import email_indexes, find_person_ids, read_person


def _insert_at_0006(table: str, **values) -> None:
    """Write a row with the columns revision 0006 has; today's models have columns it lacks."""

    def column(name, value):
        if isinstance(value, uuid.UUID):
            return sa.column(name, sa.Uuid())
        if isinstance(value, dt.datetime):
            return sa.column(name, sa.DateTime())
        return sa.column(name)

    db.session.execute(sa.table(table, *(column(k, v) for k, v in values.items())).insert().values(**values))


def _event(organizer_id, *, asks: bool) -> uuid.UUID:
    event_id, now = new_id(), utcnow().replace(tzinfo=None)
    _insert_at_0006(
        "event",
        id=event_id,
        organizer_id=organizer_id,
        title="Migrated",
        description="",
        venue_name="Salle",
        venue_address="",
        starts_at=now + dt.timedelta(days=3),
        ends_at=now + dt.timedelta(days=3, hours=2),
        timezone="Europe/Paris",
        mode="in_person",
        status="published",
        currency="EUR",
        ask_name=asks,
        ask_postcode=asks,
        created_at=now,
        updated_at=now,
    )
    return event_id


def _order(event_id: uuid.UUID, person_id, minutes: int) -> None:
    now = (utcnow() + dt.timedelta(minutes=minutes)).replace(tzinfo=None)
    _insert_at_0006(
        "orders",
        id=new_id(),
        code=f"AAAAA-AAAA{minutes}",
        access_token_hash=hash_token(str(minutes)),
        event_id=event_id,
        person_id=person_id,
        status="paid",
        locale="fr",
        currency="EUR",
        subtotal_cents=0,
        fee_cents=0,
        total_cents=0,
        provider="free",
        hold_expires_at=now,
        created_at=now,
        paid_at=now,
    )


def _organizer_at_0006() -> uuid.UUID:
    organizer_id = new_id()
    _insert_at_0006(
        "organizer",
        id=organizer_id,
        name="Salle",
        api_token_hash=hash_token("t"),
        created_at=utcnow().replace(tzinfo=None),
    )
    return organizer_id


def _person_at_0006(email, *, name, postcode):
    """A vault record as revision 0006 writes it (no ``kind`` column yet)."""
    person_id = new_id()
    data_key = new_data_key()
    master_key_id, wrapped = wrap_data_key(keyring(), person_id, data_key)
    now = utcnow().replace(tzinfo=None)
    person = sa.table(
        "person",
        sa.column("id", sa.Uuid()),
        *(sa.column(c) for c in ("email_index", "index_key_id", "email_ct", "name_ct", "postcode_ct", "created_at")),
    )
    data_key_table = sa.table(
        "data_key",
        sa.column("person_id", sa.Uuid()),
        *(sa.column(c) for c in ("master_key_id", "wrapped_key", "created_at")),
    )
    db.session.execute(
        person.insert().values(
            id=person_id,
            email_index=blind_index(keyring().blind_index_key, email),
            index_key_id=keyring().blind_index_key_id,
            email_ct=encrypt_field(data_key, person_id, "email", email),
            name_ct=encrypt_field(data_key, person_id, "name", name),
            postcode_ct=encrypt_field(data_key, person_id, "postcode", postcode),
            created_at=now,
        )
    )
    db.session.execute(
        data_key_table.insert().values(
            person_id=person_id, master_key_id=master_key_id, wrapped_key=wrapped, created_at=now
        )
    )
    db.session.commit()
    return person_id


def test_a_person_shared_by_orders_becomes_one_record_per_order(empty_database, tmp_path):
    app = make_app(tmp_path / "instance", empty_database)
    try:
        with app.app_context():
            upgrade(revision="0006_mail_queue")
            organizer_id = _organizer_at_0006()
            asks, silent = _event(organizer_id, asks=True), _event(organizer_id, asks=False)
            shared = _person_at_0006("Sh4red@Example.org", name="Sam", postcode="31000")
            for event_id, minutes in ((asks, 1), (silent, 2), (asks, 3)):
                _order(event_id, shared, minutes)
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
