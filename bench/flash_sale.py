"""Flash sale: many buyers at once, on PostgreSQL under gunicorn.

Run: ``.venv/bin/python bench/flash_sale.py [--verbose]`` (about a minute; ``--help`` lists
the knobs).

In one run:

1. (Re)creates the database ``guichet_bench`` on the local PostgreSQL (never ``test``,
   which the test suite uses), migrates it, and seeds an organiser and three published
   events whose ticket types have a price (demo provider: orders stay ``pending`` with a
   hold).
2. Counts the SQL statements one order costs (SQLAlchemy's ``before_cursor_execute``), and
   the app's own CPU per order in process (Flask's test client, no HTTP server), a figure
   that other load on the machine barely moves.
3. Serves Guichet (``wsgi:app``) under gunicorn and sends it three loads from concurrent
   clients on 127.0.0.1, each on an event of its own:
   - ``one type``: every order for one ticket type (one row every order must lock);
   - ``four types``: the same orders spread over four types of one event;
   - ``sell-out``: more orders than seats, for the sold-out answers and the oversell check.
   While each load runs, a sampler reads ``pg_stat_activity`` every few milliseconds and
   reports the share of the workers' connection time spent waiting on a lock.
4. Reads the database afterwards for oversold tickets, and prints every figure with the
   machine it was measured on.

It is a measurement, not a test: the exit code is 0 whatever the figures, and non-zero
only when the run itself broke. Everything it starts is stopped by pid, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path[:0] = [str(ROOT), str(BENCH)]

import sqlalchemy as sa  # noqa: E402
from harness import (  # noqa: E402
    Answer,
    GunicornServer,
    RunBroken,
    cpu_model,
    empty_database,
    fire,
    http_request,
    package_version,
    percentile,
    production_environ,
    verdict,
)

DATABASE = "guichet_bench"
SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432"
DATABASE_URL = f"{SERVER_URL}/{DATABASE}"
HOST = "127.0.0.1"

PRICE_CENTS = 1500
FEE_CENTS = 100
CPU_SAMPLES = 200  # in-process orders timed
WARMUP_REQUESTS = 32  # per load, not measured: lets every worker load its code and connect
SAMPLE_EVERY = 0.005  # seconds between two lock samples

TARGET_SPREAD = 0.20  # one type within 20% of four types
TARGET_STATEMENTS = 10


# --------------------------------------------------------------------------- database and app


@dataclass
class Sale:
    """An event on sale and its ticket types."""

    event_id: str
    type_ids: list[str]


@dataclass
class Seed:
    warmup: Sale
    count: Sale
    cpu: Sale
    one_type: Sale
    four_types: Sale
    sell_out: Sale


def _add_sale(organizer_id: uuid.UUID, title: str, capacities: Sequence[int]) -> Sale:
    from ticketing.catalog.models import Event, TicketType
    from ticketing.extensions import db
    from ticketing.models import utcnow

    now = utcnow()
    event = Event(
        organizer_id=organizer_id,
        title=title,
        description="Benchmark event",
        venue_name="Salle Bench",
        venue_address="1 rue du Banc, 31000 Toulouse",
        starts_at=now + dt.timedelta(days=30),
        ends_at=now + dt.timedelta(days=30, hours=3),
        timezone="Europe/Paris",
        mode="in_person",
        status="published",
        currency="EUR",
    )
    db.session.add(event)
    db.session.flush()
    types = [
        TicketType(
            event_id=event.id,
            name=f"Type {n + 1}",
            price_cents=PRICE_CENTS,
            fee_cents=FEE_CENTS,
            capacity=capacity,
            max_per_order=10,
            grants_entry=True,
            grants_stream=False,
            position=n,
        )
        for n, capacity in enumerate(capacities)
    ]
    db.session.add_all(types)
    db.session.commit()
    return Sale(str(event.id), [str(t.id) for t in types])


def migrate_and_seed(app: Any, requests: int, sell_out_capacity: int) -> Seed:
    from flask_migrate import upgrade

    from ticketing.catalog.services import create_organizer
    from ticketing.extensions import db
    from ticketing.models import utcnow

    with app.app_context():
        upgrade()
        organizer, _token = create_organizer(db.session, "Bench organiser", utcnow())
        seed = Seed(
            warmup=_add_sale(organizer.id, "Warm-up (not measured)", [WARMUP_REQUESTS * 3]),
            count=_add_sale(organizer.id, "Statement count", [1]),
            cpu=_add_sale(organizer.id, "CPU per order", [CPU_SAMPLES + 5]),
            one_type=_add_sale(organizer.id, "One type", [requests]),
            four_types=_add_sale(organizer.id, "Four types", [requests] * 4),
            sell_out=_add_sale(organizer.id, "Sell-out", [sell_out_capacity]),
        )
        db.session.remove()
        db.engine.dispose()
    return seed


def order_body(event_id: str, ticket_type_id: str, email: str) -> dict[str, Any]:
    return {"event_id": event_id, "items": [{"ticket_type_id": ticket_type_id, "quantity": 1}], "email": email}


# --------------------------------------------------------------------------- in process


def count_statements(app: Any, seed: Seed) -> dict[str, list[str]]:
    """The statements of one order placed (201) and one sold out (409)."""
    from ticketing.extensions import db

    statements: list[str] = []
    with app.app_context():

        @sa.event.listens_for(db.engine, "before_cursor_execute")
        def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(" ".join(statement.split()))

    client = app.test_client()
    if client.get("/healthz").status_code != 200:  # connects first: not an order's cost
        raise RunBroken("in-process /healthz did not answer 200")
    costs = {}
    for label, email, expected in (
        ("order placed (201)", "c1@example.org", 201),
        ("sold out (409)", "c2@example.org", 409),
    ):
        statements.clear()
        response = client.post("/api/v1/orders", json=order_body(seed.count.event_id, seed.count.type_ids[0], email))
        if response.status_code != expected:
            raise RunBroken(f"in-process order answered {response.status_code}, expected {expected}")
        costs[label] = list(statements)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return costs


def app_cpu_per_order(app: Any, seed: Seed) -> float:
    """Mean CPU of this process per order placed through Flask's test client."""
    from ticketing.extensions import db

    client = app.test_client()
    bodies = [order_body(seed.cpu.event_id, seed.cpu.type_ids[0], f"cpu-{i}@example.org") for i in range(CPU_SAMPLES)]
    started = time.process_time()
    for body in bodies:
        response = client.post("/api/v1/orders", json=body)
        if response.status_code != 201:
            raise RunBroken(f"in-process order answered {response.status_code}")
    spent = (time.process_time() - started) / len(bodies)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return spent


