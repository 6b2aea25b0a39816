"""Doors without network: the bundle they decide with, and the upload of what they decided."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from ticketing.checkin.devices import authenticate_device, device_event
from ticketing.checkin.models import Device
from ticketing.checkin.scanning import ScanAnswer, check_in, parse_scan
from ticketing.checkin.statistics import expected_admissions
from ticketing.checkout.models import Order, Ticket
from ticketing.crypto import KeyRing
from ticketing.errors import Invalid
from ticketing.tickets.services import verification_keys

MAX_SYNC_SCANS = 500


def event_bundle(session: Session, keyring: KeyRing, device: Device, event_id: str, now: dt.datetime) -> dict[str, Any]:
    """What a door needs to decide alone while the network is down."""
    event = device_event(session, device, event_id)
    refused = session.execute(
        select(Ticket.id)
        .join(Order, Order.id == Ticket.order_id)
        .where(Ticket.event_id == event.id, (Ticket.status != "valid") | (Order.status != "paid"))
    ).scalars()
    admitted = session.execute(
        select(Ticket.id).where(Ticket.event_id == event.id, Ticket.checked_in_at.is_not(None))
    ).scalars()
    expected = expected_admissions(session, event.id)
    return {
        "event": event,
        "keys": verification_keys(session, keyring, now),
        "voided": [str(t) for t in refused],
        "admitted": [str(t) for t in admitted],
        "expected": sum(expected.values()),
    }


def parse_sync(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, Mapping) or not isinstance(payload.get("scans"), list):
        raise Invalid(_('Send {"scans": [...]}.'), errors={"scans": _("Must be a list of scans.")})
    scans = payload["scans"]
    if len(scans) > MAX_SYNC_SCANS:
        raise Invalid(
            _("Send at most %(max)d scans at once.", max=MAX_SYNC_SCANS),
            errors={"scans": _("Send at most %(max)d scans at once.", max=MAX_SYNC_SCANS)},
        )
    parsed = []
    for index, scan in enumerate(scans):
        try:
            parsed.append(parse_scan(scan, offline=True))
        except Invalid as error:
            raise Invalid(error.message, errors={f"scans[{index}].{k}": v for k, v in error.errors.items()}) from None
    return parsed


def sync_offline_scans(
    session: Session,
    keyring: KeyRing,
    device_token: str | None,
    scans: Sequence[Mapping[str, Any]],
    now: dt.datetime,
) -> list[tuple[Mapping[str, Any], ScanAnswer]]:
    """Upload scans decided offline, oldest first. Each is checked in like an online scan,
    so a ticket two offline doors both let in is admitted once (whichever reached the
    server first) and the other comes back as ``already_used``: a duplicate to report."""
    authenticate_device(session, device_token)
    session.rollback()
    ordered = sorted(scans, key=lambda s: s["scanned_at"])
    return [
        (
            scan,
            check_in(
                session,
                keyring,
                device_token,
                scan["code"],
                gate=scan["gate"],
                request_id=scan["request_id"],
                now=now,
                offline=True,
                scanned_at=scan["scanned_at"],
            ),
        )
        for scan in ordered
    ]
