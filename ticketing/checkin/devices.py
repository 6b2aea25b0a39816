"""Door devices: created by an organiser for some events, paired once with a code read
aloud at the door, then known by the hash of their token until revoked."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ticketing.catalog.models import Event, Organizer
from ticketing.checkin.models import Device
from ticketing.crypto import hash_token, new_token
from ticketing.errors import Forbidden, Invalid, NotFound, Unauthorized
from ticketing.forms import FieldParser
from ticketing.models import begin_write

PAIRING_MINUTES = 15
PAIRING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a door
PAIRING_LENGTH = 12
MAX_DEVICE_EVENTS = 20


def _pairing_code() -> str:
    raw = "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(PAIRING_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, PAIRING_LENGTH, 4))


def _normalise_pairing_code(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


def parse_device_request(payload: Any) -> tuple[str, list[uuid.UUID]]:
    if not isinstance(payload, Mapping):
        raise Invalid(_("The body must be a JSON object."), errors={"": _("The body must be a JSON object.")})
    fields = FieldParser(payload)
    name = fields.text("name", required=True, max_length=100)
    raw_ids = payload.get("event_ids")
    event_ids: list[uuid.UUID] = []
    if not isinstance(raw_ids, list) or not raw_ids or len(raw_ids) > MAX_DEVICE_EVENTS:
        fields.fail("event_ids", _("Give a list of 1 to %(max)d event ids.", max=MAX_DEVICE_EVENTS))
    else:
        for raw in raw_ids:
            try:
                event_ids.append(uuid.UUID(str(raw)))
            except ValueError:
                fields.fail("event_ids", _("Each event id must be a UUID."))
                break
    fields.finish()
    return name or "", list(dict.fromkeys(event_ids))


def create_device(
    session: Session, organizer: Organizer, name: str, event_ids: Sequence[uuid.UUID], now: dt.datetime
) -> tuple[Device, str]:
    """A device waiting for pairing, and its one-time pairing code (shown once)."""
    begin_write(session)
    owned = set(
        session.execute(select(Event.id).where(Event.id.in_(event_ids), Event.organizer_id == organizer.id)).scalars()
    )
    if owned != set(event_ids):
        session.rollback()
        raise NotFound(_("No such event (or not yours)."))
    code = _pairing_code()
    device = Device(
        organizer_id=organizer.id,
        name=name,
        event_ids=[str(e) for e in event_ids],
        pairing_code_hash=hash_token(_normalise_pairing_code(code)),
        pairing_expires_at=now + dt.timedelta(minutes=PAIRING_MINUTES),
        created_at=now,
    )
    session.add(device)
    session.commit()
    return device, code


def pair_device(session: Session, code: str, now: dt.datetime) -> tuple[Device, str]:
    """Exchange a pairing code for a device token. The code works once: a conditional
    UPDATE clears it, so two devices racing with one code cannot both get a token."""
    token = new_token()
    begin_write(session)
    claimed = session.execute(
        update(Device)
        .where(
            Device.pairing_code_hash == hash_token(_normalise_pairing_code(code)),
            Device.pairing_expires_at > now,
            Device.revoked_at.is_(None),
        )
        .values(pairing_code_hash=None, pairing_expires_at=None, token_hash=hash_token(token), paired_at=now)
        .returning(Device.id)
    ).scalar()
    if claimed is None:
        session.rollback()
        raise Unauthorized(_("This pairing code is unknown, used or expired."), code="invalid_pairing_code")
    session.commit()
    device = session.get(Device, claimed, populate_existing=True)
    assert device is not None
    return device, token


def reissue_device_token(session: Session, device: Device, now: dt.datetime) -> str:
    """A new token for a device (the demo's scanner); the old token stops working."""
    token = new_token()
    begin_write(session)
    session.execute(
        update(Device)
        .where(Device.id == device.id)
        .values(token_hash=hash_token(token), paired_at=now, revoked_at=None, pairing_code_hash=None)
    )
    session.commit()
    return token


def list_devices(session: Session, organizer: Organizer) -> list[Device]:
    return list(
        session.execute(select(Device).where(Device.organizer_id == organizer.id).order_by(Device.created_at)).scalars()
    )


def revoke_device(session: Session, organizer: Organizer, device_id: str, now: dt.datetime) -> Device:
    try:
        wanted = uuid.UUID(device_id)
    except ValueError:
        raise NotFound(_("No such device.")) from None
    begin_write(session)
    device = session.execute(select(Device).where(Device.id == wanted, Device.organizer_id == organizer.id)).scalar()
    if device is None:
        session.rollback()
        raise NotFound(_("No such device."))
    if device.revoked_at is None:
        device.revoked_at = now
        device.token_hash = None
        device.pairing_code_hash = None
    session.commit()
    return device


def authenticate_device(session: Session, token: str | None) -> Device:
    if not token:
        raise Unauthorized(_("Send the device token as 'Authorization: Bearer <token>'."))
    device = session.execute(select(Device).where(Device.token_hash == hash_token(token))).scalar()
    if device is None or device.revoked_at is not None:
        raise Unauthorized(_("This device token is not valid (revoked or never paired)."), code="invalid_token")
    return device


def device_events(session: Session, device: Device) -> list[Event]:
    ids = [uuid.UUID(e) for e in device.event_ids]
    return list(session.execute(select(Event).where(Event.id.in_(ids)).order_by(Event.starts_at)).scalars())


def device_event(session: Session, device: Device, event_id: str) -> Event:
    if event_id not in device.event_ids:
        raise Forbidden(_("This device is not paired for this event."), code="not_paired_for_event")
    event = session.get(Event, uuid.UUID(event_id))
    if event is None:
        raise NotFound(_("No such event."))
    return event
