"""The one error hierarchy. Imports no domain.

Each error carries a stable ``code`` (for programs), an HTTP ``status`` and a message
that is safe to show to anyone: no personal data, no secret, nothing that tells whether
an email address is known.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext


def N_(message: str) -> str:
    """Marks a title for translation without translating it here (no app context yet)."""
    return message


class GuichetError(Exception):
    status = 400
    code = "bad_request"
    title = N_("Bad request")

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        errors: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or gettext(self.title)
        if code:
            self.code = code
        self.errors = errors or {}
        self.extra = extra or {}
        super().__init__(self.message)


class Invalid(GuichetError):
    """Input that parses but breaks a rule; ``errors`` maps each field to its message."""

    status = 422
    code = "invalid"
    title = N_("Invalid input")


class BadRequest(GuichetError):
    """Input that cannot even be parsed (malformed JSON, wrong content type)."""

    status = 400
    code = "bad_request"
    title = N_("Malformed request")


class Unauthorized(GuichetError):
    status = 401
    code = "unauthorized"
    title = N_("Authentication required")


class Forbidden(GuichetError):
    status = 403
    code = "forbidden"
    title = N_("Not allowed")


class NotFound(GuichetError):
    status = 404
    code = "not_found"
    title = N_("Not found")


class Conflict(GuichetError):
    status = 409
    code = "conflict"
    title = N_("Conflict")


class SoldOut(Conflict):
    code = "sold_out"
    title = N_("Sold out")


class Unavailable(GuichetError):
    status = 503
    code = "unavailable"
    title = N_("Service unavailable")
