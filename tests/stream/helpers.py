"""Factories for stream tests: a paid livestream ticket, its watch token, a screen."""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from tests.conftest import published_event
from ticketing.catalog.models import Event
from ticketing.checkout.models import Ticket
from ticketing.crypto.stream import make_stream_token
from ticketing.extensions import db

STREAM_URL = "http://127.0.0.1:9/hls/{credential}/concert/index.m3u8"


def stream_ticket(
    app: Flask, client: FlaskClient, *, starts_in: dt.timedelta = dt.timedelta(minutes=10), **settings: Any
) -> SimpleNamespace:
    """A free livestream order placed through the API; returns ids, the order and the watch token."""
    event = published_event(app, price_cents=0, fee_cents=0, capacity=5, mode="livestream", starts_in=starts_in)
    values = {"stream_url": STREAM_URL, "stream_name": f"concert{str(event.id)[:8]}", **settings}
    with app.app_context():
        db.session.execute(update(Event).where(Event.id == event.id).values(**values))
        db.session.commit()
        organizer_id = db.session.get(Event, event.id).organizer_id
    body = {
        "event_id": str(event.id),
        "items": [{"ticket_type_id": str(event.type_id), "quantity": 1}],
        "email": "viewer@example.org",
    }
    placed = client.post("/api/v1/orders", json=body).get_json()
    order = client.get(
        f"/api/v1/orders/{placed['code']}", headers={"Authorization": f"Bearer {placed['access_token']}"}
    )
    ticket = order.get_json()["tickets"][0]
    with app.app_context():
        keys = app.extensions["guichet.stream_keys"]
        token = make_stream_token(keys, _uuid(ticket["id"]), event.id)
    return SimpleNamespace(
        event_id=event.id,
        organizer_id=organizer_id,
        ticket_id=_uuid(ticket["id"]),
        code=placed["code"],
        access_token=placed["access_token"],
        order=order.get_json(),
        token=token,
        stream_name=values["stream_name"],
    )


def _uuid(value: str) -> uuid.UUID:
    return uuid.UUID(value)


def void_ticket(app: Flask, ticket_id: Any) -> None:
    """What a refund does to a ticket (the refund flow itself belongs to payments)."""
    with app.app_context():
        db.session.execute(update(Ticket).where(Ticket.id == ticket_id).values(status="voided"))
        db.session.commit()


def set_event(app: Flask, event_id: Any, **values: Any) -> None:
    with app.app_context():
        db.session.execute(update(Event).where(Event.id == event_id).values(**values))
        db.session.commit()
