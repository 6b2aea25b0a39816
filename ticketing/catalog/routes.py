"""Public pages: upcoming events, and an event with its live availability and buy form."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, render_template
from flask_babel import get_locale

from ticketing.catalog.calendar import calendar_file
from ticketing.catalog.models import Event
from ticketing.catalog.posters import PosterView, posters_for
from ticketing.catalog.services import get_public_event, list_upcoming_events, listing, sale_state
from ticketing.catalog.signals import show_live_availability
from ticketing.extensions import db
from ticketing.models import utcnow

bp = Blueprint("catalog", __name__)
bp.add_app_template_global(listing, "listing")


@bp.app_template_global("event_posters")
def event_posters(events: list[Event]) -> dict[uuid.UUID, PosterView]:
    """The posters of the events a page shows, in one query (the checkout pages render
    the event page too, so the template asks rather than each view)."""
    return posters_for(db.session, [event.id for event in events])


@bp.get("/")
def index() -> str:
    now = utcnow()
    events = list_upcoming_events(db.session, now)
    show_live_availability(events, now)
    return render_template("catalog/index.html", events=events, now=now, sale_state=sale_state)


@bp.get("/events/<event_id>")
def event_page(event_id: str) -> str:
    now = utcnow()
    event = get_public_event(db.session, event_id)
    show_live_availability([event], now)
    return render_template("catalog/event.html", event=event, now=now, sale_state=sale_state, errors={}, form={})


@bp.get("/events/<event_id>/calendar.ics")
def event_calendar_file(event_id: str) -> Response:
    event = get_public_event(db.session, event_id)
    response = Response(calendar_file(event, str(get_locale() or "en"), utcnow()), mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'attachment; filename="event.ics"'
    return response
