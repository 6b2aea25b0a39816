"""Endpoints the streaming server calls to ask whether a viewer may play.

Each does the least work it can: parse, verify an HMAC in memory, and at most one query by
primary key (or by the unique stream name for publishers). They render no template, touch
no cookie and no Flask session, and are exempt from CSRF and rate limits (the streaming
server asks on behalf of every viewer).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from flask import Blueprint, Flask, Response, current_app, request

from ticketing.autocommit import is_database_error
from ticketing.extensions import db
from ticketing.models import utcnow
from ticketing.stream import services
from ticketing.stream.lookup import GateLookup

log = logging.getLogger(__name__)

bp = Blueprint("stream_gate", __name__, url_prefix="/stream")
AUTH_REQUEST_PATH = "/stream/auth"


def _answer(status: int, reason: str | None = None) -> Response:
    response = Response(status=status)
    if reason:
        response.headers["X-Guichet-Refusal"] = reason
    response.headers["Cache-Control"] = "no-store"
    return response


def _decide(credential: str | None, stream_name: str | None) -> str | None:  # on-play and MediaMTX
    extensions = current_app.extensions
    lookup, keys = extensions["guichet.stream_gate_lookup"], extensions["guichet.stream_keys"]
    return services.check_viewer_credential(lookup, keys, credential, stream_name, utcnow())


def auth_request_decision(lookup: GateLookup, keys: Any, original_uri: str) -> tuple[int, str | None]:
    """nginx ``auth_request``: the original URI arrives in ``X-Original-URI``; 204 or 401/403."""
    asked = services.credential_from_uri(original_uri)
    if asked.credential is None:
        return 401, "invalid"
    refusal = services.check_viewer_credential(lookup, keys, asked.credential, asked.stream_name, utcnow())
    return (403, refusal) if refusal else (204, None)


@bp.get("/auth")
def nginx_auth_request() -> Response:
    """Reached only when ``AuthRequestLane`` is not in front (it answers GET and HEAD)."""
    extensions = current_app.extensions
    status, reason = auth_request_decision(
        extensions["guichet.stream_gate_lookup"],
        extensions["guichet.stream_keys"],
        request.headers.get("X-Original-URI", ""),
    )
    return _answer(status, reason)


StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
_STATUS_LINES = {
    204: "204 No Content",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


class AuthRequestLane:
    """Answers ``GET /stream/auth`` in front of Flask.

    nginx asks once for every playlist and segment of every viewer, and for this one
    question Flask's request context, session and after-request hooks cost more CPU than
    the decision (an HMAC and one prepared query). Everything else goes on to Flask. The
    decision is the same function the blueprint's view calls; the answer has no body.
    """

    def __init__(self, app: Flask, inner: WsgiApp) -> None:
        self.inner = inner
        self.lookup: GateLookup = app.extensions["guichet.stream_gate_lookup"]
        self.keys = app.extensions["guichet.stream_keys"]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != AUTH_REQUEST_PATH or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self.inner(environ, start_response)
        headers = [("Content-Length", "0"), ("Cache-Control", "no-store")]
        try:
            status, reason = auth_request_decision(self.lookup, self.keys, environ.get("HTTP_X_ORIGINAL_URI", ""))
        except Exception as error:  # noqa: BLE001 - answered and logged as the app's own handlers do
            # The type (and for a bug, the stack), never the message: it could quote input.
            if is_database_error(error):
                log.warning("database unavailable at GET %s: %s", AUTH_REQUEST_PATH, type(error).__name__)
                status, reason = 503, None
                headers.append(("Retry-After", "2"))
            else:
                stack = "".join(traceback.format_tb(error.__traceback__))
                log.error("unexpected %s at GET %s\n%s", type(error).__name__, AUTH_REQUEST_PATH, stack)
                status, reason = 500, None
        if reason:
            headers.append(("X-Guichet-Refusal", reason))
        start_response(_STATUS_LINES[status], headers)
        return []


@bp.post("/rtmp/on-play")
def rtmp_on_play() -> Response:
    """nginx-rtmp ``on_play``: the stream ``name`` and the play URL's query as form fields."""
    refusal = _decide(request.form.get("cred"), request.form.get("name"))
    return _answer(403, refusal) if refusal else _answer(204)


@bp.post("/mediamtx/auth")
def mediamtx_auth() -> Response:
    """MediaMTX external HTTP authentication: 200 allows, 401 refuses."""
    body: Any = request.get_json(silent=True)
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
        allowed = services.check_publisher(db.session, path, key)
        return _answer(200) if allowed else _answer(401, "invalid")
    if action not in ("read", "playback"):
        return _answer(401, "invalid")
    refusal = _decide(services.credential_from_mediamtx(body), path)
    return _answer(401, refusal) if refusal else _answer(200)
