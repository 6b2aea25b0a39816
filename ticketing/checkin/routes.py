"""``/door``: the scanner page for door staff. All its logic runs in the browser
(static/js/door.js) against the check-in API, so that it keeps working offline."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, make_response, render_template, send_from_directory

bp = Blueprint("checkin", __name__)


@bp.get("/door")
def door() -> Response:
    response = make_response(render_template("checkin/door.html"))
    # The device token lives in the page's storage, never in a URL the server sees
    # (a fragment is not sent); the page itself holds nothing secret, but keep it fresh.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/door-sw.js")
def door_service_worker() -> Response:
    """The scanner's service worker, served from the root so that its scope covers /door."""
    response = send_from_directory(current_app.static_folder or "static", "js/door-sw.js", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response
