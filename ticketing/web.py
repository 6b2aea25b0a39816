"""HTTP plumbing shared by the blueprints: content negotiation, JSON bodies, bearer
tokens, problem details, absolute links. Imports no domain."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest as MalformedJSON

from ticketing.errors import BadRequest, GuichetError

PROBLEM_TYPE = "urn:guichet:problem:"

log = logging.getLogger(__name__)


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json", "application/problem+json"])
    return best in ("application/json", "application/problem+json")


def json_body() -> Any:
    """The parsed JSON body; a clear 400 when it is missing, not JSON, or malformed."""
    if not request.is_json:
        raise BadRequest(_("Send a JSON body with 'Content-Type: application/json'."), code="not_json")
    try:
        # Not ``silent=True``: it would answer ``null`` and broken JSON alike with None.
        return request.get_json()
    except (MalformedJSON, RecursionError):  # RecursionError: "[[[[...", nested too deep
        raise BadRequest(_("The body is not valid JSON."), code="malformed_json") from None


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> Response:
    """An RFC 9457 problem details response."""
    body = {"type": PROBLEM_TYPE + code, "title": title, "status": status, "detail": detail, "code": code}
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def problem_from_error(error: GuichetError) -> Response:
    extra: dict[str, Any] = dict(error.extra)
    if error.errors:
        extra["errors"] = error.errors
    response = problem(error.status, error.code, error.title, error.message, **extra)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="guichet"'
    return response


def external_url(endpoint: str, **values: Any) -> str:
    """An absolute link for mails and payment redirects.

    ``TICKETING_BASE_URL`` wins when set (production requires it), so links are right
    behind a proxy and from the CLI. Without it (development, tests) the link follows the
    request's host, which ``refuse_unknown_host`` has limited to ``TICKETING_ALLOWED_HOSTS``:
    a client naming another host in ``Host`` never gets a link to it mailed to someone.
    """
    base = current_app.config.get("BASE_URL")
    if base:
        return base + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


def host_name(host: str) -> str:
    """The name part of a ``Host`` value, in lower case: ``[::1]:5000`` gives ``[::1]``."""
    host = host.lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.partition(":")[0]


def refuse_unknown_host() -> None:
    """``before_request`` when ``TICKETING_BASE_URL`` is unset: links follow the request's
    host then, so a request to any host outside ``TICKETING_ALLOWED_HOSTS`` is refused
    whole (400), never answered with a link, or a page, naming that host."""
    if host_name(request.host) not in current_app.config["ALLOWED_HOSTS"]:
        log.warning("request refused: its host is not in TICKETING_ALLOWED_HOSTS (set it, or TICKETING_BASE_URL)")
        raise BadRequest(_("This site does not answer to this host name."), code="unknown_host")


def link_context(app: Flask) -> AbstractContextManager[Any]:
    """A request context for building links outside a request (CLI commands, the mail worker).

    ``url_for`` needs one; its host is ``TICKETING_BASE_URL``, which must be set wherever
    mails are sent outside requests, or their links name the first allowed host (localhost).
    """
    return app.test_request_context(base_url=app.config.get("BASE_URL") or f"http://{app.config['ALLOWED_HOSTS'][0]}/")


AFTER_COMMIT_ANSWER = "guichet_after_commit_answer"


def answer_after_commit(answer: Callable[[], ResponseReturnValue]) -> None:
    """What this request answers if it fails after its service committed.

    The work that follows a commit (mail sent inline, refunds sent to the provider, a
    re-read) can find the database gone; the error handlers then answer this, which says
    what was recorded, instead of "nothing was recorded". They use it only once a write
    transaction of this request committed, so a route may name it before calling its
    service: a failure before the commit is still answered "nothing was recorded".
    """
    setattr(g, AFTER_COMMIT_ANSWER, answer)


def api_time(value: dt.datetime | None) -> str | None:
    """An instant as the API writes it: ISO 8601 in UTC with a ``Z``."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None
