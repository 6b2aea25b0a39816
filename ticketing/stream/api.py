"""``/api/v1/events/<id>/stream/publisher-key``: the organiser's key for publishing to MediaMTX."""

from __future__ import annotations

from flask import Blueprint, Response
from flask_babel import gettext as _

from ticketing.catalog.services import authenticate_organizer, get_own_event
from ticketing.errors import Conflict
from ticketing.extensions import db
from ticketing.models import utcnow
from ticketing.openapi import operation
from ticketing.schema import respond
from ticketing.stream import services
from ticketing.stream.schemas import PUBLISHER_KEY
from ticketing.web import bearer_token

bp = Blueprint("stream_api", __name__, url_prefix="/api/v1")


@bp.post("/events/<event_id>/stream/publisher-key")
@operation(
    "A new MediaMTX publisher key for the event's stream (it replaces the old one at once)",
    answers={201: (PUBLISHER_KEY, "The key")},
    problems={404: "No such event (or not yours)", 409: "`no_stream_name`: the event has no stream_name yet"},
    security=("organizerToken",),
)
def new_publisher_key(event_id: str) -> Response:
    """A new key replaces the old one at once; it is returned this once and never again."""
    organizer = authenticate_organizer(db.session, bearer_token())
    event = get_own_event(db.session, organizer, event_id)
    if not event.stream_name:
        raise Conflict(_("Set the event's stream_name before asking for a publisher key."), code="no_stream_name")
    key = services.new_publisher_key(db.session, event, utcnow())
    response = respond(PUBLISHER_KEY, {"stream_name": event.stream_name, "publisher_key": key}, 201)
    response.headers["Cache-Control"] = "no-store"
    return response