# --------------------------------------------------------------------------- lock sampler


@dataclass
class LockSamples:
    """What the workers' connections were doing, sampled from pg_stat_activity."""

    samples: int = 0
    active: int = 0  # connection-samples running a statement or waiting inside one
    waiting_on_lock: int = 0
    in_transaction: int = 0  # idle in transaction: between two statements of an order
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def lock_share(self) -> float:
        """Of the time the connections had an order's transaction open, the share spent
        waiting on a lock."""
        busy = self.active + self.in_transaction
        return self.waiting_on_lock / busy if busy else 0.0

    @property
    def mean_waiting(self) -> float:
        return self.waiting_on_lock / self.samples if self.samples else 0.0

    def run(self) -> None:
        engine = sa.create_engine(f"{SERVER_URL}/postgres", isolation_level="AUTOCOMMIT")
        query = sa.text(
            "SELECT count(*) FILTER (WHERE state = 'active'), "
            "count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock'), "
            "count(*) FILTER (WHERE state = 'idle in transaction') "
            "FROM pg_stat_activity WHERE datname = :db AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        try:
            with engine.connect() as connection:
                while not self.stop.wait(SAMPLE_EVERY):
                    active, waiting, in_transaction = connection.execute(query, {"db": DATABASE}).one()
                    self.samples += 1
                    self.active += active
                    self.waiting_on_lock += waiting
                    self.in_transaction += in_transaction
        finally:
            engine.dispose()


# --------------------------------------------------------------------------- one load


@dataclass
class Run:
    name: str
    answers: list[Answer]
    wall: float
    locks: LockSamples

    def with_status(self, status: int) -> list[Answer]:
        return [a for a in self.answers if a.status == status]

    @property
    def errors(self) -> list[Answer]:
        return [a for a in self.answers if a.status not in (201, 409)]

    @property
    def orders_per_second(self) -> float:
        """Over the selling phase: from the first request to the last order placed."""
        created = self.with_status(201)
        if not created:
            return 0.0
        started = min(a.started for a in self.answers)
        return len(created) / (max(a.finished for a in created) - started)


def run_load(name: str, port: int, requests: Sequence[bytes], clients: int) -> Run:
    """``clients`` connections taking orders from one shared queue, while locks are sampled."""
    locks = LockSamples()
    sampler = threading.Thread(target=locks.run, daemon=True)
    sampler.start()
    queue = iter(requests)
    load = fire(port, [queue] * clients)
    locks.stop.set()
    sampler.join(timeout=5)
    return Run(name, load.answers, load.wall, locks)


def posts(port: int, sale: Sale, prefix: str, count: int) -> list[bytes]:
    """``count`` orders of one ticket each, spread evenly over the sale's types."""
    stamp = uuid.uuid4().hex[:8]
    return [
        http_request(
            "POST",
            "/api/v1/orders",
            port,
            json.dumps(
                order_body(sale.event_id, sale.type_ids[i % len(sale.type_ids)], f"{prefix}-{stamp}-{i}@example.org")
            ).encode(),
        )
        for i in range(count)
    ]


# --------------------------------------------------------------------------- inventory


@dataclass
class Inventory:
    capacity: int
    held_and_sold: int
    ordered: int

    @property
    def oversold(self) -> int:
        return max(0, self.held_and_sold - self.capacity, self.ordered - self.capacity)


def read_inventory(sale: Sale) -> Inventory:
    engine = sa.create_engine(DATABASE_URL)
    try:
        with engine.connect() as connection:
            capacity, held_and_sold = connection.execute(
                sa.text("SELECT sum(capacity), sum(reserved + sold) FROM ticket_type WHERE event_id = :id"),
                {"id": sale.event_id},
            ).one()
            ordered = connection.execute(
                sa.text(
                    "SELECT coalesce(sum(l.quantity), 0) FROM orders o JOIN order_line l ON l.order_id = o.id "
                    "WHERE o.event_id = :id AND o.status IN ('pending', 'paid')"
                ),
                {"id": sale.event_id},
            ).scalar_one()
    finally:
        engine.dispose()
    return Inventory(int(capacity), int(held_and_sold), int(ordered))


# --------------------------------------------------------------------------- report


def ms(seconds: float) -> str:
    return "n/a" if seconds != seconds else f"{seconds * 1000:.0f} ms"


def describe(answer: Answer) -> str:
    return f"{answer.status or 'no answer'} {answer.body[:200].decode('utf-8', errors='replace')}"


def print_report(
    args: argparse.Namespace,
    settings: dict[str, str],
    costs: dict[str, list[str]],
    cpu: float,
    loads: list[Run],
    sell_out: Inventory,
) -> None:
    print()
    print("machine")
    print(f"  CPU            {cpu_model()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable)")
    print(f"  Python         {platform.python_version()} ({platform.python_implementation()}), {platform.system()}")
    print(
        f"  PostgreSQL     {settings['server_version'].split()[0]} on {HOST}:5432, database {DATABASE} "
        f"(fsync {settings['fsync']}, synchronous_commit {settings['synchronous_commit']})"
    )
    print(
        f"  stack          gunicorn {package_version('gunicorn')} -w {args.workers} -k {args.worker_class}, "
        f"Flask {package_version('flask')}, SQLAlchemy {package_version('sqlalchemy')}, "
        f"psycopg {package_version('psycopg')}"
    )
    print(f"  client         asyncio, raw HTTP/1.1, {args.clients} concurrent connections, on {HOST}")

    print()
    print("in process (Flask test client)")
    for label, statements in costs.items():
        print(f"  {label:<20} {len(statements):>2} SQL statements")
        if args.verbose:
            for i, statement in enumerate(statements, 1):
                print(f"      {i:>2}. {statement[:150]}")
    print(f"  app CPU            {cpu * 1000:5.2f} ms per order placed (mean of {CPU_SAMPLES})")

    print()
    print(f"{'load':<12}{'answers':<22}{'orders/s':>9}{'p50':>8}{'p99':>8}{'errors':>8}  lock wait")
    for load in loads:
        created, sold_out = load.with_status(201), load.with_status(409)
        latencies = [a.latency for a in created]
        print(
            f"  {load.name:<12}{f'{len(created)} x 201, {len(sold_out)} x 409':<22}{load.orders_per_second:>9.0f}"
            f"{ms(percentile(latencies, 0.5)):>8}{ms(percentile(latencies, 0.99)):>8}{len(load.errors):>8}"
            f"  {load.locks.lock_share:.0%} of transaction time ({load.locks.mean_waiting:.1f} connections "
            f"on average, {load.locks.samples} samples)"
        )
        for answer in load.errors[:3]:
            print(f"      error: {describe(answer)}")

    one, four = loads[0].orders_per_second, loads[1].orders_per_second
    spread = abs(one - four) / max(one, four) if max(one, four) else 1.0
    statements = len(costs["order placed (201)"])
    print()
    print("targets")
    for label, figure, target, ok in (
        ("oversold (sell-out)", str(sell_out.oversold), "= 0", sell_out.oversold == 0),
        ("one type vs four types", f"{spread:.0%} apart", f"<= {TARGET_SPREAD:.0%}", spread <= TARGET_SPREAD),
        ("statements / order", str(statements), f"<= {TARGET_STATEMENTS}", statements <= TARGET_STATEMENTS),
    ):
        print(f"  {label:<24}{figure:>12}   target {target:<8}{verdict(ok)}")
    print(
        f"  (sell-out: capacity {sell_out.capacity}, held + sold {sell_out.held_and_sold}, ordered {sell_out.ordered})"
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--verbose", action="store_true", help="list the SQL statements of one order")
    parser.add_argument("--requests", type=int, default=2000, help="orders per load (default 2000)")
    parser.add_argument("--sell-out-capacity", type=int, default=500, help="seats of the sell-out load (default 500)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class (default sync)")
    return parser.parse_args(argv)


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    begun = time.perf_counter()
    print(f"Guichet flash-sale benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")

    with tempfile.TemporaryDirectory(prefix="guichet-bench-") as scratch:
        scratch_path = Path(scratch)
        # One load client sends every order from one address: rate limits stay off here.
        environ = production_environ(scratch_path / "instance", DATABASE_URL, TICKETING_RATELIMIT_ENABLED="false")

        from config import ProductionConfig
        from ticketing import create_app

        print(f"preparing database {DATABASE} (schema dropped, migrated, seeded) ...", flush=True)
        settings = empty_database(SERVER_URL, DATABASE)
        app = create_app(ProductionConfig(environ))
        seed = migrate_and_seed(app, args.requests, args.sell_out_capacity)
        cpu = app_cpu_per_order(app, seed)
        costs = count_statements(app, seed)

        server = GunicornServer(
            "guichet",
            "wsgi:app",
            ROOT,
            environ,
            scratch_path / "gunicorn.log",
            ["-w", str(args.workers), "-k", args.worker_class],
        )
        loads = []
        try:
            server.start()
            server.wait_ready(args.workers)
            warm = run_load("warm-up", server.port, posts(server.port, seed.warmup, "w", WARMUP_REQUESTS), args.clients)
            if warm.errors:
                raise RunBroken(f"{len(warm.errors)} warm-up orders failed, first: {describe(warm.errors[0])}")
            for name, sale in (
                ("one type", seed.one_type),
                ("four types", seed.four_types),
                ("sell-out", seed.sell_out),
            ):
                print(f"{name}: {args.requests} orders from {args.clients} clients ...", flush=True)
                requests = posts(server.port, sale, name.replace(" ", "-"), args.requests)
                loads.append(run_load(name, server.port, requests, args.clients))
        finally:
            server.stop()
        print_report(args, settings, costs, cpu, loads, read_inventory(seed.sell_out))
        print(f"\nwhole run: {time.perf_counter() - begun:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
    except (RunBroken, sa.exc.OperationalError) as error:
        print(f"\nthe run broke: {error}", file=sys.stderr)
        sys.exit(2)
