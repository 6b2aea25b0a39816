"""The offline bundle and the upload of scans decided offline."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from tests.checkin.factories import codes, make_device, make_tickets
from tests.conftest import make_event, make_organizer
from ticketing.checkin.models import Scan
from ticketing.checkout.models import Ticket
from ticketing.extensions import db


def two_doors(app, count=3):
    with app.app_context():
        organizer, _token = make_organizer()
        event = make_event(organizer=organizer, capacity=100)
        tickets = make_tickets(event, count)
        return {
            "event_id": str(event.id),
            "codes": codes(tickets),
            "ids": [str(t.id) for t in tickets],
            "a": make_device(organizer, [event], "Door A"),
            "b": make_device(organizer, [event], "Door B"),
        }


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def offline_scan(code, request_id, minutes_ago, gate=None):
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    return {"code": code, "request_id": request_id, "scanned_at": at.isoformat(), "gate": gate}


def test_bundle_has_keys_types_voided_and_admitted(app, client):
    doors = two_doors(app)
    client.post("/api/v1/checkin", json={"code": doors["codes"][0]}, headers=auth(doors["a"]))
    with app.app_context():
        db.session.execute(sa.update(Ticket).where(Ticket.id == uuid.UUID(doors["ids"][1])).values(status="voided"))
        db.session.commit()

    response = client.get(f"/api/v1/checkin/events/{doors['event_id']}/bundle", headers=auth(doors["a"]))

    body = response.get_json()
    assert response.status_code == 200
    assert body["event"]["id"] == doors["event_id"]
    assert body["keys"][0]["algorithm"] == "Ed25519"
    assert [t["name"] for t in body["ticket_types"]] == ["Standard"]
    assert body["admitted"] == [doors["ids"][0]]
    assert body["voided"] == [doors["ids"][1]]
    assert body["expected"] == 2


def test_bundle_of_an_event_the_device_is_not_paired_for_is_403(app, client):
    doors = two_doors(app)
    with app.app_context():
        other = make_event()

    response = client.get(f"/api/v1/checkin/events/{other.id}/bundle", headers=auth(doors["a"]))

    assert response.status_code == 403


def test_offline_duplicates_across_doors_resolve_first_scan_wins(app, client):
    doors = two_doors(app)
    code = doors["codes"][0]

    from_a = client.post(
        "/api/v1/checkin/sync", json={"scans": [offline_scan(code, "a-1", 5, "North")]}, headers=auth(doors["a"])
    ).get_json()
    from_b = client.post(
        "/api/v1/checkin/sync",
        json={"scans": [offline_scan(code, "b-1", 3, "South"), offline_scan(doors["codes"][1], "b-2", 2)]},
        headers=auth(doors["b"]),
    ).get_json()

    assert from_a["admitted"] == 1 and from_a["duplicates"] == 0
    assert [(r["request_id"], r["result"], r["duplicate"]) for r in from_b["results"]] == [
        ("b-1", "already_used", True),
        ("b-2", "admitted", False),
    ]
    assert from_b["results"][0]["gate"] == "North"
    with app.app_context():
        offline = db.session.execute(sa.select(sa.func.count()).where(Scan.offline.is_(True))).scalar()
    assert offline == 3


def test_uploading_the_same_offline_scans_twice_changes_nothing(app, client):
    doors = two_doors(app)
    scans = {"scans": [offline_scan(doors["codes"][0], "a-1", 5)]}

    first = client.post("/api/v1/checkin/sync", json=scans, headers=auth(doors["a"])).get_json()
    again = client.post("/api/v1/checkin/sync", json=scans, headers=auth(doors["a"])).get_json()

    assert first["results"][0]["result"] == again["results"][0]["result"] == "admitted"
    with app.app_context():
        assert db.session.execute(sa.select(sa.func.count()).select_from(Scan)).scalar() == 1


def test_bad_sync_body_is_422(app, client):
    doors = two_doors(app)

    no_list = client.post("/api/v1/checkin/sync", json={"scans": "x"}, headers=auth(doors["a"]))
    no_time = client.post(
        "/api/v1/checkin/sync", json={"scans": [{"code": "X", "request_id": "r"}]}, headers=auth(doors["a"])
    )

    assert no_list.status_code == 422
    assert no_time.status_code == 422
    assert "scans[0].scanned_at" in no_time.get_json()["errors"]
