"""Flash sale: many buyers at once on one event, on PostgreSQL under gunicorn.

Run: ``.venv/bin/python bench/flash_sale.py [--verbose]`` (20 s on a quiet 2-core machine,
longer when it is busy; ``--help`` lists the knobs).

What it does, in one run:

1. (Re)creates the database ``guichet_bench`` on the local PostgreSQL (never ``test``,
   which the test suite uses), migrates it, and seeds an organiser and a published event
   whose one ticket type has a capacity of 500 and a price (demo provider: orders stay
   ``pending`` with a hold).
2. Counts the SQL statements one order costs, with SQLAlchemy's ``before_cursor_execute``
   event, on an in-process app and Flask's test client; it also counts the round trips to
   PostgreSQL (libpq trace), which add the transaction's BEGIN/COMMIT and the pool's
   pre-ping. It also times the app's own CPU per request there (order, sold out, and the
   baseline's insert), a figure that other load on the machine barely moves.
3. Serves ``bench/baseline_app.py`` (Flask + Flask-SQLAlchemy, one route inserting one
   row) and then Guichet (``wsgi:app``), each under gunicorn with the same workers, and
   sends each 2,000 POSTs from 50 concurrent clients on 127.0.0.1.
4. Reads the database afterwards for oversold tickets, and prints every figure with the
   machine it was measured on and the issue's targets. CPU time is attributed from /proc
   (workers, their PostgreSQL backends, the client); what other processes used during a
   run is printed too, with a warning when it was enough to skew the figures.

It is a measurement, not a test: the exit code is 0 whatever the figures, and non-zero
only when the run itself broke (the server did not start, the database was unreachable).
Everything it starts is stopped by pid, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import re
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path[:0] = [str(ROOT), str(BENCH)]

import sqlalchemy as sa  # noqa: E402
from harness import (  # noqa: E402
    GunicornServer,
    RunBroken,
    children_of,
    cpu_model,
    empty_database,
    package_version,
    percentile,
    production_environ,
    stat_fields,
    verdict,
)

DATABASE = "guichet_bench"
SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432"
DATABASE_URL = f"{SERVER_URL}/{DATABASE}"
HOST = "127.0.0.1"

CAPACITY = 500
PRICE_CENTS = 1500
FEE_CENTS = 100
CPU_WARMUP = 5  # in-process requests before timing CPU
CPU_SAMPLES = 200  # in-process requests timed per kind
WARMUP_REQUESTS = 32  # per app, not measured: lets every worker load its code and connect
REQUEST_TIMEOUT = 30.0  # gunicorn's own worker timeout

NOISY_SHARE = 0.15  # of the machine's CPU time used by others during a run: warn

TARGET_RATIO = 0.40
TARGET_P99_MS = 250.0
TARGET_STATEMENTS = 10


# --------------------------------------------------------------------------- machine


def server_settings() -> dict[str, str]:
    engine = sa.create_engine(f"{SERVER_URL}/postgres")
    try:
        with engine.connect() as connection:
            return {
                name: connection.execute(sa.text(f"SHOW {name}")).scalar_one()
                for name in ("server_version", "fsync", "synchronous_commit")
            }
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- /proc readings

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        fields = stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICKS


def _kib(path: str, key: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mib(pids: Sequence[int]) -> float:
    return sum(_kib(f"/proc/{pid}/status", "VmRSS") for pid in pids) / 1024


def pss_mib(pids: Sequence[int]) -> float:
    return sum(_kib(f"/proc/{pid}/smaps_rollup", "Pss") for pid in pids) / 1024


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(values[:8])  # guest time is already inside user
    idle = values[3] + values[4]
    return total - idle, total


def postgres_backends(database: str) -> list[int]:
    """Pids of the server processes serving ``database`` (the workers' connections)."""
    engine = sa.create_engine(f"{SERVER_URL}/postgres")
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"),
                {"db": database},
            )
            return sorted(row.pid for row in rows)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- database and app


def bench_environ(instance: Path) -> dict[str, str]:
    return production_environ(
        instance, DATABASE_URL, BASELINE_DATABASE_URL=DATABASE_URL, TICKETING_RATELIMIT_ENABLED="false"
    )


def recreate_database() -> None:
    empty_database(SERVER_URL, DATABASE)


