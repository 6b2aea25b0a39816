"""``/api/v1`` for events: public reads, and organiser writes behind an API token."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from flask_babel import gettext as _

from ticketing.catalog import services
from ticketing.catalog.models import Event, Organizer, TicketType
from ticketing.catalog.signals import show_live_availability
from ticketing.errors import Invalid
from ticketing.extensions import db
from ticketing.models import utcnow
from ticketing.web import api_time, bearer_token, json_body

bp = Blueprint("catalog_api", __name__, url_prefix="/api/v1")


def ticket_type_json(ticket_type: TicketType, event: Event, now: dt.datetime) -> dict[str, Any]:
    state = services.sale_state(ticket_type, event, now)
    return {
        "id": str(ticket_type.id),
        "name": ticket_type.name,
        "price_cents": ticket_type.price_cents,
        "fee_cents": ticket_type.fee_cents,
        "currency": event.currency,
        "capacity": ticket_type.capacity,
        "available": state.available,
        "sale_state": state.state,
        "sale_starts_at": api_time(ticket_type.sale_starts_at),
        "sale_ends_at": api_time(ticket_type.sale_ends_at),
        "max_per_order": ticket_type.max_per_order,
        "grants": ticket_type.grants,
        "refundable_until_hours": ticket_type.refundable_until_hours,
    }


def event_json(event: Event, now: dt.datetime, *, for_organizer: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(event.id),
        "title": event.title,
        "description": event.description,
        "venue": {"name": event.venue_name, "address": event.venue_address, "city": event.venue_city},
        "starts_at": api_time(event.starts_at),
        "ends_at": api_time(event.ends_at),
        "doors_at": api_time(event.doors_at),
        "timezone": event.timezone,
        "mode": event.mode,
        "status": event.status,
        "currency": event.currency,
        "ask_name": event.ask_name,
        "ask_postcode": event.ask_postcode,
        "retention_days": event.retention_days,
        "ticket_types": [ticket_type_json(t, event, now) for t in event.ticket_types],
    }
    if for_organizer:
        # The same names the organiser PATCHes; the publisher key itself is shown once only.
        body.update(
            stream_url=event.stream_url,
            stream_name=event.stream_name,
            stream_access=event.stream_access,
            stream_max_screens=event.stream_max_screens,
            stream_screen_policy=event.stream_screen_policy,
            stream_replay_until=api_time(event.stream_replay_until),
            stream_publisher_key_set=event.stream_publisher_key_hash is not None,
        )
        body["sold"] = {str(t.id): t.sold for t in event.ticket_types}
        body["held"] = {str(t.id): t.held for t in event.ticket_types}
    return body


def _organizer() -> Organizer:
    return services.authenticate_organizer(db.session, bearer_token())


@bp.get("/events")
def list_events() -> Response:
    now = utcnow()
    events = services.list_upcoming_events(db.session, now)
    show_live_availability(events, now)
    return jsonify(events=[event_json(e, now) for e in events])


@bp.get("/events/<event_id>")
def get_event(event_id: str) -> Response:
    now = utcnow()
    event = services.get_public_event(db.session, event_id)
    show_live_availability([event], now)
    return jsonify(event_json(event, now))


@bp.get("/organizer/events")
def list_own_events() -> Response:
    organizer = _organizer()
    now = utcnow()
    events = services.list_organizer_events(db.session, organizer)
    show_live_availability(events, now)
    return jsonify(events=[event_json(e, now, for_organizer=True) for e in events])


@bp.post("/events")
def create_event() -> tuple[Response, int]:
    organizer = _organizer()
    event = services.create_event(
        db.session, organizer, _object_body(), utcnow(), current_app.config["MAX_RETENTION_DAYS"]
    )
    return jsonify(event_json(event, utcnow(), for_organizer=True)), 201


@bp.patch("/events/<event_id>")
def update_event(event_id: str) -> Response:
    organizer = _organizer()
    event = services.get_own_event(db.session, organizer, event_id)
    event = services.update_event(db.session, event, _object_body(), utcnow(), current_app.config["MAX_RETENTION_DAYS"])
    return jsonify(event_json(event, utcnow(), for_organizer=True))


@bp.post("/events/<event_id>/publish")
def publish_event(event_id: str) -> Response:
    organizer = _organizer()
    event = services.get_own_event(db.session, organizer, event_id)
    event = services.publish_event(db.session, event, utcnow())
    return jsonify(event_json(event, utcnow(), for_organizer=True))


@bp.post("/events/<event_id>/ticket-types")
def add_ticket_type(event_id: str) -> tuple[Response, int]:
    organizer = _organizer()
    event = services.get_own_event(db.session, organizer, event_id)
    ticket_type = services.add_ticket_type(db.session, event, _object_body(), utcnow())
    return jsonify(ticket_type_json(ticket_type, event, utcnow())), 201


@bp.patch("/events/<event_id>/ticket-types/<ticket_type_id>")
def update_ticket_type(event_id: str, ticket_type_id: str) -> Response:
    organizer = _organizer()
    event = services.get_own_event(db.session, organizer, event_id)
    ticket_type = services.get_own_ticket_type(db.session, event, ticket_type_id)
    ticket_type = services.update_ticket_type(db.session, event, ticket_type, _object_body(), utcnow())
    return jsonify(ticket_type_json(ticket_type, event, utcnow()))


def _object_body() -> dict[str, Any]:
    payload = json_body()
    if not isinstance(payload, dict):
        raise Invalid(_("The body must be a JSON object."), errors={"": _("The body must be a JSON object.")})
    return payload
