"""Livestream access: stream links, the watch page, viewer sessions and the streaming gate.

``init_app`` wires the domain into an app: its blueprints, its keys and policy, and the
"watch" link that checkout shows beside each stream ticket (through checkout's ticket-link
registry; checkout does not import this package).
"""

from __future__ import annotations

import datetime as dt

from flask import Flask, current_app

from ticketing.checkout.models import Ticket
from ticketing.checkout.ticket_links import register_ticket_link
from ticketing.crypto.stream import stream_keys
from ticketing.extensions import csrf, limiter
from ticketing.stream.services import StreamPolicy, stream_link_token, stream_window
from ticketing.web import external_url


def watch_link(ticket: Ticket) -> str | None:
    token = stream_link_token(current_app.extensions["guichet.stream_keys"], ticket)
    return external_url("stream.watch_page", token=token) if token else None


def watch_link_opens_at(ticket: Ticket) -> dt.datetime:
    return stream_window(ticket.order.event, current_app.extensions["guichet.stream_policy"])[0]


def init_app(app: Flask) -> None:
    from ticketing.stream.api import bp as stream_api
    from ticketing.stream.gate import bp as stream_gate
    from ticketing.stream.routes import bp as stream_pages

    ring = app.extensions["guichet.keyring"]
    app.extensions["guichet.stream_keys"] = stream_keys(ring.stream_secrets)
    app.extensions["guichet.stream_policy"] = StreamPolicy(
        opens_before=dt.timedelta(minutes=app.config["STREAM_OPENS_MINUTES"]),
        grace=dt.timedelta(minutes=app.config["STREAM_GRACE_MINUTES"]),
        secure_link_secret=app.config.get("STREAM_SECURE_LINK_SECRET"),
        signed_url_seconds=app.config["STREAM_SIGNED_URL_SECONDS"],
        heartbeat_seconds=app.config["STREAM_HEARTBEAT_SECONDS"],
    )
    # The gate answers the streaming server, not a browser: no CSRF token, no rate limit.
    # The watch calls are JSON POSTs guarded by the token in the URL and a SameSite=Strict cookie.
    for blueprint in (stream_gate, stream_pages, stream_api):
        csrf.exempt(blueprint)
        app.register_blueprint(blueprint)
    limiter.exempt(stream_gate)
    register_ticket_link(app, "watch", watch_link, opens_at=watch_link_opens_at)
