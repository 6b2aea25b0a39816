"""A live server to fill for a browser test: events, orders, their mails (issue 18's tests)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import update
from werkzeug.serving import make_server

from tests.conftest import make_event, outbox
from tests.e2e.scanning import read_mail
from ticketing.catalog.models import Event
from ticketing.extensions import db

STREAM_URL = "http://127.0.0.1:9/hls/{credential}/show/index.m3u8"  # nothing answers: no video needed
TIMEOUT_MS = 10_000


@dataclass
class Shop:
    """A live server and the means to fill it: events, orders and their mails."""

    app: Flask
    url: str
    organizer_token: str
    organizer_id: uuid.UUID
    orders_placed: int = 0

    def event(self, **options: Any) -> tuple[str, str]:
        """A published event (``make_event`` options, plus columns to set); its id and type id."""
        columns = {k: options.pop(k) for k in list(options) if k not in MAKE_EVENT_OPTIONS}
        with self.app.app_context():
            from ticketing.catalog.models import Organizer

            event = make_event(organizer=db.session.get(Organizer, self.organizer_id), **options)
            event_id, type_id = event.id, event.ticket_types[0].id
            starts = event.starts_at
            values = {"doors_at": starts - dt.timedelta(minutes=30), "venue_city": "Toulouse", **columns}
            if event.mode != "in_person":
                values.setdefault("stream_url", STREAM_URL)
                values.setdefault("stream_name", f"show{str(event_id)[:8]}")
            db.session.execute(update(Event).where(Event.id == event_id).values(**values))
            db.session.commit()
        return str(event_id), str(type_id)

    def free_order(self, event_id: str, type_id: str, quantity: int = 1, language: str = "en") -> dict[str, Any]:
        """An order placed through the API (free, so paid at once and its mail sent)."""
        self.orders_placed += 1
        body = {"event_id": event_id, "items": [{"ticket_type_id": type_id, "quantity": quantity}]}
        body["email"] = f"buyer{self.orders_placed}@example.org"
        client = self.app.test_client()
        placed = client.post(
            "/api/v1/orders",
            json=body,
            headers={"Accept-Language": language},
            environ_base={"REMOTE_ADDR": f"10.18.0.{self.orders_placed}"},
        ).get_json()
        assert "code" in placed, placed
        return {"code": placed["code"], "path": f"/orders/{placed['code']}/{placed['access_token']}"}

    def mails(self) -> list[Any]:
        return [read_mail(path) for path in outbox(self.app)]


MAKE_EVENT_OPTIONS = {
    "capacity",
    "price_cents",
    "fee_cents",
    "max_per_order",
    "ask_name",
    "ask_postcode",
    "status",
    "starts_in",
    "mode",
    "currency",
    "organizer",
    "sale_starts_at",
}


def serve(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="guichet-day-of", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def browser_context(browser: Any, width: int = 390, *, language: str = "en", javascript: bool = True) -> Any:
    context = browser.new_context(
        viewport={"width": width, "height": 740},
        locale=language,
        extra_http_headers={"Accept-Language": language},
        java_script_enabled=javascript,
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context
