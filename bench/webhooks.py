"""Stripe webhooks under load: signed checkout.session.completed deliveries, on PostgreSQL under gunicorn.

Run: ``.venv/bin/python bench/webhooks.py [--events 5000] [--clients 20] [--workers 4]``.

What it does, in one run:

1. (Re)creates the database ``guichet_bench_stripe`` on the local PostgreSQL, migrates it,
   and places pending orders (1 to 3 tickets each) through the real checkout service, as
   Stripe-paid orders waiting for their webhook.
2. Builds one ``checkout.session.completed`` event per order, shaped like Stripe's, plus
   10 % redeliveries of the same events (same id, same payload), shuffled so that repeats
   often arrive at the same moment as their original; each is signed exactly as Stripe
   signs (``t=<ts>,v1=HMAC-SHA256(secret, "<ts>.<payload>")``).
3. Serves ``wsgi:app`` under gunicorn on 127.0.0.1 with the stripe provider (its API base
   points at a closed local port: paying an order calls nothing at Stripe) and
   ``TICKETING_MAIL_DELIVERY=worker``, as a festival runs it (the webhook queues the
   tickets mail, a worker sends it), and sends every delivery from concurrent keep-alive
   clients (asyncio, raw HTTP/1.1).
4. Reads the database afterwards: every order paid exactly once, with exactly its number of
   tickets, every event recorded once, stock counters right, one tickets mail queued per
   order.
5. Drains the mail queue with the worker's own delivery function (``deliver_mail``, in
   this process, into the instance outbox) and times it: mails/s, CPU per mail, and every
   order mailed exactly once (read from the subjects of the ``.eml`` files).

It is a measurement, not a test: the exit code is 0 whatever the figures, non-zero only
when the run itself broke. Everything it starts is stopped by pid, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import email.parser
import email.policy
import hashlib
import hmac
import json
import os
import platform
import random
import re
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from harness import (  # noqa: E402
    GunicornServer,
    RunBroken,
    cpu_model,
    empty_database,
    free_port,
    package_version,
    percentile,
    production_environ,
)

DATABASE = "guichet_bench_stripe"
SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432"
DATABASE_URL = f"{SERVER_URL}/{DATABASE}"
HOST = "127.0.0.1"
WEBHOOK_SECRET = "whsec_bench_" + uuid.uuid4().hex
DUPLICATE_SHARE = 0.10
PRICE_CENTS = 1500
FEE_CENTS = 100
REQUEST_TIMEOUT = 30.0

TARGET_EVENTS_PER_SECOND = 300.0
TARGET_DOUBLE_ISSUES = 0


def server_version() -> str:
    engine = sa.create_engine(f"{SERVER_URL}/postgres")
    try:
        with engine.connect() as connection:
            return str(connection.execute(sa.text("SHOW server_version")).scalar_one())
    finally:
        engine.dispose()


def bench_environ(instance: Path) -> dict[str, str]:
    return production_environ(
        instance,
        DATABASE_URL,
        TICKETING_RATELIMIT_ENABLED="false",
        TICKETING_BASE_URL="https://tickets.example.org",
        # Webhooks queue the tickets mail; the drain after the timed phase sends it.
        TICKETING_MAIL_DELIVERY="worker",
        STRIPE_SECRET_KEY="sk_test_bench",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        # Nothing listens there: the run proves that paying orders never calls Stripe.
        STRIPE_API_BASE=f"http://{HOST}:{free_port()}",
    )


def recreate_database() -> None:
    empty_database(SERVER_URL, DATABASE)


@dataclass(frozen=True)
class PendingOrder:
    order_id: str
    session_id: str
    quantity: int
    total_cents: int
    currency: str


def seed_orders(app: Any, count: int) -> tuple[str, list[PendingOrder]]:
    """Pending orders placed through ``place_order`` (vault, holds and all), as at a sale."""
    import click
    from flask_migrate import upgrade

    from ticketing.catalog.models import Event, TicketType
    from ticketing.catalog.services import create_organizer
    from ticketing.checkout.orders import OrderItem, OrderRequest, place_order
    from ticketing.extensions import db, keyring
    from ticketing.models import utcnow

    rng = random.Random(5)  # noqa: S311 - a benchmark's mix, not a secret
    quantities = [rng.choice((1, 1, 2, 3)) for _ in range(count)]
    orders: list[PendingOrder] = []
    with app.app_context():
        upgrade()
        now = utcnow()
        organizer, _token = create_organizer(db.session, "Bench organiser", now)
        event = Event(
            organizer_id=organizer.id,
            title="Webhook benchmark",
            venue_name="Salle Bench",
            starts_at=now + dt.timedelta(days=30),
            ends_at=now + dt.timedelta(days=30, hours=3),
            status="published",
            currency="EUR",
        )
        db.session.add(event)
        db.session.flush()
        ticket_type = TicketType(
            event_id=event.id,
            name="Standard",
            price_cents=PRICE_CENTS,
            fee_cents=FEE_CENTS,
            capacity=sum(quantities),
            max_per_order=10,
        )
        db.session.add(ticket_type)
        db.session.commit()
        event_id, type_id = str(event.id), ticket_type.id
        with click.progressbar(quantities, label="Placing pending orders") as bar:
            for index, quantity in enumerate(bar):
                placed = place_order(
                    db.session,
                    keyring(),
                    event_id,
                    OrderRequest((OrderItem(type_id, quantity),), f"bench-{index}@example.org"),
                    locale="en",
                    now=now,
                    hold_minutes=60,
                    provider="stripe",
                )
                session_id = f"cs_test_bench_{index:06d}"
                orders.append(PendingOrder(str(placed.order.id), session_id, quantity, placed.order.total_cents, "eur"))
        db.session.remove()
        db.engine.dispose()
    return event_id, orders


def completed_event(order: PendingOrder) -> bytes:
    """A checkout.session.completed event as Stripe sends it (the fields Guichet reads and more)."""
    body = {
        "id": f"evt_bench_{uuid.uuid4().hex}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": order.session_id,
                "object": "checkout.session",
                "amount_subtotal": order.total_cents,
                "amount_total": order.total_cents,
                "currency": order.currency,
                "customer": None,
                "customer_details": {"email": "buyer@example.org", "name": None, "address": None},
                "metadata": {"order_id": order.order_id},
                "mode": "payment",
                "payment_intent": f"pi_bench_{order.order_id[:8]}",
                "payment_status": "paid",
                "status": "complete",
            }
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def signature(payload: bytes, timestamp: int) -> str:
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def signed_request(payload: bytes, port: int, timestamp: int) -> bytes:
    head = [
        "POST /payments/stripe/webhook HTTP/1.1",
        f"Host: {HOST}:{port}",
        "User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "Content-Type: application/json; charset=utf-8",
        f"Stripe-Signature: {signature(payload, timestamp)}",
        f"Content-Length: {len(payload)}",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + payload


@dataclass
class Answer:
    status: int
    seconds: float
    body: bytes


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip().lower()
    if "content-length" not in headers:
        return status, False, await reader.read()
    body = await reader.readexactly(int(headers["content-length"]))
    return status, headers.get("connection") != "close", body


async def _fire(port: int, requests: list[bytes], clients: int) -> list[Answer]:
    answers: list[Answer] = []
    queue = iter(requests)

    async def client() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        for request in queue:
            started = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(HOST, port)
                assert reader is not None
                writer.write(request)
                status, keep_alive, body = await asyncio.wait_for(_read_response(reader), REQUEST_TIMEOUT)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
                answers.append(Answer(0, time.perf_counter() - started, type(error).__name__.encode()))
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            answers.append(Answer(status, time.perf_counter() - started, body))
            if not keep_alive:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return answers


@dataclass
class Check:
    orders: int
    orders_paid: int
    wrong_ticket_count: int
    double_issues: int
    tickets: int
    tickets_expected: int
    events_recorded: int
    sold: int
    reserved: int
    mails_queued: int
    orders_queued_once: int


def check_database(event_id: str, orders: list[PendingOrder]) -> Check:
    engine = sa.create_engine(DATABASE_URL)
    try:
        with engine.connect() as connection:
            tickets_by_order = dict(
                connection.execute(sa.text("SELECT order_id, count(*) FROM ticket GROUP BY order_id")).all()
            )
            statuses = dict(connection.execute(sa.text("SELECT id, status FROM orders")).all())
            events = connection.execute(sa.text("SELECT count(*) FROM payment_event")).scalar_one()
            sold, reserved = connection.execute(
                sa.text("SELECT sum(sold), sum(reserved) FROM ticket_type WHERE event_id = :e"), {"e": event_id}
            ).one()
            queued_by_order = dict(
                connection.execute(
                    sa.text("SELECT subject_id, count(*) FROM mail_queue WHERE kind = 'order_paid' GROUP BY subject_id")
                ).all()
            )
            queued = connection.execute(sa.text("SELECT count(*) FROM mail_queue")).scalar_one()
    finally:
        engine.dispose()
    wrong = double = 0
    for order in orders:
        issued = tickets_by_order.get(uuid.UUID(order.order_id), 0)
        wrong += issued != order.quantity
        double += max(0, issued - order.quantity)
    return Check(
        orders=len(orders),
        orders_paid=sum(1 for status in statuses.values() if status == "paid"),
        wrong_ticket_count=wrong,
        double_issues=double,
        tickets=sum(tickets_by_order.values()),
        tickets_expected=sum(order.quantity for order in orders),
        events_recorded=int(events),
        sold=int(sold or 0),
        reserved=int(reserved or 0),
        mails_queued=int(queued),
        orders_queued_once=sum(1 for order in orders if queued_by_order.get(uuid.UUID(order.order_id)) == 1),
    )


@dataclass
class Drain:
    sent: int
    failed: int
    dropped: int
    left: int  # rows still in mail_queue afterwards
    seconds: float
    cpu_seconds: float
    mails: int  # .eml files in the outbox
    orders_mailed_once: int

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


DRAIN_BATCH = 500
ORDER_IN_SUBJECT = re.compile(r"\(order ([A-Z0-9]{5}-[A-Z0-9]{5})\)")


def drain_mail(app: Any, orders: list[PendingOrder], instance: Path) -> Drain:
    """Send the queued mails as ``flask send-mail`` does, in this process, and time it.

    Batches keep each claim's ``now`` fresh, as the command does per mail.
    """
    from ticketing.checkout.models import Order
    from ticketing.extensions import db
    from ticketing.mail.queue import DeliveryReport, deliver_mail, mail_kinds
    from ticketing.models import utcnow
    from ticketing.web import link_context

    report = DeliveryReport()
    with app.app_context(), link_context(app):
        started, cpu_started = time.perf_counter(), time.process_time()
        while True:
            batch = deliver_mail(db.session, mail_kinds(), app.config, app.instance_path, utcnow(), limit=DRAIN_BATCH)
            report += batch
            if batch.handled + batch.skipped == 0:
                break
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        left = db.session.execute(sa.text("SELECT count(*) FROM mail_queue")).scalar_one()
        codes = dict(db.session.execute(sa.select(Order.id, Order.code)).all())
        db.session.remove()
        db.engine.dispose()
    mails = sorted((instance / "outbox").glob("*.eml")) if (instance / "outbox").is_dir() else []
    parser = email.parser.BytesHeaderParser(policy=email.policy.default)
    mailed: dict[str, int] = {}
    for path in mails:
        with path.open("rb") as handle:
            match = ORDER_IN_SUBJECT.search(str(parser.parse(handle)["Subject"]))
        if match:
            mailed[match.group(1)] = mailed.get(match.group(1), 0) + 1
    return Drain(
        sent=report.sent,
        failed=report.failed + report.given_up,
        dropped=report.dropped,
        left=int(left),
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        mails=len(mails),
        orders_mailed_once=sum(1 for order in orders if mailed.get(codes[uuid.UUID(order.order_id)]) == 1),
    )


CPU_WARMUP = 10
CPU_SAMPLE = 200


def app_cpu_per_event(app: Any) -> float:
    """CPU milliseconds one delivery costs the app process, in process (no HTTP server, no client),
    configured as the server was: the tickets mail is queued, not sent (the drain's own
    figure is the sending)."""
    _event_id, orders = seed_orders(app, CPU_WARMUP + CPU_SAMPLE)
    payloads = [completed_event(order) for order in orders]
    client = app.test_client()
    timestamp = int(time.time())

    def deliver(payload: bytes) -> None:
        headers = {"Stripe-Signature": signature(payload, timestamp), "Content-Type": "application/json"}
        response = client.post("/payments/stripe/webhook", data=payload, headers=headers)
        if response.status_code != 200:
            raise RunBroken(f"in-process webhook answered {response.status_code}")

    for payload in payloads[:CPU_WARMUP]:
        deliver(payload)
    started = time.process_time()
    for payload in payloads[CPU_WARMUP:]:
        deliver(payload)
    return (time.process_time() - started) / CPU_SAMPLE * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="deliveries in all, duplicates included")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", default="sync", choices=("sync", "gthread"))
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    unique = round(args.events * (1 - DUPLICATE_SHARE))
    duplicates = args.events - unique
    with tempfile.TemporaryDirectory(prefix="guichet-bench-stripe-") as folder:
        instance = Path(folder) / "instance"
        environ = bench_environ(instance)
        os.environ.update({k: v for k, v in environ.items() if k.startswith(("TICKETING_", "STRIPE_"))})
        recreate_database()
        from config import ProductionConfig
        from ticketing import create_app

        app = create_app(ProductionConfig(environ))
        started = time.perf_counter()
        event_id, orders = seed_orders(app, unique)
        print(f"seeded {len(orders)} pending orders in {time.perf_counter() - started:.1f} s")

        rng = random.Random(7)  # noqa: S311
        payloads = [completed_event(order) for order in orders]
        # Redeliveries land near their original, so many race it on another worker.
        deliveries: list[bytes] = list(payloads)
        for original in rng.sample(range(len(payloads)), duplicates):
            deliveries.insert(min(len(deliveries), original + rng.randint(0, args.clients)), payloads[original])

        gunicorn_args = ["-w", str(args.workers), "-k", args.worker_class, "--timeout", "30"]
        if args.worker_class == "gthread":
            gunicorn_args += ["--threads", str(args.threads)]
        server = GunicornServer("webhooks", "wsgi:app", ROOT, environ, Path(folder) / "gunicorn.log", gunicorn_args)
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            server.start()
            server.wait_ready(expected_workers=args.workers)
            timestamp = int(time.time())
            requests = [signed_request(payload, server.port, timestamp) for payload in deliveries]
            wall_start = time.perf_counter()
            answers = asyncio.run(_fire(server.port, requests, args.clients))
            wall = time.perf_counter() - wall_start
        finally:
            server.stop()
            signal.signal(signal.SIGINT, previous)
        check = check_database(event_id, orders)
        drain = drain_mail(app, orders, instance)
        cpu_per_event = app_cpu_per_event(app)

    statuses: dict[int, int] = {}
    for answer in answers:
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
    acknowledged_duplicates = sum(1 for a in answers if a.status == 200 and b'"duplicate":true' in a.body)
    latencies_ms = [a.seconds * 1000 for a in answers]
    rate = len(answers) / wall

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    print()
    print("Stripe webhook benchmark (bench/webhooks.py)")
    print(f"  machine        {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"  database       PostgreSQL {server_version()} ({DATABASE}, loopback)")
    print(
        f"  stack          gunicorn {package_version('gunicorn')} -w {args.workers} -k {args.worker_class}"
        f"{f' --threads {args.threads}' if args.worker_class == 'gthread' else ''}, Flask {package_version('flask')}, "
        f"stripe {package_version('stripe')}"
    )
    print(
        f"  sample         {len(answers)} deliveries = {unique} events + {duplicates} redeliveries, "
        f"{args.clients} clients"
    )
    print("  answers        " + ", ".join(f"{n} x {s}" for s, n in sorted(statuses.items())))
    print(f"  duplicates     {acknowledged_duplicates} acknowledged as already handled (others raced their original)")
    print(f"  wall time      {wall:.2f} s")
    print(f"  latency        p50 {statistics.median(latencies_ms):.1f} ms, p99 {percentile(latencies_ms, 0.99):.1f} ms")
    print(f"  orders paid    {check.orders_paid} of {check.orders}")
    print(
        f"  tickets        {check.tickets} issued, {check.tickets_expected} expected; "
        f"{check.wrong_ticket_count} orders with a wrong count"
    )
    print(f"  events stored  {check.events_recorded} (one per event id)")
    print(f"  stock          sold {check.sold}, held {check.reserved}")
    print(
        f"  mails queued   {check.mails_queued} after the webhooks, {check.orders_queued_once} orders with exactly "
        "one (one per paid order expected)"
    )
    print(
        f"  mails sent     {drain.sent} by the drain; {drain.failed} failed, {drain.dropped} dropped, "
        f"{drain.left} left in the queue"
    )
    print(
        f"  mail drain     {drain.rate:.0f} mails/s (deliver_mail in one process, {drain.seconds:.1f} s, "
        f"{drain.cpu_seconds / max(drain.sent, 1) * 1000:.1f} ms CPU per mail)"
    )
    print(
        f"  mails          {drain.mails} ticket mails written, {drain.orders_mailed_once} orders mailed exactly once "
        "(one per order expected)"
    )
    print(
        f"  app CPU/event  {cpu_per_event:.1f} ms in process ({CPU_SAMPLE} deliveries, tickets mail queued, not sent); "
        "PostgreSQL and HTTP not included"
    )
    print(f"  load average   {' '.join(Path('/proc/loadavg').read_text().split()[:3])} (others share these cores)")
    print()
    print(
        f"  target events/s >= {TARGET_EVENTS_PER_SECOND:.0f}: {rate:.0f} events/s  "
        f"{verdict(rate >= TARGET_EVENTS_PER_SECOND)}"
    )
    print(f"  target double issues = 0: {check.double_issues}  {verdict(check.double_issues == TARGET_DOUBLE_ISSUES)}")
    exact = (
        check.orders_paid == check.orders
        and check.wrong_ticket_count == 0
        and check.events_recorded == unique
        and check.sold == check.tickets_expected
        and check.reserved == 0
        and statuses.get(200, 0) == len(answers)
    )
    print(f"  every order paid once with its tickets, every event once, every answer 200: {verdict(exact)}")
    mailed_once = (
        check.mails_queued == check.orders
        and check.orders_queued_once == check.orders
        and drain.sent == check.orders
        and drain.left == 0
        and drain.mails == check.orders
        and drain.orders_mailed_once == check.orders
    )
    print(f"  every order queued one tickets mail and was mailed exactly once: {verdict(mailed_once)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RunBroken as error:
        print(f"run broken: {error}", file=sys.stderr)
        sys.exit(2)
