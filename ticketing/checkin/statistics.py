"""What an event's doors have done: admitted and expected per ticket type and gate."""

from __future__ import annotations

import uuid
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ticketing.catalog.models import Event, Organizer
from ticketing.checkin.devices import device_event
from ticketing.checkin.models import Device, Scan
from ticketing.checkout.models import Order, Ticket
from ticketing.crypto import hash_token
from ticketing.errors import NotFound, Unauthorized


def expected_admissions(session: Session, event_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """Valid tickets of paid orders, per ticket type: who may still come in."""
    rows = session.execute(
        select(Ticket.ticket_type_id, func.count())
        .join(Order, Order.id == Ticket.order_id)
        .where(Ticket.event_id == event_id, Ticket.status == "valid", Order.status == "paid")
        .group_by(Ticket.ticket_type_id)
    )
    return {type_id: count for type_id, count in rows}


def authorise_stats(session: Session, token: str | None, event_id: str) -> Event:
    """Stats are for the event's organiser, or a device paired for it."""
    try:
        wanted = uuid.UUID(event_id)
    except ValueError:
        raise NotFound(_("No such event.")) from None
    if not token:
        raise Unauthorized(_("Send an organiser or device token as 'Authorization: Bearer <token>'."))
    hashed = hash_token(token)
    device = session.execute(select(Device).where(Device.token_hash == hashed)).scalar()
    if device is not None and device.revoked_at is None:
        return device_event(session, device, event_id)
    event = session.execute(
        select(Event)
        .join(Organizer, Organizer.id == Event.organizer_id)
        .where(Event.id == wanted, Organizer.api_token_hash == hashed)
    ).scalar()
    if event is None:
        organizer = session.execute(select(Organizer.id).where(Organizer.api_token_hash == hashed)).scalar()
        if organizer is None:
            raise Unauthorized(_("This token is not valid."), code="invalid_token")
        raise NotFound(_("No such event (or not yours)."))
    return event


def event_stats(session: Session, event: Event) -> dict[str, Any]:
    expected = expected_admissions(session, event.id)
    admitted_by_type = dict(
        session.execute(
            select(Ticket.ticket_type_id, func.count())
            .where(Ticket.event_id == event.id, Ticket.checked_in_at.is_not(None))
            .group_by(Ticket.ticket_type_id)
        ).all()
    )
    by_gate = session.execute(
        select(Scan.gate, func.count())
        .where(Scan.event_id == event.id, Scan.result == "admitted")
        .group_by(Scan.gate)
        .order_by(Scan.gate)
    ).all()
    results = dict(
        session.execute(select(Scan.result, func.count()).where(Scan.event_id == event.id).group_by(Scan.result)).all()
    )
    return {
        "event_id": str(event.id),
        "admitted": sum(admitted_by_type.values()),
        "expected": sum(expected.values()),
        "by_ticket_type": [
            {
                "ticket_type_id": str(t.id),
                "name": t.name,
                "admitted": admitted_by_type.get(t.id, 0),
                "expected": expected.get(t.id, 0),
            }
            for t in event.ticket_types
        ],
        "by_gate": [{"gate": gate, "admitted": count} for gate, count in by_gate],
        "scans": results,
    }
