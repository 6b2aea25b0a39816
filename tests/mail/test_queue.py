"""The mail outbox: queued with the payment, sent inline or by ``flask send-mail``, claimed
once, retried with backoff, given up after 20 attempts, dropped after an erasure."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import logging
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

import config
from tests.checkout.test_orders import api_order
from tests.conftest import MAIL_WORKER, csrf_token, outbox, published_event, queued_mail, run_together
from tests.privacy.helpers import erase_by_api
from ticketing.checkout.models import Order
from ticketing.extensions import db
from ticketing.mail.models import QueuedMail
from ticketing.mail.queue import (
    MAIL_KINDS,
    MAX_ATTEMPTS,
    DeliveryReport,
    deliver_mail,
    enqueue_mail,
    follow_mail_queue,
    retry_delay,
)
from ticketing.models import utcnow
from ticketing.web import link_context


def deliver(app, now=None, **options) -> DeliveryReport:  # type: ignore[no-untyped-def]
    """One delivery run as the worker does it, at ``now``."""
    with app.app_context(), link_context(app):
        kinds = app.extensions[MAIL_KINDS]
        return deliver_mail(db.session, kinds, app.config, app.instance_path, now or utcnow(), **options)


def job(app) -> QueuedMail:  # type: ignore[no-untyped-def]
    with app.app_context():
        return db.session.execute(select(QueuedMail)).scalar_one()


def order_id(app, code: str) -> uuid.UUID:  # type: ignore[no-untyped-def]
    with app.app_context():
        return db.session.execute(select(Order.id).where(Order.code == code)).scalar_one()


def free_order(app, client, **options):  # type: ignore[no-untyped-def]
    event = published_event(app, price_cents=0, fee_cents=0)
    response = api_order(client, event, **options)
    assert response.status_code == 201
    return response.get_json()


def block_outbox(app) -> Path:  # type: ignore[no-untyped-def]
    """A file where the outbox folder should be: every send fails until it is removed."""
    blocker = Path(app.instance_path) / "outbox"
    blocker.write_text("not a folder")
    return blocker


def parse(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[return-value]


def test_free_order_in_inline_mode_is_mailed_at_once_and_leaves_no_row(app, client):
    free_order(app, client)

    assert len(outbox(app)) == 1
    assert queued_mail(app) == []


@MAIL_WORKER
def test_worker_mode_queues_the_tickets_mail_and_send_mail_sends_it_unchanged(app, client, runner):
    event = published_event(app, capacity=5)
    placed = api_order(client, event, quantity=2).get_json()
    pay_url = placed["payment"]["url"].replace("http://localhost", "")
    token = csrf_token(client, pay_url)
    client.post(pay_url, data={"csrf_token": token, "action": "pay"})
    client.post(pay_url, data={"csrf_token": token, "action": "pay"})  # paying twice owes no second mail
    queued = queued_mail(app)
    nothing_sent_yet = outbox(app)

    result = runner.invoke(args=["send-mail"])

    assert queued == [("order_paid", order_id(app, placed["code"]))]
    assert nothing_sent_yet == []
    assert result.exit_code == 0, result.output
    assert "1 sent, 0 failed (retried later), 0 given up" in result.output
    assert queued_mail(app) == []
    [path] = outbox(app)
    message = parse(path)
    assert message["To"] == "ana@example.org" and placed["code"] in message["Subject"]
    assert message["Content-Language"] == "en"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert f"http://localhost/orders/{placed['code']}/{placed['access_token']}" in text
    images = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert len(images) == 2
    assert all(f"cid:{image['Content-ID'].strip('<>')}" in html for image in images)


@MAIL_WORKER
def test_worker_mode_keeps_the_buyers_language(app, client, runner):
    event = published_event(app, price_cents=0, fee_cents=0)
    body = {
        "event_id": str(event.id),
        "items": [{"ticket_type_id": str(event.type_id), "quantity": 1}],
        "email": "acheteuse@example.org",
    }
    client.post("/api/v1/orders", json=body, headers={"Accept-Language": "fr"})

    runner.invoke(args=["send-mail"])

    [path] = outbox(app)
    message = parse(path)
    assert message["Content-Language"] == "fr"
    assert message["Subject"].startswith("Vos billets (commande ")


@MAIL_WORKER
def test_failed_send_is_kept_and_sent_by_a_run_after_its_backoff(app, client):
    free_order(app, client)
    blocker = block_outbox(app)
    started = utcnow()

    failed = deliver(app, now=started)
    kept = job(app)
    blocker.unlink()
    too_early = deliver(app, now=started + dt.timedelta(seconds=59))
    after_backoff = deliver(app, now=started + dt.timedelta(seconds=61))

    assert (failed.failed, failed.sent) == (1, 0)
    assert (kept.attempts, kept.last_error, kept.claimed_until) == (1, "MailFailed", None)
    assert kept.next_attempt_at == started + dt.timedelta(minutes=1)
    assert too_early.handled == 0
    assert after_backoff.sent == 1
    assert queued_mail(app) == [] and len(outbox(app)) == 1


def test_retry_delay_doubles_from_a_minute_up_to_six_hours():
    delays = [retry_delay(attempt) for attempt in (1, 2, 3, 9, 10, MAX_ATTEMPTS)]

    minutes = [delay / dt.timedelta(minutes=1) for delay in delays]
    assert minutes == [1, 2, 4, 256, 360, 360]


@MAIL_WORKER
def test_a_mail_failing_for_the_twentieth_time_is_given_up_and_kept(app, client, runner):
    free_order(app, client)
    with app.app_context():
        db.session.execute(update(QueuedMail).values(attempts=MAX_ATTEMPTS - 1))
        db.session.commit()
    block_outbox(app)

    result = runner.invoke(args=["send-mail"])
    much_later = deliver(app, now=utcnow() + dt.timedelta(days=30))

    assert result.exit_code == 0, result.output
    assert "0 sent, 0 failed (retried later), 1 given up" in result.output
    assert f"1 given up after {MAX_ATTEMPTS} attempts" in result.output
    assert job(app).attempts == MAX_ATTEMPTS
    assert much_later.handled == 0


@MAIL_WORKER
def test_concurrent_deliveries_send_a_job_once(app, client):
    free_order(app, client)
    job_id = job(app).id
    reports: list[DeliveryReport] = []

    def work(n: int) -> None:
        # One caller names the job, as a request sending inline does; the others are workers.
        reports.append(deliver(app, ids=[job_id]) if n == 0 else deliver(app))

    run_together(6, work)

    assert sum(report.sent for report in reports) == 1
    assert len(outbox(app)) == 1
    assert queued_mail(app) == []


@MAIL_WORKER
def test_erased_buyers_queued_mail_is_dropped_not_sent(app, client, runner, caplog):
    caplog.set_level(logging.INFO)
    placed = free_order(app, client, email_address="gone@example.org")
    assert erase_by_api(client, placed).status_code == 200

    result = runner.invoke(args=["send-mail"])

    assert result.exit_code == 0, result.output
    assert "0 sent, 0 failed (retried later), 0 given up, 1 dropped" in result.output
    assert outbox(app) == [] and queued_mail(app) == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@MAIL_WORKER
def test_a_kind_nobody_renders_is_kept_and_named_as_the_error(app):
    with app.app_context():
        enqueue_mail(db.session, "from_a_newer_version", uuid.uuid4(), utcnow())
        db.session.commit()

    report = deliver(app)

    assert report.failed == 1
    assert (job(app).attempts, job(app).last_error) == (1, "UnknownMailKind")


def test_mail_delivery_setting_is_checked_and_named():
    with pytest.raises(config.ConfigError, match="TICKETING_MAIL_DELIVERY"):
        config.TestingConfig({"TICKETING_MAIL_DELIVERY": "later"})

    assert config.TestingConfig({"TICKETING_MAIL_DELIVERY": "Worker"}).MAIL_DELIVERY == "worker"
    assert config.TestingConfig({}).MAIL_DELIVERY == "inline"


def test_the_worker_loop_survives_a_database_outage_and_stops_when_asked(app):
    stop = threading.Event()
    rounds: list[str] = []

    def deliver_round() -> DeliveryReport:
        rounds.append("round")
        if len(rounds) == 1:
            raise OperationalError("SELECT", {}, ConnectionError("server closed the connection"))
        if len(rounds) == 3:
            stop.set()
        return DeliveryReport(sent=2)

    with app.app_context():
        total = follow_mail_queue(db.session, deliver_round, 0, stop)

    assert len(rounds) == 3
    assert total.sent == 4


@MAIL_WORKER
def test_send_mail_follow_sends_as_mail_arrives_and_stops_on_sigterm(app, client, runner):
    free_order(app, client)

    finished = threading.Event()

    def stop_once_sent() -> None:
        deadline = time.monotonic() + 30
        while not outbox(app) and not finished.is_set() and time.monotonic() < deadline:
            finished.wait(0.01)  # polling the outbox itself: the worker writes there
        if not finished.is_set():
            os.kill(os.getpid(), signal.SIGTERM)  # handled by send-mail: it stops after this round

    watcher = threading.Thread(target=stop_once_sent)
    watcher.start()
    try:
        result = runner.invoke(args=["send-mail", "--follow", "--interval", "0.1"])
    finally:
        finished.set()
        watcher.join(timeout=30)

    assert result.exit_code == 0, result.output
    assert "Stopped. In all: 1 sent" in result.output
    assert queued_mail(app) == []


def test_the_first_mail_to_an_address_names_no_organiser_text_and_a_returning_one_does(app, client):
    event = published_event(app, price_cents=0, fee_cents=0)
    with app.app_context():
        from ticketing.catalog.models import Event

        db.session.get(Event, event.id).title = "Cheap pills at evil.example"
        db.session.commit()
    body = {
        "event_id": str(event.id),
        "items": [{"ticket_type_id": str(event.type_id), "quantity": 1}],
        "email": "first.time@example.org",
    }

    client.post("/api/v1/orders", json=body)
    client.post("/api/v1/orders", json={**body, "email": "First.Time@example.org"})

    first, second = (parse(path) for path in outbox(app))
    assert "evil.example" not in first["Subject"] and first["Subject"].startswith("Your tickets (order ")
    assert "Cheap pills at evil.example" in second["Subject"]
