"""``/api/v1/checkin``: devices, scans, offline bundles and sync, stats, public keys."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response

from ticketing.catalog.services import authenticate_organizer
from ticketing.checkin import devices, offline, scanning, statistics
from ticketing.checkin.models import Device
from ticketing.checkin.scanning import ScanAnswer
from ticketing.checkin.schemas import (
    BUNDLE,
    CREATED_DEVICE,
    CURRENT_DEVICE,
    DEVICE,
    DEVICES,
    NEW_DEVICE,
    PAIRED_DEVICE,
    PAIRING,
    PUBLIC_KEYS,
    SCAN,
    SCAN_ANSWER,
    STATS,
    SYNC,
    SYNC_ANSWER,
)
from ticketing.extensions import db, keyring, limiter
from ticketing.models import utcnow
from ticketing.openapi import operation
from ticketing.schema import load, respond
from ticketing.tickets.services import published_keys_json, verification_keys
from ticketing.web import bearer_token

bp = Blueprint("checkin_api", __name__, url_prefix="/api/v1/checkin")
ORGANIZER = ("organizerToken",)
DEVICE_TOKEN = ("deviceToken",)
NOT_PAIRED = "`not_paired_for_event`: this device is not paired for this event"


def device_json(device: Device) -> dict[str, Any]:
    return {
        "id": device.id,
        "name": device.name,
        "event_ids": list(device.event_ids),
        "state": device.state,
        "created_at": device.created_at,
        "paired_at": device.paired_at,
        "revoked_at": device.revoked_at,
    }


def answer_json(answer: ScanAnswer) -> dict[str, Any]:
    body: dict[str, Any] = {
        "result": answer.result,
        "ticket_id": answer.ticket_id,
        "ticket_type_id": answer.ticket_type_id,
        "ticket_type": answer.ticket_type,
    }
    if answer.result in ("admitted", "already_used"):
        body["checked_in_at"] = answer.checked_in_at
        body["gate"] = answer.gate
    if answer.reason:
        body["reason"] = answer.reason
    return body


def _device_refused(token: str | None) -> Any:
    """A request with a refused body is still told first that its device token is wrong."""
    return lambda: devices.authenticate_device(db.session, token)


@bp.get("/keys")
@operation(
    "Public keys that verify ticket QR codes: the current one and the retired ones still accepted",
    answers={200: (PUBLIC_KEYS, "Keys")},
)
def public_keys() -> Response:
    ring = keyring()
    keys = verification_keys(db.session, ring, utcnow())
    return respond(PUBLIC_KEYS, {"keys": published_keys_json(keys, ring.signing_key_id)})


@bp.post("/devices")
@operation(
    "Create a door device for some events; answers a one-time pairing code",
    body=NEW_DEVICE,
    answers={201: (CREATED_DEVICE, "The device, with its pairing code")},
    problems={404: "No such event (or not yours)"},
    security=ORGANIZER,
)
def create_device() -> Response:
    organizer = authenticate_organizer(db.session, bearer_token())
    body = load(NEW_DEVICE)
    device, code = devices.create_device(db.session, organizer, body["name"], body["event_ids"], utcnow())
    answer = device_json(device)
    answer.update(pairing_code=code, pairing_expires_at=device.pairing_expires_at)
    return respond(CREATED_DEVICE, answer, 201)


@bp.get("/devices")
@operation("The organiser's door devices", answers={200: (DEVICES, "Devices")}, security=ORGANIZER)
def list_devices() -> Response:
    organizer = authenticate_organizer(db.session, bearer_token())
    return respond(DEVICES, {"devices": [device_json(d) for d in devices.list_devices(db.session, organizer)]})


# A UUID converter: "/devices/pair" must not match this rule too (it would answer DELETE
# there, and list DELETE among the methods of the pairing path).
@bp.delete("/devices/<uuid:device_id>")
@operation(
    "Revoke a device: its token stops working at once",
    answers={200: (DEVICE, "The revoked device")},
    problems={404: "No such device (or not yours)"},
    security=ORGANIZER,
)
def revoke_device(device_id: uuid.UUID) -> Response:
    organizer = authenticate_organizer(db.session, bearer_token())
    return respond(DEVICE, device_json(devices.revoke_device(db.session, organizer, str(device_id), utcnow())))


@bp.post("/devices/pair")
@limiter.limit("10 per minute")
@operation(
    "Exchange a pairing code (once) for a device token",
    body=PAIRING,
    answers={200: (PAIRED_DEVICE, "The device token and the device")},
    problems={401: "Unknown, used or expired pairing code"},
    rate_limited=True,
)
def pair_device() -> Response:
    body = load(PAIRING)
    device, token = devices.pair_device(db.session, body["pairing_code"], utcnow())
    return respond(PAIRED_DEVICE, {"device_token": token, "device": device_json(device)})


@bp.get("/device")
@operation("The calling device and its events", answers={200: (CURRENT_DEVICE, "The device")}, security=DEVICE_TOKEN)
def current_device() -> Response:
    device = devices.authenticate_device(db.session, bearer_token())
    events = devices.device_events(db.session, device)
    body = device_json(device)
    body["events"] = events
    return respond(CURRENT_DEVICE, body)


@bp.post("")
@operation(
    "Scan a ticket: the first scan wins; a retried request_id gets the same answer",
    body=SCAN,
    answers={200: (SCAN_ANSWER, "The answer for the door")},
    security=DEVICE_TOKEN,
)
def check_in() -> Response:
    token = bearer_token()
    scan = load(SCAN, before_refusing=_device_refused(token))
    answer = scanning.check_in(
        db.session,
        keyring(),
        token,
        scan["code"],
        gate=scan["gate"],
        request_id=scan["request_id"],
        now=utcnow(),
    )
    return respond(SCAN_ANSWER, answer_json(answer))


@bp.post("/sync")
@operation(
    "Upload scans decided offline, oldest first; a ticket another door admitted first comes back already_used",
    body=SYNC,
    answers={200: (SYNC_ANSWER, "One result per scan")},
    security=DEVICE_TOKEN,
)
def sync() -> Response:
    token = bearer_token()
    scans = load(SYNC, before_refusing=_device_refused(token))["scans"]
    results = offline.sync_offline_scans(db.session, keyring(), token, scans, utcnow())
    body = []
    for scan, answer in results:
        item = answer_json(answer)
        item["request_id"] = scan["request_id"]
        item["scanned_at"] = scan["scanned_at"]
        item["duplicate"] = answer.result == "already_used"
        body.append(item)
    return respond(
        SYNC_ANSWER,
        {
            "results": body,
            "admitted": sum(1 for _s, a in results if a.is_admitted),
            "duplicates": sum(1 for item in body if item["duplicate"]),
        },
    )


@bp.get("/events/<event_id>/bundle")
@operation(
    "What a device needs offline: keys, the event's window, ticket types, voided and admitted tickets",
    answers={200: (BUNDLE, "The bundle")},
    problems={403: NOT_PAIRED, 404: "No such event"},
    security=DEVICE_TOKEN,
)
def bundle(event_id: str) -> Response:
    ring = keyring()
    now = utcnow()
    device = devices.authenticate_device(db.session, bearer_token())
    found = offline.event_bundle(db.session, ring, device, event_id, now)
    event = found["event"]
    response = respond(
        BUNDLE,
        {
            "generated_at": now,
            "event": event,
            "keys": published_keys_json(found["keys"], ring.signing_key_id),
            "ticket_types": event.ticket_types,
            "voided": found["voided"],
            "admitted": found["admitted"],
            "expected": found["expected"],
        },
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/events/<event_id>/stats")
@operation(
    "Admitted counts per ticket type and per gate (the organiser's token or a paired device's)",
    answers={200: (STATS, "Stats")},
    problems={
        403: "`not_paired_for_event`: this device is not paired for this event",
        404: "No such event (or not yours)",
    },
    security=("organizerToken", "deviceToken"),
)
def stats(event_id: str) -> Response:
    event = statistics.authorise_stats(db.session, bearer_token(), event_id)
    return respond(STATS, statistics.event_stats(db.session, event))
