"""The back office's home: the organiser's events, and each event's summary page."""

from __future__ import annotations

from flask import g, render_template
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ticketing.backoffice.access import requires, signed_in
from ticketing.backoffice.blueprint import bp
from ticketing.catalog.models import Event
from ticketing.catalog.services import get_own_event
from ticketing.extensions import db


@bp.get("/")
@signed_in
def home() -> str:
    events = (
        db.session.execute(
            select(Event)
            .where(Event.organizer_id == g.organizer.id)
            .options(selectinload(Event.ticket_types))
            .order_by(Event.starts_at.desc())
        )
        .scalars()
        .all()
    )
    rows = [
        {
            "event": event,
            "sold": sum(t.sold for t in event.ticket_types),
            "capacity": sum(t.capacity for t in event.ticket_types),
        }
        for event in events
    ]
    return render_template("backoffice/home.html", rows=rows)


@bp.get("/events/<event_id>")
@requires("door")
def event_page(event_id: str) -> str:
    """The event's page: its sales against capacity, per ticket type (counts, no money).
    Editing, the dashboard, orders and door devices build on it."""
    event = get_own_event(db.session, g.organizer, event_id)
    return render_template("backoffice/event.html", event=event)
