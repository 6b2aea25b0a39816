"""Routes that belong to no domain: health check and the language switch."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, redirect, request, session
from flask_babel import gettext as _

from ticketing.errors import NotFound

bp = Blueprint("site", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    from ticketing import check_database

    healthy = check_database()
    return jsonify(status="ok" if healthy else "database unreachable"), 200 if healthy else 503


@bp.get("/language/<code>")
def switch_language(code: str) -> Response:
    """The one reason a reader who never buys gets a cookie: they asked for a language."""
    if code not in current_app.config["LANGUAGES"]:
        raise NotFound(_("No such language."))
    session["lang"] = code
    target = request.args.get("next", "/")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        target = "/"
    return redirect(target)
