"""The watch page and the screen's session calls (start, heartbeat, end).

The viewer cookie holds a random value (HttpOnly, SameSite=Strict, scoped to /watch/);
the database keeps only its hash and the ticket it watches.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from ticketing.catalog.stream_url import stream_origin
from ticketing.crypto.stream import StreamKeys
from ticketing.extensions import db
from ticketing.models import utcnow
from ticketing.stream import services
from ticketing.stream.errors import StreamRefused

bp = Blueprint("stream", __name__)

COOKIE = "guichet_viewer"


def stream_keys() -> StreamKeys:
    return current_app.extensions["guichet.stream_keys"]


def stream_policy() -> services.StreamPolicy:
    return current_app.extensions["guichet.stream_policy"]


def watch_csp(stream_url: str) -> str:
    """The page's policy: the app's own, plus the stream's origin for media and fetches only.

    The origin comes from ``stream_origin``, which gives none for a URL that would not pass
    today's checks (a row stored before them), so nothing stored can add a directive.
    """
    origin = stream_origin(stream_url)
    extra = f" {origin}" if origin else ""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"font-src 'self'; connect-src 'self'{extra}; media-src 'self' blob:{extra}; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


@bp.get("/watch/<token>")
def watch_page(token: str) -> BaseResponse | tuple[str, int]:
    access = services.check_stream_token(db.session, stream_keys(), token, stream_policy(), utcnow())
    page = render_template("stream/watch.html", event=access.event, access=access, token=token)
    response = Response(page)
    response.headers["Content-Security-Policy"] = watch_csp(access.event.stream_url)
    response.headers["Cache-Control"] = "no-store"
    return response


def _set_cookie(response: Response, token: str, value: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=24 * 3600,
        path=f"/watch/{token}",
        httponly=True,
        samesite="Strict",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )


@bp.post("/watch/<token>/session")
def start_session(token: str) -> Response:
    now = utcnow()
    access = services.check_stream_token(db.session, stream_keys(), token, stream_policy(), now)
    cookie_token = request.cookies.get(COOKIE)
    viewer, cookie = services.start_viewer_session(db.session, access, cookie_token, stream_policy(), now)
    response = jsonify(
        playlist=services.viewer_playlist_url(stream_keys(), access, viewer, stream_policy(), now),
        heartbeat_seconds=stream_policy().heartbeat_seconds,
        access=access.event.stream_access,
    )
    _set_cookie(response, token, cookie)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/watch/<token>/heartbeat")
def heartbeat(token: str) -> Response:
    now = utcnow()
    access = services.check_stream_token(db.session, stream_keys(), token, stream_policy(), now)
    viewer = services.heartbeat(db.session, access.ticket_id, request.cookies.get(COOKIE), stream_policy(), now)
    response = jsonify(
        playlist=services.viewer_playlist_url(stream_keys(), access, viewer, stream_policy(), now),
        heartbeat_seconds=stream_policy().heartbeat_seconds,
        access=access.event.stream_access,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/watch/<token>/end")
def end_session(token: str) -> tuple[str, int]:
    now = utcnow()
    try:
        access = services.check_stream_token(db.session, stream_keys(), token, stream_policy(), now)
    except StreamRefused:
        return "", 204  # nothing to give back
    services.end_viewer_session(db.session, access.ticket_id, request.cookies.get(COOKIE), now)
    return "", 204
