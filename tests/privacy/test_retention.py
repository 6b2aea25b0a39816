"""Retention: ``flask purge-personal-data`` erases whoever only bought for events long over."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from tests.conftest import make_organizer, published_event
from tests.privacy.helpers import buy
from ticketing.catalog.models import Event
from ticketing.extensions import db, keyring
from ticketing.models import utcnow
from ticketing.privacy.models import ErasureReceipt
from ticketing.privacy.vault import find_person_id


def _end_event(app, event_id, days_ago: int, retention_days: int = 30) -> None:
    """Move an event into the past (orders can only be placed while it is on sale)."""
    with app.app_context():
        ends = utcnow() - dt.timedelta(days=days_ago)
        db.session.execute(
            sa.update(Event)
            .where(Event.id == event_id)
            .values(starts_at=ends - dt.timedelta(hours=2), ends_at=ends, retention_days=retention_days)
        )
        db.session.commit()


def _known(app, email) -> bool:
    with app.app_context():
        return find_person_id(db.session, keyring(), email) is not None


def test_purge_erases_past_retention_and_keeps_the_rest(app, client, runner):
    old, recent, future = published_event(app), published_event(app), published_event(app)
    buy(client, old, "gone@example.org")
    buy(client, recent, "recent@example.org")
    buy(client, old, "both@example.org")
    buy(client, future, "both@example.org")
    _end_event(app, old.id, days_ago=31)
    _end_event(app, recent.id, days_ago=29)

    result = runner.invoke(args=["purge-personal-data", "--batch-size", "2"])

    assert result.exit_code == 0, result.output
    assert "Erased 1 person(s) past retention; 2 kept." in result.output
    assert not _known(app, "gone@example.org")
    assert _known(app, "recent@example.org") and _known(app, "both@example.org")
    with app.app_context():
        assert db.session.execute(sa.select(ErasureReceipt.route)).scalars().all() == ["retention"]


def test_purge_is_idempotent(app, client, runner):
    old = published_event(app)
    buy(client, old, "gone@example.org")
    _end_event(app, old.id, days_ago=40)

    first = runner.invoke(args=["purge-personal-data"])
    second = runner.invoke(args=["purge-personal-data"])

    assert "Erased 1 person(s)" in first.output
    assert "Erased 0 person(s) past retention; 0 kept." in second.output


def test_a_shorter_retention_set_by_the_organiser_applies(app, client, runner):
    with app.app_context():
        organizer, token = make_organizer()
    event = published_event(app)
    with app.app_context():
        db.session.execute(sa.update(Event).where(Event.id == event.id).values(organizer_id=organizer.id))
        db.session.commit()
    buy(client, event, "short@example.org")
    _end_event(app, event.id, days_ago=3)

    patched = client.patch(
        f"/api/v1/events/{event.id}", json={"retention_days": 2}, headers={"Authorization": f"Bearer {token}"}
    )
    runner.invoke(args=["purge-personal-data"])

    assert patched.status_code == 200 and patched.get_json()["retention_days"] == 2
    assert not _known(app, "short@example.org")


def test_retention_cannot_exceed_the_configured_maximum(app, client):
    with app.app_context():
        _organizer, token = make_organizer()

    response = client.post(
        "/api/v1/events",
        json={
            "title": "Long",
            "starts_at": "2027-01-01T20:00",
            "ends_at": "2027-01-01T22:00",
            "retention_days": app.config["MAX_RETENTION_DAYS"] + 1,
        },
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 422
    assert "retention_days" in response.get_json()["errors"]


def test_new_events_keep_data_thirty_days_by_default(app, client):
    with app.app_context():
        _organizer, token = make_organizer()

    response = client.post(
        "/api/v1/events",
        json={"title": "Default", "starts_at": "2027-01-01T20:00", "ends_at": "2027-01-01T22:00"},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.get_json()["retention_days"] == 30


def test_purge_waits_for_a_returning_buyers_purchase_and_keeps_them(pg_app):
    """A buyer of a past event buys again while the purge runs: the new order must win.

    PostgreSQL only: SQLite runs one writer at a time, so the two cannot interleave there.
    """
    app, client = pg_app, pg_app.test_client()
    import threading

    from sqlalchemy.orm import Session

    from ticketing.checkout.models import Order
    from ticketing.crypto import hash_token
    from ticketing.models import begin_write, new_id
    from ticketing.privacy.links import person_links
    from ticketing.privacy.services import purge_expired_persons
    from ticketing.privacy.vault import store_person

    old, coming = published_event(app), published_event(app)
    buy(client, old, "returning@example.org")
    _end_event(app, old.id, days_ago=40)
    purge_done = threading.Event()

    with app.app_context():
        purchase = Session(db.engine)
        begin_write(purchase)
        person_id = store_person(purchase, keyring(), email="returning@example.org", now=utcnow())

        def purge() -> None:
            with app.app_context():
                list(purge_expired_persons(db.session, person_links(), now=utcnow()))
                db.session.remove()
            purge_done.set()

        worker = threading.Thread(target=purge)
        worker.start()
        with db.engine.connect() as watcher:
            waiting = sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            deadline = utcnow() + dt.timedelta(seconds=10)
            while watcher.execute(waiting).scalar_one() == 0 and utcnow() < deadline:
                assert not purge_done.wait(0.02), "the purge did not wait for the purchase"
                watcher.rollback()
        now = utcnow()
        purchase.add(
            Order(
                id=new_id(),
                code="ZZZZZ-ZZZZZ",
                access_token_hash=hash_token("t"),
                event_id=coming.id,
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
        )
        purchase.commit()
        purchase.close()
        worker.join(timeout=30)

    assert purge_done.is_set()
    assert _known(app, "returning@example.org")
