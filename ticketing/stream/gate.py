"""Endpoints the streaming server calls to ask whether a viewer may play.

Each parses, verifies an HMAC in memory, and makes at most one query by primary key (or
by stream name for publishers). They render no template and touch no cookie or session,
and are exempt from CSRF and rate limits: the streaming server asks on behalf of every
viewer. nginx keeps each ``auth_request`` decision for a few seconds (README,
"Livestream"), so Guichet is asked about once per viewer per few seconds, not once per
segment; the answers say ``no-store`` so that nothing else keeps them.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs

from flask import Blueprint, Response, current_app, request

from ticketing.errors import BadRequest
from ticketing.extensions import db
from ticketing.models import utcnow
from ticketing.stream import services
from ticketing.web import json_body

bp = Blueprint("stream_gate", __name__, url_prefix="/stream")


def _answer(status: int, reason: str | None = None) -> Response:
    response = Response(status=status)
    if reason:
        response.headers["X-Guichet-Refusal"] = reason
    response.headers["Cache-Control"] = "no-store"
    return response


def _decide(organizer_id: uuid.UUID, credential: str | None, stream_name: str | None) -> str | None:
    keys = current_app.extensions["guichet.stream_keys"]
    return services.check_viewer_credential(db.session, keys, organizer_id, credential, stream_name, utcnow())


# The organiser's id in each path says whose streaming server asks: stream names are
# unique per organiser only.


@bp.get("/<uuid:organizer_id>/auth")
def nginx_auth_request(organizer_id: uuid.UUID) -> Response:
    """nginx ``auth_request``: the original URI arrives in ``X-Original-URI``; 204 or 401/403."""
    asked = services.credential_from_uri(request.headers.get("X-Original-URI", ""))
    if asked.credential is None:
        return _answer(401, "invalid")
    refusal = _decide(organizer_id, asked.credential, asked.stream_name)
    return _answer(403, refusal) if refusal else _answer(204)


@bp.post("/<uuid:organizer_id>/rtmp/on-play")
def rtmp_on_play(organizer_id: uuid.UUID) -> Response:
    """nginx-rtmp ``on_play``: the stream ``name`` and the play URL's query as form fields."""
    refusal = _decide(organizer_id, request.form.get("cred"), request.form.get("name"))
    return _answer(403, refusal) if refusal else _answer(204)


@bp.post("/<uuid:organizer_id>/mediamtx/auth")
def mediamtx_auth(organizer_id: uuid.UUID) -> Response:
    """MediaMTX external HTTP authentication: 200 allows, 401 refuses."""
    try:
        body: Any = json_body()
    except BadRequest:  # not JSON, malformed, or nested deeper than the decoder goes
        return _answer(400, "invalid")
    if not isinstance(body, dict):
        return _answer(400, "invalid")
    action, path = body.get("action"), body.get("path")
    if not isinstance(path, str):
        return _answer(401, "invalid")
    if action == "publish":
        query = body.get("query") if isinstance(body.get("query"), str) else ""
        key = body.get("password") if isinstance(body.get("password"), str) and body.get("password") else None
        if key is None:
            key = (parse_qs(query).get("key") or [None])[0]
        allowed = services.check_publisher(db.session, organizer_id, path, key)
        return _answer(200) if allowed else _answer(401, "invalid")
    if action not in ("read", "playback"):
        return _answer(401, "invalid")
    refusal = _decide(organizer_id, services.credential_from_mediamtx(body), path)
    return _answer(401, refusal) if refusal else _answer(200)
