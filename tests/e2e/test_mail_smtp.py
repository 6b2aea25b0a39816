"""Order mails through a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import logging
import re
import socket
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import csrf_token, make_app, make_event, post_form
from tests.e2e.conftest import dispose
from ticketing.checkout.models import Order
from ticketing.extensions import db
from ticketing.mail.models import QueuedMail
from ticketing.mail.queue import MAIL_KINDS, deliver_mail
from ticketing.web import link_context

pytestmark = pytest.mark.e2e

LINK = re.compile(r"https?://[^\s\"<>]+/orders/[^\s\"<>]+")


class CollectingHandler:
    """Keeps every envelope; aiosmtpd answers 250 only after this returns."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[misc]
            for envelope in self.envelopes
        ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, CollectingHandler]]:
    handler = CollectingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()  # returns once the server has answered a probe connection
    try:
        yield controller, handler
    finally:
        controller.stop()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but never listening: connecting to it is refused, and nobody can take it."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


def _app(instance: Path, database_url: str, port: int) -> Flask:
    return make_app(
        instance,
        database_url,
        TICKETING_SMTP_HOST="127.0.0.1",
        TICKETING_SMTP_PORT=str(port),
        TICKETING_SMTP_STARTTLS="false",
        TICKETING_SMTP_TIMEOUT="5",
    )


@pytest.fixture
def smtp_app(sqlite_url: str, tmp_path: Path, smtp_server: tuple[Controller, CollectingHandler]) -> Iterator[Flask]:
    app = _app(tmp_path / "instance", sqlite_url, smtp_server[0].port)
    yield app
    dispose(app)


@pytest.fixture
def down_app(sqlite_url: str, tmp_path: Path, closed_port: int) -> Iterator[Flask]:
    app = _app(tmp_path / "instance", sqlite_url, closed_port)
    yield app
    dispose(app)


def _event(app: Flask, title: str, **options: Any) -> tuple[str, str]:
    with app.app_context():
        event = make_event(**options)
        event.title = title
        db.session.commit()
        return str(event.id), str(event.ticket_types[0].id)


def _buy(client: FlaskClient, event_id: str, type_id: str, email_address: str, **kwargs: Any) -> str:
    """Buy one ticket through the pages (paying on the demo page if needed); the order page path."""
    page = f"/events/{event_id}"
    placed = post_form(client, page, f"{page}/orders", {f"qty-{type_id}": "1", "email": email_address}, **kwargs)
    assert placed.status_code == 303, placed.get_data(as_text=True)
    location = urlsplit(placed.headers["Location"]).path
    if location.startswith("/pay/demo/"):
        paid = client.post(location, data={"csrf_token": csrf_token(client, location), "action": "pay"}, **kwargs)
        assert paid.status_code == 302, paid.get_data(as_text=True)
        location = urlsplit(paid.headers["Location"]).path
    assert location.startswith("/orders/")
    return location


def _order_code(order_path: str) -> str:
    return order_path.split("/")[2]


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None, "the mail needs a text/plain and a text/html part"
    return text.get_content(), html.get_content()


def test_each_paid_order_is_mailed_to_its_buyer(
    smtp_app: Flask, smtp_server: tuple[Controller, CollectingHandler]
) -> None:
    handler = smtp_server[1]
    free_event = _event(smtp_app, "Free rehearsal", price_cents=0, fee_cents=0)
    paid_event = _event(smtp_app, "Paid concert")
    client = smtp_app.test_client()

    free_path = _buy(client, *free_event, "free-buyer@example.org")
    paid_path = _buy(client, *paid_event, "paid-buyer@example.org")

    messages = handler.messages()
    assert len(messages) == 2, [m["Subject"] for m in messages]
    expected = [
        (free_path, "free-buyer@example.org", "Free rehearsal"),
        (paid_path, "paid-buyer@example.org", "Paid concert"),
    ]
    for envelope, message, (order_path, buyer, title) in zip(handler.envelopes, messages, expected, strict=True):
        code = _order_code(order_path)
        assert envelope.rcpt_tos == [buyer]
        assert message["To"] == buyer
        # The text and HTML parts as alternatives, beside the event's calendar file.
        assert message.get_content_type() == "multipart/mixed"
        assert [part.get_content_type() for part in message.iter_parts()] == ["multipart/alternative", "text/calendar"]
        # A first mail to an address carries no text an organiser chose in its subject.
        assert code in message["Subject"] and title not in message["Subject"]
        text, html = _parts(message)
        assert title in text and title in html
        links = LINK.findall(text)
        assert links and links[0] in html.replace("&amp;", "&")
        assert urlsplit(links[0]).path == order_path
        order_page = smtp_app.test_client().get(urlsplit(links[0]).path)  # the link alone, no session
        assert order_page.status_code == 200
        assert "Paid" in order_page.get_data(as_text=True)
        assert code in order_page.get_data(as_text=True)


