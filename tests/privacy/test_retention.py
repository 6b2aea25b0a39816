"""Retention: ``flask purge-personal-data`` erases whoever only bought for events long over."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from tests.conftest import make_organizer, published_event
from tests.privacy.helpers import buy, export_by_api, held_records
from ticketing.catalog.models import Event
from ticketing.extensions import db
from ticketing.models import utcnow
from ticketing.privacy.models import ErasureReceipt


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
    return bool(held_records(app, email))


def test_purge_erases_past_retention_and_keeps_the_rest(app, client, runner):
    old, recent, future = published_event(app), published_event(app), published_event(app)
    buy(client, old, "gone@example.org")
    buy(client, recent, "recent@example.org")
    buy(client, old, "both@example.org")
    buy(client, future, "both@example.org")
    _end_event(app, old.id, days_ago=31)
    _end_event(app, recent.id, days_ago=29)
    [old_record, future_record] = held_records(app, "both@example.org")

    result = runner.invoke(args=["purge-personal-data", "--batch-size", "2"])

    assert result.exit_code == 0, result.output
    assert "Erased 2 person(s) past retention; 2 kept." in result.output
    assert not _known(app, "gone@example.org")
    assert _known(app, "recent@example.org")
    # What was given for the past event goes; what was given for the coming one stays.
    assert held_records(app, "both@example.org") == [future_record] != [old_record]
    with app.app_context():
        assert db.session.execute(sa.select(ErasureReceipt.route)).scalars().all() == ["retention", "retention"]


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


def test_a_returning_buyers_new_order_outlives_the_purge_of_their_old_one(app, client, runner):
    """Each order has its own record, so the purge of a past order's record can never catch
    a new purchase by the same address, however the two interleave."""
    old, coming = published_event(app), published_event(app)
    buy(client, old, "returning@example.org")
    _end_event(app, old.id, days_ago=40)
    [old_record] = held_records(app, "returning@example.org")
    buy(client, coming, "returning@example.org")

    result = runner.invoke(args=["purge-personal-data"])

    assert "Erased 1 person(s)" in result.output
    [kept] = held_records(app, "returning@example.org")
    assert kept != old_record


def test_an_event_dated_past_the_calendars_end_is_skipped_and_reported_not_fatal(app, client, runner):
    old, far = published_event(app), published_event(app)
    buy(client, old, "gone@example.org")
    far_order = buy(client, far, "far@example.org")
    _end_event(app, old.id, days_ago=40)
    with app.app_context():
        end = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
        db.session.execute(
            sa.update(Event).where(Event.id == far.id).values(starts_at=end - dt.timedelta(hours=2), ends_at=end)
        )
        db.session.commit()
    [far_record] = held_records(app, "far@example.org")

    result = runner.invoke(args=["purge-personal-data"])

    assert result.exit_code == 0, result.output
    assert "Erased 1 person(s)" in result.output
    assert "1 person(s) kept because their event's retention date is out of range" in result.output
    assert str(far_record) in result.output
    assert not _known(app, "gone@example.org") and _known(app, "far@example.org")
    export = export_by_api(client, far_order)
    assert export.status_code == 200 and export.get_json()["retention"]["erased_automatically_after"] is None
