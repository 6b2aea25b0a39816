"""Paid tickets and paired devices for check-in tests (call inside an app context)."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

from ticketing.catalog.models import Event, Organizer
from ticketing.checkin.devices import create_device, pair_device
from ticketing.checkout.models import Order, Ticket
from ticketing.crypto import hash_token
from ticketing.extensions import db, keyring
from ticketing.models import utcnow
from ticketing.tickets.services import ticket_code


def make_tickets(event: Event, count: int, *, order_status: str = "paid", type_index: int = 0) -> list[Ticket]:
    """One order of ``count`` tickets of the event's ``type_index``-th ticket type."""
    now = utcnow()
    ticket_type = event.ticket_types[type_index]
    order = Order(
        code=secrets.token_hex(5).upper(),
        access_token_hash=hash_token(secrets.token_urlsafe(16)),
        event_id=event.id,
        status=order_status,
        currency=event.currency,
        subtotal_cents=0,
        fee_cents=0,
        total_cents=0,
        provider="demo",
        hold_expires_at=now + dt.timedelta(minutes=10),
        paid_at=now if order_status == "paid" else None,
    )
    db.session.add(order)
    db.session.flush()
    tickets = [
        Ticket(id=uuid.uuid4(), order_id=order.id, event_id=event.id, ticket_type_id=ticket_type.id, created_at=now)
        for _ in range(count)
    ]
    db.session.add_all(tickets)
    db.session.commit()
    return tickets


def codes(tickets: list[Ticket]) -> list[str]:
    ring = keyring()
    return [ticket_code(ring, t) for t in tickets]


def make_device(organizer: Organizer, events: list[Event], name: str = "Door A") -> str:
    """A paired device's token."""
    _device, pairing = create_device(db.session, organizer, name, [e.id for e in events], utcnow())
    _device, token = pair_device(db.session, pairing, utcnow())
    return token
