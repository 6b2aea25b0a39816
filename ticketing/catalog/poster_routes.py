"""Posters over HTTP: the organiser's upload (``/api/v1``) and the images pages show.

A module of its own beside ``catalog/api.py``: the upload is a multipart body (the file
and its alternative text), which the JSON API's body rules do not describe.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, request
from flask_babel import gettext as _

from ticketing.catalog import posters, services
from ticketing.catalog.posters import PosterView
from ticketing.catalog.schemas import POSTER, POSTER_UPLOAD
from ticketing.errors import NotFound
from ticketing.extensions import db
from ticketing.models import utcnow
from ticketing.openapi import operation
from ticketing.schema import respond
from ticketing.web import bearer_token, external_url

api = Blueprint("poster_api", __name__, url_prefix="/api/v1")
pages = Blueprint("posters", __name__)

# The whole multipart body: the image and a little room for the form's other parts.
MAX_BODY = posters.MAX_UPLOAD_BYTES + 64 * 1024
# Each URL names a version whose bytes never change.
CACHE_FOREVER = "public, max-age=31536000, immutable"


def poster_url(view: PosterView, width: int) -> str:
    return external_url("posters.poster_file", event_id=view.event_id, version=view.version, width=width)


def poster_json(view: PosterView) -> dict[str, Any]:
    return {
        "version": view.version,
        "alt": view.alt,
        "images": [{"width": s.width, "height": s.height, "url": poster_url(view, s.width)} for s in view.sizes],
        "srcset": ", ".join(f"{poster_url(view, s.width)} {s.width}w" for s in view.sizes),
    }


ORGANIZER = ("organizerToken",)


@api.put("/events/<event_id>/poster")
@operation(
    "Set the event's poster: resized into a few widths, its metadata (EXIF, GPS) stripped",
    body=POSTER_UPLOAD,
    body_media_type="multipart/form-data",
    answers={200: (POSTER, "The poster's images and srcset")},
    problems={404: "No such event (or not yours)", 413: "The image is larger than 10 MB"},
    security=ORGANIZER,
)
def upload_poster(event_id: str) -> tuple[Response, int]:
    """``multipart/form-data``: ``image`` (JPEG, PNG or WebP, 10 MB at most) and ``alt``."""
    organizer = services.authenticate_organizer(db.session, bearer_token())
    event = services.get_own_event(db.session, organizer, event_id)
    request.max_content_length = MAX_BODY
    upload = request.files.get("image")
    data = upload.read(posters.MAX_UPLOAD_BYTES + 1) if upload else b""
    view = posters.set_poster(db.session, event, data, request.form.get("alt"), utcnow())
    return respond(POSTER, poster_json(view))


@api.get("/events/<event_id>/poster")
@operation(
    "The event's poster: its images and srcset",
    answers={200: (POSTER, "The poster")},
    problems={404: "No such event, or `no_poster`"},
)
def get_poster(event_id: str) -> Response:
    event = services.get_public_event(db.session, event_id)
    view = posters.posters_for(db.session, [event.id]).get(event.id)
    if view is None:
        raise NotFound(_("This event has no poster."), code="no_poster")
    return respond(POSTER, poster_json(view))


@api.delete("/events/<event_id>/poster")
@operation(
    "Remove the event's poster",
    answers={204: (None, "Removed")},
    problems={404: "No such event (or not yours), or `no_poster`"},
    security=ORGANIZER,
)
def delete_poster(event_id: str) -> tuple[str, int]:
    organizer = services.authenticate_organizer(db.session, bearer_token())
    event = services.get_own_event(db.session, organizer, event_id)
    if not posters.remove_poster(db.session, event):
        raise NotFound(_("This event has no poster."), code="no_poster")
    return "", 204


@pages.get("/posters/<uuid:event_id>/<version>/<int:width>.jpg")
def poster_file(event_id: uuid.UUID, version: str, width: int) -> Response:
    jpeg = posters.poster_image(db.session, event_id, version, width)
    if jpeg is None:
        raise NotFound(_("No such image."))
    response = Response(jpeg, mimetype="image/jpeg")
    response.headers["Cache-Control"] = CACHE_FOREVER
    response.set_etag(f"{version}-{width}")
    return response.make_conditional(request)