def test_an_order_placed_in_french_is_mailed_in_french(
    smtp_app: Flask, smtp_server: tuple[Controller, CollectingHandler]
) -> None:
    handler = smtp_server[1]
    event = _event(smtp_app, "Concert du soir")
    client = smtp_app.test_client()

    order_path = _buy(client, *event, "acheteuse@example.org", headers={"Accept-Language": "fr"})

    [message] = handler.messages()
    assert message["Content-Language"] == "fr"
    assert _order_code(order_path) in message["Subject"]
    text, html = _parts(message)
    assert "Bonjour" in text and "Bonjour" in html
    assert message["Subject"].startswith("Vos billets (commande ")
    assert '<html lang="fr">' in html


def test_mail_failure_never_undoes_a_paid_order(down_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    buyer = "unreachable-buyer@example.org"
    event = _event(down_app, "Concert without mail")
    client = down_app.test_client()

    order_path = _buy(client, *event, buyer)

    page = client.get(order_path)
    assert page.status_code == 200
    assert "Paid" in page.get_data(as_text=True)
    failures = [r for r in caplog.records if r.levelno >= logging.WARNING and "not sent" in r.getMessage()]
    assert failures, "the failed send must be logged"
    assert any(str(_order_id(down_app, order_path)) in r.getMessage() for r in failures)
    assert all(buyer not in r.getMessage() for r in caplog.records)
    assert all("unreachable-buyer" not in r.getMessage() for r in caplog.records)


def _order_id(app: Flask, order_path: str) -> uuid.UUID:
    with app.app_context():
        return db.session.execute(select(Order.id).where(Order.code == _order_code(order_path))).scalar_one()


def test_a_mail_the_server_refused_is_kept_and_sent_once_it_answers(
    down_app: Flask, sqlite_url: str, tmp_path: Path, smtp_server: tuple[Controller, CollectingHandler]
) -> None:
    event = _event(down_app, "Concert after the outage")
    order_path = _buy(down_app.test_client(), *event, "patient-buyer@example.org")
    with down_app.app_context():
        kept = db.session.execute(select(QueuedMail)).scalar_one()
    # The same database, once the mail server answers again.
    back_up = _app(tmp_path / "instance-back-up", sqlite_url, smtp_server[0].port)

    with back_up.app_context(), link_context(back_up):
        kinds, later = back_up.extensions[MAIL_KINDS], kept.next_attempt_at + dt.timedelta(seconds=1)
        report = deliver_mail(db.session, kinds, back_up.config, back_up.instance_path, later)
        left = db.session.execute(select(QueuedMail)).scalars().all()
    dispose(back_up)

    assert (kept.kind, kept.subject_id, kept.attempts, kept.last_error) == (
        "order_paid",
        _order_id(down_app, order_path),
        1,
        "MailFailed",
    )
    assert kept.claimed_until is None and kept.next_attempt_at - kept.created_at >= dt.timedelta(minutes=1)
    assert report.sent == 1 and left == []
    [message] = smtp_server[1].messages()
    assert message["To"] == "patient-buyer@example.org"
    assert _order_code(order_path) in message["Subject"]
