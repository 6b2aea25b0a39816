"""Retention purge and single erasure, on PostgreSQL.

Run: ``.venv/bin/python bench/retention.py [--persons N] [--erasures N]``.

1. (Re)creates the database ``guichet_bench_privacy`` on the local PostgreSQL (never
   ``test``), migrates it, and seeds past events (ended 60 days ago, retention 30 days)
   and one coming event.
2. Inserts 100,000 persons, each with an encrypted email, a wrapped data key and one paid
   order on a past event, with ``COPY`` (the rows are computed first, with the real
   envelope encryption and blind index).
3. Erases 1,000 other buyers (orders on the coming event) one by one through
   ``POST /api/v1/privacy/erasure`` with their order tokens (Flask test client, in
   process) and prints p50/p99 latency; each includes the vault scrub, which is then
   also timed alone (``VACUUM FULL`` of the vault's tables, during which purchases wait).
4. Runs the real ``flask purge-personal-data`` as a child process, samples its resident
   memory from /proc every 0.2 s, and prints the wall time and the memory curve.
5. Checks afterwards that nobody is left readable and that order totals did not change.

A measurement, not a test: the exit code is 0 whatever the figures, non-zero only when the
run itself broke. Everything it starts is stopped by pid.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import psycopg  # noqa: E402
from harness import cpu_model, verdict  # noqa: E402

DATABASE = "guichet_bench_privacy"
SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432"
DATABASE_URL = f"{SERVER_URL}/{DATABASE}"
LIBPQ_URL = "postgresql://postgres@127.0.0.1:5432"
PAST_EVENTS = 10
TARGET_PURGE_SECONDS = 60.0
TARGET_ERASURE_P99_MS = 50.0
FLAT_MEMORY_GROWTH_MB = 20.0  # RSS growth allowed between the first sample past 10% and the end
PURGE_TIMEOUT = 900.0
SCRUB_RUNS = 5


def recreate_database() -> None:
    with psycopg.connect(f"{LIBPQ_URL}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{DATABASE}"')


def environment(instance: Path) -> dict[str, str]:
    from ticketing.crypto.keys import key_environ

    keys = key_environ()
    return {
        **keys,
        "TICKETING_ENV": "production",
        "TICKETING_INSTANCE_PATH": str(instance),
        "TICKETING_DATABASE_URL": DATABASE_URL,
        "TICKETING_BASE_URL": "http://127.0.0.1",
        "TICKETING_ALLOW_DEMO_PAYMENTS": "true",  # a test instance: nobody pays
        "TICKETING_RATELIMIT_ENABLED": "false",
        "TICKETING_LOG_LEVEL": "WARNING",
    }


def seed_events(app) -> tuple[list[tuple[uuid.UUID, uuid.UUID]], tuple[uuid.UUID, uuid.UUID]]:  # type: ignore[no-untyped-def]
    from ticketing.catalog.models import Event, TicketType
    from ticketing.catalog.services import create_organizer
    from ticketing.extensions import db
    from ticketing.models import utcnow

    now = utcnow()
    organizer, _token = create_organizer(db.session, "Bench venue", now)

    def event(ends: dt.datetime) -> tuple[uuid.UUID, uuid.UUID]:
        row = Event(
            organizer_id=organizer.id,
            title="Bench",
            starts_at=ends - dt.timedelta(hours=2),
            ends_at=ends,
            status="published",
            retention_days=30,
        )
        db.session.add(row)
        db.session.flush()
        ticket_type = TicketType(event_id=row.id, name="Standard", price_cents=1500, fee_cents=100, capacity=1_000_000)
        db.session.add(ticket_type)
        db.session.flush()
        return row.id, ticket_type.id

    past = [event(now - dt.timedelta(days=60 + i)) for i in range(PAST_EVENTS)]
    future = event(now + dt.timedelta(days=30))
    db.session.commit()
    return past, future


def copy_buyers(app, count: int, events: list[tuple[uuid.UUID, uuid.UUID]], prefix: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Persons, data keys and paid orders through COPY; returns (code, access token) pairs."""
    from ticketing.checkout.orders import new_order_code
    from ticketing.crypto import (
        blind_index,
        derive_access_token,
        encrypt_field,
        hash_token,
        new_data_key,
        wrap_data_key,
    )
    from ticketing.extensions import keyring
    from ticketing.models import utcnow

    ring = keyring()
    now = utcnow()
    persons, data_keys, orders, lines, links = [], [], [], [], []
    codes: set[str] = set()
    for i in range(count):
        person_id = uuid.uuid4()
        email = f"{prefix}{i}@example.org"
        data_key = new_data_key()
        persons.append(
            (
                person_id,
                blind_index(ring.blind_index_key, email),
                ring.blind_index_key_id,
                encrypt_field(data_key, person_id, "email", email),
                now,
            )
        )
        master_key_id, wrapped = wrap_data_key(ring, person_id, data_key)
        data_keys.append((person_id, master_key_id, wrapped, now))
        event_id, type_id = events[i % len(events)]
        order_id = uuid.uuid4()
        code = new_order_code()
        while code in codes:
            code = new_order_code()
        codes.add(code)
        token = derive_access_token(ring.link_key, order_id)
        orders.append(
            (
                order_id,
                code,
                hash_token(token),
                event_id,
                person_id,
                "paid",
                "en",
                "EUR",
                1500,
                100,
                1600,
                "demo",
                f"bench-{i}",
                now,
                now,
                now,
            )
        )
        lines.append((order_id, type_id, 1, 1500, 100))
        links.append((code, token))
    with psycopg.connect(f"{LIBPQ_URL}/{DATABASE}") as connection, connection.cursor() as cursor:
        for statement, rows in (
            ("COPY person (id, email_index, index_key_id, email_ct, created_at) FROM STDIN", persons),
            ("COPY data_key (person_id, master_key_id, wrapped_key, created_at) FROM STDIN", data_keys),
            (
                "COPY orders (id, code, access_token_hash, event_id, person_id, status, locale, currency, "
                "subtotal_cents, fee_cents, total_cents, provider, provider_ref, hold_expires_at, created_at, "
                "paid_at) FROM STDIN",
                orders,
            ),
            (
                "COPY order_line (order_id, ticket_type_id, quantity, unit_price_cents, unit_fee_cents) FROM STDIN",
                lines,
            ),
        ):
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row([r.replace(tzinfo=None) if isinstance(r, dt.datetime) else r for r in row])
        connection.commit()
    return links


