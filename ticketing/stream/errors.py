"""Why a stream link, a screen or a streaming-server request is refused.

Every refusal names its reason with a stable code: ``invalid``, ``not_yet``, ``expired``,
``revoked``; screens add ``screen_limit``, ``playing_elsewhere`` and ``session_expired``.
"""

from __future__ import annotations

import datetime as dt

from ticketing.errors import N_, Conflict, Forbidden, GuichetError, NotFound

REASONS = ("invalid", "not_yet", "expired", "revoked")


class StreamRefused(GuichetError):
    """A stream token or viewer credential that does not open the stream now."""

    status = 403
    code = "invalid"
    title = N_("Stream not available")

    def __init__(self, reason: str, message: str, *, opens_at: dt.datetime | None = None) -> None:
        assert reason in REASONS
        super().__init__(message, code=reason)
        self.reason = reason
        self.opens_at = opens_at
        self.status = {"invalid": 404, "not_yet": 403, "expired": 410, "revoked": 410}[reason]


class ScreenLimit(Conflict):
    code = "screen_limit"
    title = N_("Already playing")


class PlayingElsewhere(Conflict):
    code = "playing_elsewhere"
    title = N_("Playing on another screen")


class SessionExpired(Forbidden):
    code = "session_expired"
    title = N_("Session expired")


class PublisherKeyUnset(NotFound):
    code = "no_stream_name"
    title = N_("No stream name")