@dataclass
class Seed:
    event_id: str
    ticket_type_id: str
    warmup_event_id: str
    warmup_ticket_type_id: str
    count_event_id: str
    count_ticket_type_id: str
    cpu_event_id: str
    cpu_ticket_type_id: str


def _add_event(organizer_id: uuid.UUID, title: str, capacity: int) -> tuple[str, str]:
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
    ticket_type = TicketType(
        event_id=event.id,
        name="Standard",
        price_cents=PRICE_CENTS,
        fee_cents=FEE_CENTS,
        capacity=capacity,
        max_per_order=10,
        grants_entry=True,
        grants_stream=False,
    )
    db.session.add(ticket_type)
    db.session.commit()
    return str(event.id), str(ticket_type.id)


def migrate_and_seed(app: Any) -> Seed:
    from baseline_app import create_schema
    from flask_migrate import upgrade

    from ticketing.catalog.services import create_organizer
    from ticketing.extensions import db
    from ticketing.models import utcnow

    with app.app_context():
        upgrade()
        organizer, _token = create_organizer(db.session, "Bench organiser", utcnow())
        flash = _add_event(organizer.id, "Flash sale", CAPACITY)
        warmup = _add_event(organizer.id, "Warm-up (not measured)", WARMUP_REQUESTS)
        count = _add_event(organizer.id, "Statement count", 1)
        cpu = _add_event(organizer.id, "CPU per request", CPU_WARMUP + CPU_SAMPLES)
        db.session.remove()
        db.engine.dispose()
    create_schema(DATABASE_URL)
    return Seed(*flash, *warmup, *count, *cpu)


def order_body(event_id: str, ticket_type_id: str, email: str) -> dict[str, Any]:
    return {"event_id": event_id, "items": [{"ticket_type_id": ticket_type_id, "quantity": 1}], "email": email}


# --------------------------------------------------------------------------- statements per order


@dataclass
class RequestCost:
    label: str
    status: int
    statements: list[str]
    round_trips: list[str]


def _one_line(sql: str, width: int = 150) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= width else text[: width - 3] + "..."


_TRACE_MESSAGE = re.compile(r"^([FB])\t\d+\t(\w+)\t?(.*)$")
_TRACE_STRING = re.compile(r'"((?:[^"]|"")*)"')


def round_trips_from_trace(trace: str) -> list[str]:
    """The client's round trips in a libpq trace, each named by its SQL.

    A round trip ends where the client waits for the server: after a simple ``Query``
    (BEGIN, COMMIT, the pool's ping), or after the ``Sync`` closing an extended-protocol
    Parse/Bind/Execute. Only client (``F``) messages are read: libpq writes them as it
    sends, while the server's answers may still be unread when the trace is cut.
    """
    messages: list[list[str]] = []
    for line in trace.splitlines():
        match = _TRACE_MESSAGE.match(line)
        if match:
            messages.append([match.group(1), match.group(2), match.group(3)])
        elif messages:  # SQL spanning several lines
            messages[-1][2] += " " + line
    trips: list[str] = []
    parsed: str | None = None
    for direction, kind, text in messages:
        if direction != "F":
            continue
        strings = _TRACE_STRING.findall(text)
        if kind == "Query":
            sql = strings[0] if strings else "?"
            trips.append("; (pool pre-ping)" if sql == ";" else _one_line(sql))
        elif kind == "Parse":
            parsed = _one_line(strings[1]) if len(strings) > 1 else "?"
        elif kind == "Sync":
            trips.append(parsed or "(prepared statement)")
            parsed = None
    return trips


