"""``/api/v1/events/<id>/stream/publisher-key``: the organiser's key for publishing to MediaMTX."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from flask_babel import gettext as _

from ticketing.catalog.services import authenticate_organizer, get_own_event
from ticketing.errors import Conflict
from ticketing.extensions import db
from ticketing.models import utcnow
from ticketing.stream import services
from ticketing.web import bearer_token

bp = Blueprint("stream_api", __name__, url_prefix="/api/v1")


@bp.post("/events/<event_id>/stream/publisher-key")
def new_publisher_key(event_id: str) -> tuple[Response, int]:
    """A new key replaces the old one at once; it is returned this once and never again."""
    organizer = authenticate_organizer(db.session, bearer_token())
    event = get_own_event(db.session, organizer, event_id)
    if not event.stream_name:
        raise Conflict(_("Set the event's stream_name before asking for a publisher key."), code="no_stream_name")
    key = services.new_publisher_key(db.session, event, utcnow())
    response = jsonify(stream_name=event.stream_name, publisher_key=key)
    response.headers["Cache-Control"] = "no-store"
    return response, 201
