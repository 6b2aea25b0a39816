"""``/api/v1`` for events: public reads, and organiser writes behind an API token."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, current_app

from ticketing.catalog import services
from ticketing.catalog.models import Event, Organizer, TicketType
from ticketing.catalog.schemas import (
    EVENT,
    EVENT_CHANGES,
    EVENTS,
    NEW_EVENT,
    NEW_TICKET_TYPE,
    ORGANIZER_EVENT,
    ORGANIZER_EVENTS,
    TICKET_TYPE,
    TICKET_TYPE_CHANGES,
)
from ticketing.catalog.signals import show_live_availability
from ticketing.extensions import db
from ticketing.models import utcnow
from ticketing.openapi import operation
from ticketing.schema import load, respond
from ticketing.web import bearer_token

bp = Blueprint("catalog_api", __name__, url_prefix="/api/v1")
ORGANIZER = ("organizerToken",)
NOT_MINE = "No such event (or not yours)"
CANCELLED = "`event_cancelled`: a cancelled event cannot change"
STREAM_NAME_TAKEN = "`stream_name_taken`: another event uses this stream name"


def ticket_type_json(ticket_type: TicketType, event: Event, now: dt.datetime) -> dict[str, Any]:
    state = services.sale_state(ticket_type, event, now)
    return {
        "id": ticket_type.id,
        "name": ticket_type.name,
        "price_cents": ticket_type.price_cents,
        "fee_cents": ticket_type.fee_cents,
        "currency": event.currency,
        "capacity": ticket_type.capacity,
        "available": state.available,
        "sale_state": state.state,
        "sale_starts_at": ticket_type.sale_starts_at,
        "sale_ends_at": ticket_type.sale_ends_at,
        "max_per_order": ticket_type.max_per_order,
        "grants": ticket_type.grants,
        "refundable_until_hours": ticket_type.refundable_until_hours,
    }


def event_json(event: Event, now: dt.datetime, *, for_organizer: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": event.id,
        "title": event.title,
        "description": event.description,
        "venue": {"name": event.venue_name, "address": event.venue_address, "city": event.venue_city},
        "starts_at": event.starts_at,
        "ends_at": event.ends_at,
        "doors_at": event.doors_at,
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
            stream_replay_until=event.stream_replay_until,
            stream_publisher_key_set=event.stream_publisher_key_hash is not None,
        )
        body["sold"] = {str(t.id): t.sold for t in event.ticket_types}
        body["held"] = {str(t.id): t.held for t in event.ticket_types}
    return body


def _organizer() -> Organizer:
    return services.authenticate_organizer(db.session, bearer_token())


@bp.get("/events")
@operation("Upcoming published events with availability", answers={200: (EVENTS, "Events")})
def list_events() -> Response:
    now = utcnow()
    events = services.list_upcoming_events(db.session, now)
    show_live_availability(events, now)
    return respond(EVENTS, {"events": [event_json(e, now) for e in events]})


@bp.get("/events/<event_id>")
@operation(
    "One published (or cancelled) event with live availability per ticket type",
    answers={200: (EVENT, "The event")},
    problems={404: "No such event"},
)
def get_event(event_id: str) -> Response:
    now = utcnow()
    event = services.get_public_event(db.session, event_id)
    show_live_availability([event], now)
    return respond(EVENT, event_json(event, now))


@bp.get("/organizer/events")
@operation(
    "The organiser's own events, drafts included, with sold and held counts",
    answers={200: (ORGANIZER_EVENTS, "Events")},
    security=ORGANIZER,
)
def list_own_events() -> Response:
    organizer = _organizer()
    now = utcnow()
    events = services.list_organizer_events(db.session, organizer)
    show_live_availability(events, now)
    return respond(ORGANIZER_EVENTS, {"events": [event_json(e, now, for_organizer=True) for e in events]})


@bp.post("/events")
@operation(
    "Create an event (a draft)",
    body=NEW_EVENT,
    answers={201: (ORGANIZER_EVENT, "The new event")},
    problems={409: STREAM_NAME_TAKEN},
    security=ORGANIZER,
)
def create_event() -> Response:
    organizer = _organizer()
    values = load(NEW_EVENT)
    event = services.create_event(db.session, organizer, values, utcnow(), current_app.config["MAX_RETENTION_DAYS"])
    return respond(ORGANIZER_EVENT, event_json(event, utcnow(), for_organizer=True), 201)


@bp.patch("/events/<event_id>")
@operation(
    "Change an event: only the fields sent",
    body=EVENT_CHANGES,
    answers={200: (ORGANIZER_EVENT, "The event")},
    problems={
        404: NOT_MINE,
        409: f"{CANCELLED}; `currency_locked`: tickets are sold or held; {STREAM_NAME_TAKEN}",
    },
    security=ORGANIZER,
)
def update_event(event_id: str) -> Response:
    organizer = _organizer()
    event = services.get_own_event(db.session, organizer, event_id)
    changes = load(EVENT_CHANGES)
    event = services.update_event(db.session, event, changes, utcnow(), current_app.config["MAX_RETENTION_DAYS"])
    return respond(ORGANIZER_EVENT, event_json(event, utcnow(), for_organizer=True))


@bp.post("/events/<event_id>/publish")
@operation(
    "Publish an event (it needs a ticket type; a livestream, one that grants the stream)",
    answers={200: (ORGANIZER_EVENT, "The event")},
    problems={404: NOT_MINE, 409: f"{CANCELLED}; `no_ticket_types`; `no_stream_ticket`"},
    security=ORGANIZER,
)
def publish_event(event_id: str) -> Response:
    organizer = _organizer()
    event = services.get_own_event(db.session, organizer, event_id)
    event = services.publish_event(db.session, event, utcnow())
    return respond(ORGANIZER_EVENT, event_json(event, utcnow(), for_organizer=True))


@bp.post("/events/<event_id>/ticket-types")
@operation(
    "Add a ticket type",
    body=NEW_TICKET_TYPE,
    answers={201: (TICKET_TYPE, "The ticket type")},
    problems={404: NOT_MINE, 409: CANCELLED},
    security=ORGANIZER,
)
def add_ticket_type(event_id: str) -> Response:
    organizer = _organizer()
    event = services.get_own_event(db.session, organizer, event_id)
    values = load(NEW_TICKET_TYPE)
    ticket_type = services.add_ticket_type(db.session, event, values, utcnow())
    return respond(TICKET_TYPE, ticket_type_json(ticket_type, event, utcnow()), 201)


@bp.patch("/events/<event_id>/ticket-types/<ticket_type_id>")
@operation(
    "Change a ticket type: only the fields sent (capacity never below what is sold or held)",
    body=TICKET_TYPE_CHANGES,
    answers={200: (TICKET_TYPE, "The ticket type")},
    problems={404: "No such event or ticket type (or not yours)", 409: f"{CANCELLED}; `capacity_below_sold`"},
    security=ORGANIZER,
)
def update_ticket_type(event_id: str, ticket_type_id: str) -> Response:
    organizer = _organizer()
    event = services.get_own_event(db.session, organizer, event_id)
    ticket_type = services.get_own_ticket_type(db.session, event, ticket_type_id)
    changes = load(TICKET_TYPE_CHANGES)
    ticket_type = services.update_ticket_type(db.session, event, ticket_type, changes, utcnow())
    return respond(TICKET_TYPE, ticket_type_json(ticket_type, event, utcnow()))