def order_totals() -> tuple[int, int]:
    with psycopg.connect(f"{LIBPQ_URL}/{DATABASE}") as connection:
        total, count = connection.execute("SELECT sum(total_cents), count(*) FROM orders").fetchone()
        return int(total or 0), int(count)


def readable_persons() -> int:
    with psycopg.connect(f"{LIBPQ_URL}/{DATABASE}") as connection:
        return connection.execute(
            "SELECT count(*) FROM person WHERE erased_at IS NULL OR email_ct IS NOT NULL"
        ).fetchone()[0]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_purge(env: dict[str, str]) -> tuple[float, list[tuple[float, float]], str]:
    command = [str(ROOT / ".venv" / "bin" / "flask"), "--app", "wsgi", "purge-personal-data"]
    # Output to a file, not a pipe: a full pipe would stall the child.
    with tempfile.TemporaryFile(mode="w+") as log:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
        samples: list[tuple[float, float]] = []
        try:
            while process.poll() is None:
                elapsed = time.perf_counter() - started
                if elapsed > PURGE_TIMEOUT:
                    raise RuntimeError(f"purge did not finish in {PURGE_TIMEOUT} s")
                value = rss_mb(process.pid)
                if value is not None:
                    samples.append((elapsed, value))
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=0.2)
            wall = time.perf_counter() - started
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        log.seek(0)
        output = log.read()
    if process.returncode != 0:
        raise RuntimeError(f"purge failed ({process.returncode}): {output[-2000:]}")
    return wall, samples, output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--erasures", type=int, default=1_000)
    args = parser.parse_args()

    from flask_migrate import upgrade

    from config import ProductionConfig
    from ticketing import create_app
    from ticketing.extensions import db
    from ticketing.privacy.scrub import scrub_vault

    instance = Path(tempfile.mkdtemp(prefix="guichet-bench-privacy-"))
    env = environment(instance)
    recreate_database()
    app = create_app(ProductionConfig(env))
    with app.app_context():
        upgrade()
        past, future = seed_events(app)
        started = time.perf_counter()
        copy_buyers(app, args.persons, past, "past")
        insert_seconds = time.perf_counter() - started
        erasable = copy_buyers(app, args.erasures, [future], "future")
        db.session.remove()
    totals_before = order_totals()

    client = app.test_client()
    latencies = []
    for code, token in erasable:
        began = time.perf_counter()
        response = client.post(f"/api/v1/privacy/erasure?order={code}", headers={"Authorization": f"Bearer {token}"})
        latencies.append((time.perf_counter() - began) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"erasure answered {response.status_code}: {response.get_data(as_text=True)}")
    with app.app_context():
        db.session.remove()
        scrubs = []
        for _ in range(SCRUB_RUNS):
            began = time.perf_counter()
            if not scrub_vault(db.engine):
                raise RuntimeError("the vault scrub could not finish")
            scrubs.append((time.perf_counter() - began) * 1000)
        db.engine.dispose()

    wall, samples, output = run_purge(env)
    totals_after = order_totals()
    left = readable_persons()

    quantiles = statistics.quantiles(latencies, n=100)
    p50, p99 = statistics.median(latencies), quantiles[98]
    steady = [rss for t, rss in samples if t >= wall * 0.1] or [rss for _t, rss in samples]
    growth = (steady[-1] - steady[0]) if steady else 0.0
    peak = max((rss for _t, rss in samples), default=0.0)

    with psycopg.connect(f"{LIBPQ_URL}/postgres") as connection:
        server = connection.execute("SHOW server_version").fetchone()[0]
    print("Guichet retention benchmark")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}; PostgreSQL {server}")
    print(
        f"seeded: {args.persons:,} persons with one paid order each on {PAST_EVENTS} past events, "
        f"inserted in {insert_seconds:.1f} s (COPY)"
    )
    print(
        f"single erasure via POST /api/v1/privacy/erasure, {len(latencies):,} erasures: "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies):.1f} ms"
    )
    print(
        f"vault scrub alone (VACUUM FULL data_key, person; part of each erasure above), {args.persons:,} persons: "
        f"median {statistics.median(scrubs):.1f} ms of {SCRUB_RUNS}, max {max(scrubs):.1f} ms"
    )
    print(f"purge-personal-data ({args.persons:,} persons): {wall:.1f} s wall, {args.persons / wall:,.0f} persons/s")
    print(
        f"purge memory (RSS of the flask process, {len(samples)} samples every 0.2 s): start {steady[0]:.1f} MB, "
        f"end {steady[-1]:.1f} MB, peak {peak:.1f} MB, growth after the first 10% {growth:+.1f} MB"
    )
    print(f"command said: {output.strip().splitlines()[-1] if output.strip() else '(nothing)'}")
    print(f"after: readable persons left {left}; order totals {totals_before} -> {totals_after}")
    print()
    print(
        f"target purge of {args.persons:,} persons < {TARGET_PURGE_SECONDS:.0f} s: {wall:.1f} s "
        f"{verdict(wall < TARGET_PURGE_SECONDS and args.persons >= 100_000)}"
    )
    print(
        f"target memory flat (growth < {FLAT_MEMORY_GROWTH_MB:.0f} MB): {growth:+.1f} MB "
        f"{verdict(growth < FLAT_MEMORY_GROWTH_MB)}"
    )
    print(
        f"target single erasure p99 < {TARGET_ERASURE_P99_MS:.0f} ms: {p99:.1f} ms "
        f"{verdict(p99 < TARGET_ERASURE_P99_MS)}"
    )
    print(
        f"check nobody readable after purge: {verdict(left == 0)}; totals unchanged: "
        f"{verdict(totals_before == totals_after)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