def count_statements(app: Any, seed: Seed, trace_path: Path) -> list[RequestCost]:
    """Place one order (201) and one that finds the type sold out (409), in process."""
    from ticketing.extensions import db

    statements: list[str] = []
    trace_file = trace_path.open("a")
    with app.app_context():
        engine = db.engine

        @sa.event.listens_for(engine, "connect")
        def _trace(dbapi_connection: Any, _record: Any) -> None:
            from psycopg import pq

            dbapi_connection.pgconn.trace(os.dup(trace_file.fileno()))
            dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

        @sa.event.listens_for(engine, "before_cursor_execute")
        def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)

    client = app.test_client()
    warm = client.get("/healthz")  # connects and initialises the dialect: not an order's cost
    if warm.status_code != 200:
        raise RunBroken(f"in-process /healthz answered {warm.status_code}")
    costs = []
    for label, email in (("order placed (201)", "count-1@example.org"), ("sold out (409)", "count-2@example.org")):
        statements.clear()
        offset = trace_path.stat().st_size
        response = client.post("/api/v1/orders", json=order_body(seed.count_event_id, seed.count_ticket_type_id, email))
        with trace_path.open() as trace:
            trace.seek(offset)
            trips = round_trips_from_trace(trace.read())
        costs.append(RequestCost(label, response.status_code, list(statements), trips))
    if costs[0].status != 201 or costs[1].status != 409:
        raise RunBroken(f"in-process orders answered {costs[0].status} and {costs[1].status}, expected 201 and 409")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    trace_file.close()
    return costs


@dataclass
class AppCpu:
    """CPU time of the app's own process per request, without HTTP server or PostgreSQL."""

    order: float
    sold_out: float
    baseline: float


def _post_all(client: Any, path: str, bodies: Sequence[dict[str, Any]], expected: int) -> float:
    started = time.process_time()
    for body in bodies:
        response = client.post(path, json=body)
        if response.status_code != expected:
            raise RunBroken(f"in-process POST {path} answered {response.status_code}, expected {expected}")
    return (time.process_time() - started) / len(bodies)


def measure_app_cpu(app: Any, seed: Seed) -> AppCpu:
    """Mean CPU per request in this process, through Flask's test client: the app's share
    of the cost, measured apart from gunicorn, the client and PostgreSQL, and far less
    sensitive to other load on the machine than throughput is."""
    from baseline_app import create_app as create_baseline

    from ticketing.extensions import db

    def orders(prefix: str, count: int) -> list[dict[str, Any]]:
        return [
            order_body(seed.cpu_event_id, seed.cpu_ticket_type_id, f"cpu-{prefix}-{i}@example.org")
            for i in range(count)
        ]

    client = app.test_client()
    _post_all(client, "/api/v1/orders", orders("warm", CPU_WARMUP), 201)
    order = _post_all(client, "/api/v1/orders", orders("order", CPU_SAMPLES), 201)
    sold_out = _post_all(client, "/api/v1/orders", orders("late", CPU_SAMPLES), 409)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()

    baseline_app = create_baseline(DATABASE_URL)
    baseline_client = baseline_app.test_client()
    _post_all(baseline_client, "/hits", orders("warm", CPU_WARMUP), 201)
    baseline = _post_all(baseline_client, "/hits", orders("hit", CPU_SAMPLES), 201)
    with baseline_app.app_context():
        baseline_app.extensions["sqlalchemy"].engine.dispose()
    return AppCpu(order, sold_out, baseline)


# --------------------------------------------------------------------------- load client


@dataclass
class Answer:
    status: int  # 0: no HTTP answer (connection error, timeout)
    started: float
    finished: float
    body: bytes = b""

    @property
    def latency(self) -> float:
        return self.finished - self.started


@dataclass
class Load:
    answers: list[Answer]
    wall: float
    client_cpu: float
    started: float


def http_request(method: str, path: str, port: int, body: bytes = b"") -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Accept: application/json"]
    if body:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip().lower()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
        keep_alive = headers.get("connection") != "close"
    elif headers.get("transfer-encoding") == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(p[:-2] for p in parts)
        keep_alive = headers.get("connection") != "close"
    else:
        body = await reader.read()
        keep_alive = False
    return status, keep_alive, body


async def _fire(port: int, requests: Sequence[bytes], clients: int) -> list[Answer]:
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
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as error:
                answers.append(Answer(0, started, time.perf_counter(), f"{type(error).__name__}: {error}".encode()))
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            answers.append(Answer(status, started, time.perf_counter(), body))
            if not keep_alive:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return answers


def fire(port: int, requests: Sequence[bytes], clients: int) -> Load:
    cpu_before = time.process_time()
    started = time.perf_counter()
    answers = asyncio.run(_fire(port, requests, clients))
    wall = time.perf_counter() - started
    return Load(answers, wall, time.process_time() - cpu_before, started)


# --------------------------------------------------------------------------- gunicorn


# --------------------------------------------------------------------------- one measured run


