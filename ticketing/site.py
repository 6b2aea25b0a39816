"""Routes that belong to no domain: health check and the language switch."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, redirect, request, session
from flask_babel import gettext as _
from sqlalchemy import select

from ticketing.errors import NotFound
from ticketing.extensions import db, keyring
from ticketing.mail.queue import queue_state
from ticketing.models import utcnow
from ticketing.privacy.services import master_key_schedule
from ticketing.worker import JobRun

bp = Blueprint("site", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when the database answers, with how far mail delivery is behind (counts and
    an age only) and when each worker job last finished, so that a stopped worker shows
    before buyers complain, and whether
    a new master-key epoch is due (from the keys' dates, no query): a late one breaks the
    bound after which backup copies of erased persons' data keys stop opening."""
    from ticketing import check_database

    if not check_database():
        return jsonify(status="database unreachable"), 503
    now = utcnow()
    mail = queue_state(db.session, now)
    jobs = {
        name: {
            "finished_seconds_ago": int((now - finished).total_seconds()) if finished else None,
            "outcome": outcome,
        }
        for name, finished, outcome in db.session.execute(select(JobRun.name, JobRun.finished_at, JobRun.outcome))
    }
    db.session.rollback()
    return jsonify(
        status="ok",
        mail={"due": mail.due, "oldest_due_seconds": mail.oldest_due_seconds, "given_up": mail.given_up},
        master_keys=master_key_schedule(keyring(), now.date()).as_json(),
        jobs=jobs,
    ), 200


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
