"""Public pages: upcoming events, and an event with its live availability and buy form."""

from __future__ import annotations

from flask import Blueprint, render_template

from ticketing.catalog.services import get_public_event, list_upcoming_events, sale_state
from ticketing.catalog.signals import refresh_availability
from ticketing.extensions import db
from ticketing.models import utcnow

bp = Blueprint("catalog", __name__)


@bp.get("/")
def index() -> str:
    now = utcnow()
    refresh_availability(None, now)
    events = list_upcoming_events(db.session, now)
    return render_template("catalog/index.html", events=events, now=now, sale_state=sale_state)


@bp.get("/events/<event_id>")
def event_page(event_id: str) -> str:
    now = utcnow()
    event = get_public_event(db.session, event_id)
    if refresh_availability(event.id, now):
        event = get_public_event(db.session, event_id)
    return render_template("catalog/event.html", event=event, now=now, sale_state=sale_state, errors={}, form={})
