"""The one place that turns errors into answers: ``GuichetError`` and HTTP errors become
problem details for ``/api/`` and JSON callers and an error page for people; a database
that went away becomes a 503 inviting a retry; anything else is a 500 whose log line has
the type and the stack but never the message (it could quote input).

An error after the request's transaction committed (the database going away while the
tickets mail is sent inline, say) is answered with what was recorded, never with "nothing
was recorded, try again": the route's own answer if it named one (``web.answer_after_commit``),
else a 500 saying the request was recorded and must not be sent again. Imports no domain.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from flask import Flask, g, make_response, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from ticketing.errors import GuichetError
from ticketing.extensions import db
from ticketing.models import forget_committed_writes, has_committed_a_write
from ticketing.web import AFTER_COMMIT_ANSWER, problem, problem_from_error, wants_json

log = logging.getLogger("ticketing")


def _page(status: int, title: str, detail: str) -> tuple[str, int]:
    return render_template("errors/error.html", status=status, title=title, detail=detail), status


def guichet_error(error: GuichetError) -> Any:
    if wants_json():
        return problem_from_error(error)
    return _page(error.status, error.title if error.status >= 500 else _(error.title), error.message)


def http_error(error: HTTPException) -> Any:
    status = error.code or 500
    title = error.name
    detail = _http_detail(status)
    if isinstance(error, CSRFError):
        detail = _("This form expired or was sent from elsewhere. Reload the page and try again.")
    if wants_json():
        code = title.lower().replace(" ", "_")
        response = problem(status, code, title, detail)
        valid_methods = getattr(error, "valid_methods", None)
        if status == 405 and valid_methods:
            response.headers["Allow"] = ", ".join(valid_methods)
        return response
    return _page(status, _http_title(status, title), detail)


def _committed_before_failing() -> bool:
    """Did this request commit a change before the error? (A GET that released expired
    holds on its way did not record anything its reader asked for.)"""
    return request.method not in ("GET", "HEAD", "OPTIONS") and has_committed_a_write(db.session)


def recorded_then_failed() -> Any:
    """The answer to a request that failed after its commit: what the route said it
    recorded, or that it was recorded and must not be sent again."""
    answer = g.get(AFTER_COMMIT_ANSWER)
    if answer is not None:
        return answer()
    detail = _(
        "Your request was recorded, but something failed after that. Do not send it again: "
        "its result will show in a moment."
    )
    if wants_json():
        return problem(500, "recorded_then_failed", "Recorded, then failed", detail)
    return render_template("errors/recorded.html", title=_("Recorded"), detail=detail), 500


def database_unavailable(error: Exception) -> Any:
    """The database is down or restarted: say so and invite a retry, unless this request
    had committed something before it went (then say what was recorded)."""
    db.session.rollback()
    if _committed_before_failing():
        log.warning(
            "database unavailable after the commit at %s %s: %s", request.method, request.url_rule, type(error).__name__
        )
        return recorded_then_failed()
    log.warning("database unavailable at %s %s: %s", request.method, request.url_rule, type(error).__name__)
    detail = _("The service is briefly unavailable. Nothing was recorded; please try again in a moment.")
    if wants_json():
        response = problem(503, "database_unavailable", "Service unavailable", detail)
    else:
        response = make_response(_page(503, _("Service unavailable"), detail))
    response.headers["Retry-After"] = "2"
    return response


def unexpected(error: Exception) -> Any:
    # The type and the stack, never the message: it could quote personal input.
    stack = "".join(traceback.format_tb(error.__traceback__))
    log.error("unexpected %s at %s %s\n%s", type(error).__name__, request.method, request.url_rule, stack)
    if _committed_before_failing():
        return recorded_then_failed()
    detail = _("Something went wrong on our side. Nothing was charged twice; please try again.")
    if wants_json():
        return problem(500, "internal_error", "Internal error", detail)
    return _page(500, _("Internal error"), detail)


def _start_request() -> None:
    """Nothing committed yet, no answer named: tests may run requests in one app context."""
    forget_committed_writes(db.session)
    g.pop(AFTER_COMMIT_ANSWER, None)


def register_error_handlers(app: Flask) -> None:
    app.before_request(_start_request)
    app.register_error_handler(GuichetError, guichet_error)
    app.register_error_handler(HTTPException, http_error)
    for database_error in (OperationalError, InterfaceError):
        app.register_error_handler(database_error, database_unavailable)
    app.register_error_handler(Exception, unexpected)


def _http_title(status: int, english: str) -> str:
    titles = {
        400: _("Bad request"),
        401: _("Authentication required"),
        403: _("Not allowed"),
        404: _("Page not found"),
        405: _("Method not allowed"),
        413: _("Request too large"),
        415: _("Unsupported content type"),
        429: _("Too many requests"),
    }
    return titles.get(status, english)


def _http_detail(status: int) -> str:
    details = {
        400: _("The request could not be understood. If you sent a form, reload the page and try again."),
        401: _("Authentication is required."),
        403: _("You are not allowed to do this."),
        404: _("There is nothing at this address."),
        405: _("This address does not accept this method."),
        413: _("The request is too large."),
        415: _("This content type is not accepted."),
        429: _("Too many requests. Wait a minute and try again."),
    }
    return details.get(status, _("The request could not be completed."))
