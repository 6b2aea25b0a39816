"""``/api/v1/checkin``: devices, scans, offline bundles and sync, stats, public keys."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from flask_babel import gettext as _

from ticketing.catalog.services import authenticate_organizer
from ticketing.checkin import devices, offline, scanning, statistics
from ticketing.checkin.models import Device
from ticketing.checkin.scanning import ScanAnswer
from ticketing.errors import Invalid
from ticketing.extensions import db, keyring, limiter
from ticketing.models import utcnow
from ticketing.tickets.services import published_keys_json, verification_keys
from ticketing.web import api_time, bearer_token, json_body

bp = Blueprint("checkin_api", __name__, url_prefix="/api/v1/checkin")


def device_json(device: Device) -> dict[str, Any]:
    return {
        "id": str(device.id),
        "name": device.name,
        "event_ids": list(device.event_ids),
        "state": device.state,
        "created_at": api_time(device.created_at),
        "paired_at": api_time(device.paired_at),
        "revoked_at": api_time(device.revoked_at),
    }


def answer_json(answer: ScanAnswer) -> dict[str, Any]:
    body: dict[str, Any] = {
        "result": answer.result,
        "ticket_id": str(answer.ticket_id) if answer.ticket_id else None,
        "ticket_type_id": str(answer.ticket_type_id) if answer.ticket_type_id else None,
        "ticket_type": answer.ticket_type,
    }
    if answer.result in ("admitted", "already_used"):
        body["checked_in_at"] = api_time(answer.checked_in_at)
        body["gate"] = answer.gate
    if answer.reason:
        body["reason"] = answer.reason
    return body


@bp.get("/keys")
def public_keys() -> Response:
    ring = keyring()
    keys = verification_keys(db.session, ring, utcnow())
    return jsonify(keys=published_keys_json(keys, ring.signing_key_id))


@bp.post("/devices")
def create_device() -> tuple[Response, int]:
    organizer = authenticate_organizer(db.session, bearer_token())
    name, event_ids = devices.parse_device_request(json_body())
    device, code = devices.create_device(db.session, organizer, name, event_ids, utcnow())
    body = device_json(device)
    body.update(pairing_code=code, pairing_expires_at=api_time(device.pairing_expires_at))
    return jsonify(body), 201


@bp.get("/devices")
def list_devices() -> Response:
    organizer = authenticate_organizer(db.session, bearer_token())
    return jsonify(devices=[device_json(d) for d in devices.list_devices(db.session, organizer)])


@bp.delete("/devices/<device_id>")
def revoke_device(device_id: str) -> Response:
    organizer = authenticate_organizer(db.session, bearer_token())
    return jsonify(device_json(devices.revoke_device(db.session, organizer, device_id, utcnow())))


@bp.post("/devices/pair")
@limiter.limit("10 per minute")
def pair_device() -> Response:
    payload = json_body()
    code = payload.get("pairing_code") if isinstance(payload, dict) else None
    if not isinstance(code, str) or not code.strip() or len(code) > 40:
        raise Invalid(
            _("Send the pairing code shown to the organiser."),
            errors={"pairing_code": _("This field is required.")},
        )
    device, token = devices.pair_device(db.session, code, utcnow())
    return jsonify(device_token=token, device=device_json(device))


@bp.get("/device")
def current_device() -> Response:
    device = devices.authenticate_device(db.session, bearer_token())
    events = devices.device_events(db.session, device)
    body = device_json(device)
    body["events"] = [
        {"id": str(e.id), "title": e.title, "starts_at": api_time(e.starts_at), "ends_at": api_time(e.ends_at)}
        for e in events
    ]
    return jsonify(body)


@bp.post("")
def check_in() -> Response:
    scan = scanning.parse_scan(json_body())
    answer = scanning.check_in(
        db.session,
        keyring(),
        bearer_token(),
        scan["code"],
        gate=scan["gate"],
        request_id=scan["request_id"],
        now=utcnow(),
    )
    return jsonify(answer_json(answer))


@bp.post("/sync")
def sync() -> Response:
    scans = offline.parse_sync(json_body())
    results = offline.sync_offline_scans(db.session, keyring(), bearer_token(), scans, utcnow())
    body = []
    for scan, answer in results:
        item = answer_json(answer)
        item["request_id"] = scan["request_id"]
        item["scanned_at"] = api_time(scan["scanned_at"])
        item["duplicate"] = answer.result == "already_used"
        body.append(item)
    return jsonify(
        results=body,
        admitted=sum(1 for _s, a in results if a.is_admitted),
        duplicates=sum(1 for item in body if item["duplicate"]),
    )


@bp.get("/events/<event_id>/bundle")
def bundle(event_id: str) -> Response:
    ring = keyring()
    now = utcnow()
    device = devices.authenticate_device(db.session, bearer_token())
    found = offline.event_bundle(db.session, ring, device, event_id, now)
    event = found["event"]
    response = jsonify(
        generated_at=api_time(now),
        event={
            "id": str(event.id),
            "title": event.title,
            "starts_at": api_time(event.starts_at),
            "ends_at": api_time(event.ends_at),
            "doors_at": api_time(event.doors_at),
        },
        keys=published_keys_json(found["keys"], ring.signing_key_id),
        ticket_types=[{"id": str(t.id), "name": t.name, "grants_entry": t.grants_entry} for t in event.ticket_types],
        voided=found["voided"],
        admitted=found["admitted"],
        expected=found["expected"],
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/events/<event_id>/stats")
def stats(event_id: str) -> Response:
    event = statistics.authorise_stats(db.session, bearer_token(), event_id)
    return jsonify(statistics.event_stats(db.session, event))
