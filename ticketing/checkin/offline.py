"""Doors without network: the bundle they decide with, and the upload of what they decided."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ticketing.checkin.devices import authenticate_device, device_event
from ticketing.checkin.models import Device
from ticketing.checkin.scanning import ScanAnswer, check_in
from ticketing.checkin.statistics import expected_admissions
from ticketing.checkout.models import Order, Ticket
from ticketing.crypto import KeyRing
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
