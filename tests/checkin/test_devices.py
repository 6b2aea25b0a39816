"""Pairing door devices: one-time codes, hashed tokens, revocation."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import pytest
import sqlalchemy as sa

from tests.conftest import make_event, make_organizer
from ticketing.catalog.services import authenticate_organizer
from ticketing.checkin.devices import create_device, pair_device
from ticketing.checkin.models import Device
from ticketing.errors import Unauthorized
from ticketing.extensions import db
from ticketing.models import utcnow


def organiser_with_event(app):
    with app.app_context():
        organizer, token = make_organizer()
        event = make_event(organizer=organizer)
        return token, str(event.id)


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def create(client, token, event_ids, name="Door A"):
    return client.post("/api/v1/checkin/devices", json={"name": name, "event_ids": event_ids}, headers=auth(token))


def test_pairing_code_gives_a_device_token_once(app, client):
    token, event_id = organiser_with_event(app)
    created = create(client, token, [event_id]).get_json()

    first = client.post("/api/v1/checkin/devices/pair", json={"pairing_code": created["pairing_code"].lower()})
    second = client.post("/api/v1/checkin/devices/pair", json={"pairing_code": created["pairing_code"]})

    assert first.status_code == 200
    device_token = first.get_json()["device_token"]
    assert second.status_code == 401
    me = client.get("/api/v1/checkin/device", headers=auth(device_token)).get_json()
    assert me["events"][0]["id"] == event_id
    assert me["state"] == "paired"


def test_only_hashes_of_device_secrets_are_stored(app, client):
    token, event_id = organiser_with_event(app)
    created = create(client, token, [event_id]).get_json()
    device_token = client.post(
        "/api/v1/checkin/devices/pair", json={"pairing_code": created["pairing_code"]}
    ).get_json()["device_token"]

    with app.app_context():
        rows = db.session.execute(sa.select(Device)).scalars().all()
        stored = " ".join(str(getattr(d, c)) for d in rows for c in [col.key for col in Device.__table__.columns])

    assert device_token not in stored
    assert created["pairing_code"] not in stored


def test_expired_pairing_code_is_refused(app):
    token, event_id = organiser_with_event(app)
    with app.app_context():
        organizer = authenticate_organizer(db.session, token)
        _device, code = create_device(db.session, organizer, "Door", [uuid.UUID(event_id)], utcnow())

        with pytest.raises(Unauthorized):
            pair_device(db.session, code, utcnow() + dt.timedelta(minutes=16))


def test_revoked_device_token_stops_working(app, client):
    token, event_id = organiser_with_event(app)
    created = create(client, token, [event_id]).get_json()
    device_token = client.post(
        "/api/v1/checkin/devices/pair", json={"pairing_code": created["pairing_code"]}
    ).get_json()["device_token"]

    revoked = client.delete(f"/api/v1/checkin/devices/{created['id']}", headers=auth(token))
    after = client.get("/api/v1/checkin/device", headers=auth(device_token))

    assert revoked.status_code == 200 and revoked.get_json()["state"] == "revoked"
    assert after.status_code == 401
    listed = client.get("/api/v1/checkin/devices", headers=auth(token)).get_json()["devices"]
    assert [d["state"] for d in listed] == ["revoked"]


def test_device_for_someone_elses_event_is_refused(app, client):
    _token, event_id = organiser_with_event(app)
    with app.app_context():
        _other, other_token = make_organizer("Other")

    response = create(client, other_token, [event_id])

    assert response.status_code == 404


@pytest.mark.parametrize(
    "body",
    [{}, {"name": "A"}, {"name": "A", "event_ids": []}, {"name": "A", "event_ids": ["x"]}, {"event_ids": []}, []],
)
def test_bad_device_request_is_422(app, client, body):
    token, _event_id = organiser_with_event(app)

    response = client.post("/api/v1/checkin/devices", json=body, headers=auth(token))

    assert response.status_code == 422


def test_device_creation_needs_the_organiser_token(app, client):
    _token, event_id = organiser_with_event(app)

    assert create(client, "bad", [event_id]).status_code == 401
    assert client.post("/api/v1/checkin/devices/pair", json={"pairing_code": ""}).status_code == 422


def test_no_device_token_or_pairing_code_reaches_the_logs(app, client, caplog):
    token, event_id = organiser_with_event(app)
    caplog.set_level(logging.DEBUG)

    created = create(client, token, [event_id]).get_json()
    paired = client.post("/api/v1/checkin/devices/pair", json={"pairing_code": created["pairing_code"]}).get_json()
    client.get("/api/v1/checkin/device", headers=auth(paired["device_token"]))
    client.post("/api/v1/checkin", json={"code": "NOPE"}, headers=auth(paired["device_token"]))

    logged = caplog.text
    assert paired["device_token"] not in logged
    assert created["pairing_code"] not in logged


def test_demo_pairs_a_door_device_and_prints_how_to_open_the_scanner(app, client, runner):
    result = runner.invoke(args=["demo", "--no-serve"])

    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if "/door#token=" in line]
    device_token = line.split("#token=", 1)[1].strip()
    me = client.get("/api/v1/checkin/device", headers=auth(device_token))
    assert me.status_code == 200
    assert [e["title"] for e in me.get_json()["events"]] == ["Les Ondes du Canal — concert"]