@dataclass
class Run:
    name: str
    load: Load
    workers: int
    worker_cpu: float
    backend_cpu: float
    machine_busy: float
    busy_seconds: float
    rss: float
    pss: float
    master_rss: float
    load_average: str


def measure(
    server: GunicornServer, workers: int, warmup: Sequence[bytes], requests: Sequence[bytes], clients: int
) -> Run:
    server.start()
    try:
        server.wait_ready(workers)
        warm = fire(server.port, warmup, min(clients, len(warmup)))
        bad = [a for a in warm.answers if a.status not in (200, 201)]
        if bad:
            raise RunBroken(f"{server.name}: {len(bad)} warm-up requests failed, first: {describe(bad[0])}")
        assert server.process is not None
        workers_now = children_of(server.process.pid)
        backends = postgres_backends(DATABASE)
        load_average = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        worker_cpu, backend_cpu, ticks = cpu_seconds(workers_now), cpu_seconds(backends), machine_ticks()
        load = fire(server.port, requests, clients)
        busy_after, total_after = machine_ticks()
        worker_cpu = cpu_seconds(workers_now) - worker_cpu
        backend_cpu = cpu_seconds(backends) - backend_cpu
        machine_busy = (busy_after - ticks[0]) / max(1, total_after - ticks[1])
        busy_seconds = (busy_after - ticks[0]) / CLOCK_TICKS
        if children_of(server.process.pid) != workers_now:
            print(f"warning: {server.name}: gunicorn replaced a worker during the run:\n{server.log_tail(10)}")
        return Run(
            name=server.name,
            load=load,
            workers=len(workers_now),
            worker_cpu=worker_cpu,
            backend_cpu=backend_cpu,
            machine_busy=machine_busy,
            busy_seconds=busy_seconds,
            rss=rss_mib(workers_now),
            pss=pss_mib(workers_now),
            master_rss=rss_mib([server.process.pid]),
            load_average=load_average,
        )
    finally:
        server.stop()


# --------------------------------------------------------------------------- report


def describe(answer: Answer) -> str:
    body = answer.body[:200].decode("utf-8", errors="replace").replace("\n", " ")
    return f"{answer.status or 'no answer'} {body}"


def ms(seconds: float) -> str:
    return "n/a" if seconds != seconds else f"{seconds * 1000:.0f} ms"


def classify(load: Load) -> tuple[list[Answer], list[Answer], list[Answer]]:
    created: list[Answer] = []
    sold_out: list[Answer] = []
    errors: list[Answer] = []
    for answer in load.answers:
        if answer.status == 201 and b'"code"' in answer.body:
            created.append(answer)
        elif answer.status == 409 and b'"sold_out"' in answer.body:
            sold_out.append(answer)
        else:
            errors.append(answer)
    return created, sold_out, errors


@dataclass
class Inventory:
    capacity: int
    reserved: int
    sold: int
    orders: int
    ordered_quantity: int
    tickets: int

    @property
    def oversold(self) -> int:
        return max(0, self.reserved + self.sold - self.capacity, self.ordered_quantity - self.capacity)


def read_inventory(seed: Seed) -> Inventory:
    engine = sa.create_engine(DATABASE_URL)
    try:
        with engine.connect() as connection:
            capacity, reserved, sold = connection.execute(
                sa.text("SELECT capacity, reserved, sold FROM ticket_type WHERE id = :id"),
                {"id": seed.ticket_type_id},
            ).one()
            orders, quantity = connection.execute(
                sa.text(
                    "SELECT count(DISTINCT o.id), coalesce(sum(l.quantity), 0) FROM orders o "
                    "JOIN order_line l ON l.order_id = o.id "
                    "WHERE l.ticket_type_id = :id AND o.status IN ('pending', 'paid')"
                ),
                {"id": seed.ticket_type_id},
            ).one()
            tickets = connection.execute(
                sa.text("SELECT count(*) FROM ticket WHERE ticket_type_id = :id AND status = 'valid'"),
                {"id": seed.ticket_type_id},
            ).scalar_one()
    finally:
        engine.dispose()
    return Inventory(capacity, reserved, sold, orders, int(quantity), tickets)


