"""App CPU per API request on the two hot paths, in process: ``POST /api/v1/orders`` and
``POST /api/v1/checkin``.

Run: ``.venv/bin/python bench/api_cpu.py [--requests N] [--database-url URL]``.

What it does:

1. Builds the app in production mode (fresh keys, rate limits off, mails left to a worker
   so that no mail is rendered inside a request) on its own database: by default
   ``guichet_bench_api`` on the local PostgreSQL, emptied and migrated; ``sqlite`` names a
   file in a scratch folder instead.
2. Seeds everything through the API itself (an organiser token, an event with a paid and
   a free ticket type, published; N free tickets bought; a paired door device), so the
   same script measures any version of the code that keeps the API.
3. Sends N orders (one ticket each, a new email each: 201) and N scans (a new ticket
   each: admitted) through Flask's test client, after a warm-up of each, in rounds that
   alternate orders and scans, and prints the process's CPU time per request: Guichet's
   share of a request, without an HTTP server or the database server's CPU. The lowest
   round is the figure (other load on the machine only ever adds to it); the median is
   printed beside it.

Run it on two versions back to back on the same machine to compare them; the figures of
one run alone say little on a shared machine. Exit code 0 unless the run itself broke.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path.cwd() if (Path.cwd() / "ticketing").is_dir() else Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(Path(__file__).resolve().parent))

from harness import RunBroken, cpu_model, empty_database, package_version, production_environ  # noqa: E402

SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432"
DATABASE = "guichet_bench_api"
WARMUP = 200
TICKETS_PER_ORDER = 50


def seed(client: Any, organizer_token: str, scans: int) -> tuple[str, str, list[str], str]:
    """Through the API: event id, paid ticket type id, free ticket codes, device token."""
    auth = {"Authorization": f"Bearer {organizer_token}"}
    year = dt.datetime.now(dt.UTC).year + 1

    def post(path: str, body: dict[str, Any] | None, expected: int, headers: dict[str, str] = auth) -> Any:
        response = client.post(path, json=body, headers=headers)
        if response.status_code != expected:
            raise RunBroken(f"seeding: POST {path} answered {response.status_code}: {response.get_data(as_text=True)}")
        return response.get_json()

    event = post(
        "/api/v1/events",
        {"title": "Bench", "starts_at": f"{year}-06-01T20:00:00", "ends_at": f"{year}-06-01T23:00:00"},
        201,
    )
    paid = post(
        f"/api/v1/events/{event['id']}/ticket-types",
        {"name": "Paid", "price_cents": 1500, "capacity": 1_000_000, "max_per_order": 1},
        201,
    )
    free = post(
        f"/api/v1/events/{event['id']}/ticket-types",
        {"name": "Free", "price_cents": 0, "capacity": 1_000_000, "max_per_order": TICKETS_PER_ORDER},
        201,
    )
    post(f"/api/v1/events/{event['id']}/publish", None, 200)
    codes: list[str] = []
    while len(codes) < scans:
        order = post(
            "/api/v1/orders",
            {
                "event_id": event["id"],
                "email": f"door-{len(codes)}@example.org",
                "items": [{"ticket_type_id": free["id"], "quantity": TICKETS_PER_ORDER}],
            },
            201,
            headers={},
        )
        read = client.get(
            f"/api/v1/orders/{order['code']}", headers={"Authorization": f"Bearer {order['access_token']}"}
        )
        codes.extend(ticket["qr_payload"] for ticket in read.get_json()["tickets"])
    device = post("/api/v1/checkin/devices", {"name": "Door", "event_ids": [event["id"]]}, 201)
    paired = post("/api/v1/checkin/devices/pair", {"pairing_code": device["pairing_code"]}, 200, headers={})
    return event["id"], paid["id"], codes[:scans], paired["device_token"]


def cpu_per_request(send: Callable[[int], Any], count: int, expected: Callable[[Any], bool], what: str) -> float:
    started = time.process_time()
    for index in range(count):
        response = send(index)
        if not expected(response):
            raise RunBroken(f"{what} answered {response.status_code}: {response.get_data(as_text=True)}")
    return (time.process_time() - started) / count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests measured per path (default 3000)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds the requests are split into (default 6)")
    parser.add_argument(
        "--database-url", default=f"{SERVER_URL}/{DATABASE}", help="PostgreSQL URL, or 'sqlite' for a scratch file"
    )
    args = parser.parse_args(argv)
    count = args.requests

    with tempfile.TemporaryDirectory(prefix="guichet-bench-api-") as scratch:
        instance = Path(scratch) / "instance"
        database_url = args.database_url
        if database_url == "sqlite":
            database_url = f"sqlite:///{scratch}/bench.sqlite3"
        else:
            server_url, _slash, database = database_url.rpartition("/")
            empty_database(server_url, database)
        environ = production_environ(
            instance,
            database_url,
            TICKETING_RATELIMIT_ENABLED="false",
            TICKETING_MAIL_DELIVERY="worker",
            TICKETING_BASE_URL="https://tickets.example.org",
        )
        os.environ.update(environ)
        from flask_migrate import upgrade

        from config import ProductionConfig
        from ticketing import create_app
        from ticketing.catalog.services import create_organizer
        from ticketing.extensions import db
        from ticketing.models import utcnow

        app = create_app(ProductionConfig(environ))
        with app.app_context():
            upgrade()
            _organizer, organizer_token = create_organizer(db.session, "Bench", utcnow())
            db.session.remove()
        client = app.test_client()
        print(f"seeding {count + WARMUP} tickets through the API ...", flush=True)
        event_id, type_id, codes, device_token = seed(client, organizer_token, count + WARMUP)
        scan_headers = {"Authorization": f"Bearer {device_token}"}

        def order(index: int) -> Any:
            body = {
                "event_id": event_id,
                "email": f"buyer-{index}-{uuid.uuid4().hex[:8]}@example.org",
                "items": [{"ticket_type_id": type_id, "quantity": 1}],
            }
            return client.post("/api/v1/orders", json=body, headers={"Accept-Language": "en"})

        def scan(offset: int) -> Callable[[int], Any]:
            return lambda index: client.post(
                "/api/v1/checkin",
                json={"code": codes[offset + index], "gate": "North", "request_id": uuid.uuid4().hex},
                headers=scan_headers,
            )

        def created(response: Any) -> bool:
            return response.status_code == 201

        def admitted(response: Any) -> bool:
            return response.status_code == 200 and response.get_json()["result"] == "admitted"

        cpu_per_request(order, WARMUP, created, "POST /api/v1/orders")
        cpu_per_request(scan(0), WARMUP, admitted, "POST /api/v1/checkin")
        per_round = count // args.rounds
        order_rounds, scan_rounds = [], []
        for round_index in range(args.rounds):
            order_rounds.append(cpu_per_request(order, per_round, created, "POST /api/v1/orders"))
            offset = WARMUP + round_index * per_round
            scan_rounds.append(cpu_per_request(scan(offset), per_round, admitted, "POST /api/v1/checkin"))
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        kept = app.extensions.get("guichet.autocommit")
        if kept is not None:
            kept.close()

    print(f"\nGuichet API CPU per request, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}")
    print(f"database: {database_url.split('://', 1)[0]}; Flask {package_version('flask')}")
    for label, rounds in (
        ("POST /api/v1/orders (201)", order_rounds),
        ("POST /api/v1/checkin (admitted)", scan_rounds),
    ):
        print(
            f"{label:<34}{min(rounds) * 1e6:8.0f} µs CPU/request, lowest of {len(rounds)} rounds "
            f"of {per_round} (median {statistics.median(rounds) * 1e6:.0f})"
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RunBroken as broken:
        print(f"run broken: {broken}", file=sys.stderr)
        sys.exit(2)