def print_report(
    args: argparse.Namespace,
    settings: dict[str, str],
    costs: list[RequestCost],
    app_cpu: AppCpu,
    checkout: Run,
    baseline: Run,
    inventory: Inventory,
) -> None:
    created, sold_out, errors = classify(checkout.load)
    base_ok = [a for a in baseline.load.answers if a.status == 201]
    base_errors = [a for a in baseline.load.answers if a.status != 201]
    n = len(checkout.load.answers)

    # Orders/s over the selling phase: from the first request to the last order created.
    selling = (max(a.finished for a in created) - checkout.load.started) if created else float("nan")
    orders_per_s = len(created) / selling if created else 0.0
    answers_per_s = n / checkout.load.wall
    base_per_s = len(base_ok) / baseline.load.wall
    ratio = orders_per_s / base_per_s if base_per_s else 0.0
    order_lat = [a.latency for a in created]
    p99_orders = percentile(order_lat, 0.99)
    order_cost = costs[0]

    print()
    print("machine")
    print(f"  CPU            {cpu_model()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable)")
    print(f"  Python         {platform.python_version()} ({platform.python_implementation()}), {platform.system()}")
    print(
        f"  PostgreSQL     {settings['server_version'].split()[0]} on {HOST}:5432, database {DATABASE} "
        f"(fsync {settings['fsync']}, synchronous_commit {settings['synchronous_commit']})"
    )
    print(
        f"  stack          gunicorn {package_version('gunicorn')}, Flask {package_version('flask')}, "
        f"SQLAlchemy {package_version('sqlalchemy')}, psycopg {package_version('psycopg')}"
    )
    threads = f", {args.threads} threads each" if args.threads > 1 else ""
    print(f"  server         gunicorn -w {args.workers} -k {args.worker_class}{threads}, on {HOST}")
    print(
        f"  client         asyncio, raw HTTP/1.1 in the benchmark process, {args.clients} concurrent connections "
        f"(new connection whenever the server closes it), {n} POSTs per app after {WARMUP_REQUESTS} warm-up requests"
    )
    if args.profile:
        print(f"  NOTE           workers ran under cProfile ({args.profile}): figures are slowed by profiling")

    print()
    print("SQL per order (in-process, Flask test client; statements counted by before_cursor_execute)")
    for cost in costs:
        print(f"  {cost.label:<20} {len(cost.statements):>2} statements, {len(cost.round_trips):>2} round trips")
        if args.verbose:
            for i, statement in enumerate(cost.statements, 1):
                print(f"      {i:>2}. {_one_line(statement)}")
            print("      round trips (libpq trace, first message of each):")
            for i, trip in enumerate(cost.round_trips, 1):
                print(f"      {i:>2}. {trip}")
    if not args.verbose:
        print("  (run with --verbose to list them)")

    print()
    print(f"app CPU per request (in-process, Flask test client, mean of {CPU_SAMPLES}; no HTTP server, no PostgreSQL)")
    for label, seconds in (("order placed (201)", app_cpu.order), ("sold out (409)", app_cpu.sold_out)):
        print(f"  {label:<20}{seconds * 1000:5.2f} ms   ({seconds / app_cpu.baseline:.1f} x baseline)")
    print(f"  baseline insert     {app_cpu.baseline * 1000:5.2f} ms")

    def lat(answers: Sequence[Answer], fraction: float) -> str:
        return ms(percentile([a.latency for a in answers], fraction))

    def per_request(seconds: float, digits: int = 1) -> str:
        return f"{seconds * 1000 / n:.{digits}f} ms/request"

    cores = len(os.sched_getaffinity(0))

    def cpu_per_answer(run: Run) -> str:
        # Everything the run needs, on a machine where CPU is what runs out first.
        spent = (run.worker_cpu + run.backend_cpu + run.load.client_cpu) / n
        return f"{spent * 1000:.1f} ms: at most {cores / spent:.0f}/s on {cores} cores"

    def other_cpu(run: Run) -> str:
        # Busy CPU time not spent by the workers, their PostgreSQL backends or the client:
        # other people's processes on a shared machine (and the kernel's loopback work).
        other = run.busy_seconds - run.worker_cpu - run.backend_cpu - run.load.client_cpu
        return f"{max(0.0, other):.1f} CPU-s of {run.busy_seconds:.1f} busy CPU-s"

    everything = checkout.load.answers
    rows = [
        ("route", "POST /api/v1/orders", "POST /hits"),
        ("answers", f"{len(created)} x 201, {len(sold_out)} x 409", f"{len(base_ok)} x 201"),
        ("errors", str(len(errors)), str(len(base_errors))),
        ("wall time", f"{checkout.load.wall:.2f} s", f"{baseline.load.wall:.2f} s"),
        ("throughput", f"{orders_per_s:.0f} orders/s (selling)", f"{base_per_s:.0f} inserts/s"),
        ("", f"{answers_per_s:.0f} answers/s (all {n})", ""),
        ("latency p50", f"{lat(created, 0.5)} (201)", lat(base_ok, 0.5)),
        ("latency p95", f"{lat(created, 0.95)} (201)", lat(base_ok, 0.95)),
        ("latency p99", f"{ms(p99_orders)} (201)", lat(base_ok, 0.99)),
        ("latency max", f"{lat(created, 1.0)} (201)", lat(base_ok, 1.0)),
        ("409 p50 / p99", f"{lat(sold_out, 0.5)} / {lat(sold_out, 0.99)}", ""),
        ("all p50 / p99", f"{lat(everything, 0.5)} / {lat(everything, 0.99)}", ""),
        ("worker CPU", per_request(checkout.worker_cpu), per_request(baseline.worker_cpu)),
        ("PostgreSQL CPU", per_request(checkout.backend_cpu), per_request(baseline.backend_cpu)),
        ("client CPU", per_request(checkout.load.client_cpu, 2), per_request(baseline.load.client_cpu, 2)),
        ("CPU / answer", cpu_per_answer(checkout), cpu_per_answer(baseline)),
        ("machine busy", f"{checkout.machine_busy:.0%} of all cores", f"{baseline.machine_busy:.0%} of all cores"),
        ("other processes", other_cpu(checkout), other_cpu(baseline)),
        ("load avg before", checkout.load_average, baseline.load_average),
        (
            "workers RSS",
            f"{checkout.rss:.0f} MiB for {checkout.workers} (PSS {checkout.pss:.0f})",
            f"{baseline.rss:.0f} MiB for {baseline.workers} (PSS {baseline.pss:.0f})",
        ),
        ("master RSS", f"{checkout.master_rss:.0f} MiB", f"{baseline.master_rss:.0f} MiB"),
    ]
    print()
    print(f"{n} requests from {args.clients} concurrent clients    {'checkout':<36}baseline")
    for label, left, right in rows:
        print(f"  {label:<16}{left:<46}{right}")
    for name, bad in (("checkout", errors), ("baseline", base_errors)):
        if bad:
            print(f"  {name} errors, first {min(5, len(bad))}:")
            for answer in bad[:5]:
                print(f"    {describe(answer)}")

    for run in (checkout, baseline):
        other = run.busy_seconds - run.worker_cpu - run.backend_cpu - run.load.client_cpu
        available = run.load.wall * len(os.sched_getaffinity(0))
        if other > NOISY_SHARE * available:
            print(
                f"  WARNING: during the {run.name} run, other processes used {other / available:.0%} of the machine's "
                "CPU time; its figures understate what this machine can do alone. Run again when it is quiet."
            )

    print()
    print("inventory after the run (read from the database)")
    print(
        f"  ticket type    capacity {inventory.capacity}, held {inventory.reserved} + sold {inventory.sold} "
        f"= {inventory.reserved + inventory.sold}"
    )
    print(
        f"  orders         {inventory.orders} pending or paid, {inventory.ordered_quantity} tickets ordered, "
        f"{inventory.tickets} tickets issued"
    )
    consistent = len(created) == inventory.orders == inventory.reserved + inventory.sold == inventory.ordered_quantity
    print(f"  consistent     {'yes' if consistent else 'NO'} (201 answers = orders = held + sold = tickets ordered)")

    print()
    print("targets (issue 3)")
    targets = [
        ("oversold", str(inventory.oversold), "= 0", inventory.oversold == 0),
        ("checkout / baseline", f"{ratio:.0%}", f">= {TARGET_RATIO:.0%}", ratio >= TARGET_RATIO),
        (
            f"p99 at {args.clients} clients",
            ms(p99_orders),
            f"< {TARGET_P99_MS:.0f} ms",
            p99_orders < TARGET_P99_MS / 1000,
        ),
        (
            "statements / order",
            str(len(order_cost.statements)),
            f"<= {TARGET_STATEMENTS}",
            len(order_cost.statements) <= TARGET_STATEMENTS,
        ),
    ]
    for label, figure, target, ok in targets:
        print(f"  {label:<22}{figure:>10}   target {target:<10}{verdict(ok)}")
    print(
        f"  (orders/s over the selling phase vs the baseline's inserts/s; p99 of the {len(created)} order answers; "
        f"errors: {len(errors)})"
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--verbose", action="store_true", help="list the SQL statements and round trips of one order")
    parser.add_argument("--requests", type=int, default=2000, help="POSTs per app (default 2000)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class (default sync)")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (gthread; default 1)")
    parser.add_argument("--profile", metavar="DIR", help="profile each checkout worker with cProfile into DIR")
    return parser.parse_args(argv)


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def stopping(server: GunicornServer) -> Iterator[GunicornServer]:
    try:
        yield server
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    begun = time.perf_counter()
    print(f"Guichet flash-sale benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")

    with tempfile.TemporaryDirectory(prefix="guichet-bench-") as scratch:
        scratch_path = Path(scratch)
        environ = bench_environ(scratch_path / "instance")
        settings = server_settings()

        from config import ProductionConfig
        from ticketing import create_app

        print(f"preparing database {DATABASE} (schema dropped, migrated, seeded) ...", flush=True)
        recreate_database()
        app = create_app(ProductionConfig(environ))
        seed = migrate_and_seed(app)
        app_cpu = measure_app_cpu(app, seed)
        costs = count_statements(app, seed, scratch_path / "libpq-trace.txt")

        gunicorn_args = ["-w", str(args.workers), "-k", args.worker_class, "--threads", str(args.threads)]
        checkout_args = list(gunicorn_args)
        if args.profile:
            profile_dir = Path(args.profile).resolve()
            profile_dir.mkdir(parents=True, exist_ok=True)
            environ["BENCH_PROFILE_DIR"] = str(profile_dir)
            checkout_args += ["-c", str(BENCH / "gunicorn_profile.py")]

        baseline_server = GunicornServer(
            "baseline", "baseline_app:create_app()", BENCH, environ, scratch_path / "baseline.log", gunicorn_args
        )
        checkout_server = GunicornServer(
            "checkout", "wsgi:app", ROOT, environ, scratch_path / "checkout.log", checkout_args
        )
        stamp = uuid.uuid4().hex[:8]  # emails unique per attempt, and per run

        def posts(
            server: GunicornServer, path: str, prefix: str, count: int, event_id: str, type_id: str
        ) -> list[bytes]:
            return [
                http_request(
                    "POST",
                    path,
                    server.port,
                    json.dumps(order_body(event_id, type_id, f"{prefix}-{stamp}-{i}@example.org")).encode(),
                )
                for i in range(count)
            ]

        with stopping(baseline_server), stopping(checkout_server):
            print(f"baseline: {args.requests} POSTs from {args.clients} clients ...", flush=True)
            baseline = measure(
                baseline_server,
                args.workers,
                posts(baseline_server, "/hits", "w", WARMUP_REQUESTS, seed.event_id, seed.ticket_type_id),
                posts(baseline_server, "/hits", "b", args.requests, seed.event_id, seed.ticket_type_id),
                args.clients,
            )
            print(f"checkout: {args.requests} POSTs from {args.clients} clients ...", flush=True)
            checkout = measure(
                checkout_server,
                args.workers,
                posts(
                    checkout_server,
                    "/api/v1/orders",
                    "w",
                    WARMUP_REQUESTS,
                    seed.warmup_event_id,
                    seed.warmup_ticket_type_id,
                ),
                posts(checkout_server, "/api/v1/orders", "c", args.requests, seed.event_id, seed.ticket_type_id),
                args.clients,
            )
        inventory = read_inventory(seed)
        print_report(args, settings, costs, app_cpu, checkout, baseline, inventory)
        print(f"\nwhole run: {time.perf_counter() - begun:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
    except SystemExit as stop:
        if stop.code == 128 + signal.SIGTERM:
            print("\nterminated; servers stopped", file=sys.stderr)
        raise
    except (RunBroken, sa.exc.OperationalError) as error:
        print(f"\nthe run broke: {error}", file=sys.stderr)
        sys.exit(2)
