"""Organiser writes beside buyers: every write takes the same write transaction
(``begin_write``: ``BEGIN IMMEDIATE`` on SQLite), so none fails as 'database is locked'.

A transaction that read first and writes later cannot wait for SQLite's write lock: if
another writer committed since its read began, SQLite refuses the upgrade at once, busy
timeout or not, and the request answered 503 ``database_unavailable``. Threads, the real
app, a file-backed SQLite database (and PostgreSQL, where the same code runs).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

from tests.conftest import make_organizer, published_event, run_together
from ticketing.models import utcnow

BUYERS = 3
ORGANISERS = 2
ROUNDS = 8


def test_organiser_writes_beside_purchases_never_answer_503(app):
    event = published_event(app, capacity=10_000, price_cents=1000, max_per_order=1)
    with app.app_context():
        tokens = [make_organizer(f"Salle {n}")[1] for n in range(ORGANISERS)]
    statuses: Counter[tuple[str, int]] = Counter()

    def buy() -> None:
        client = app.test_client()
        buyer = threading.get_ident() % 250
        for n in range(ROUNDS * 3):
            answer = client.post(
                "/api/v1/orders",
                json={
                    "event_id": str(event.id),
                    "email": f"buyer{n}@example.org",
                    "items": [{"ticket_type_id": str(event.type_id), "quantity": 1}],
                },
                environ_base={"REMOTE_ADDR": f"10.9.{n}.{buyer}"},  # one buyer per order, within the limits
            )
            statuses["order", answer.status_code] += 1

    def organise(token: str) -> None:
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        starts = utcnow().replace(microsecond=0) + dt.timedelta(days=30)
        body = {
            "title": "Soirée",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + dt.timedelta(hours=2)).isoformat(),
        }
        for n in range(ROUNDS):
            created = client.post("/api/v1/events", json=body, headers=headers)
            statuses["create event", created.status_code] += 1
            if created.status_code != 201:
                continue
            event_id = created.get_json()["id"]
            added = client.post(
                f"/api/v1/events/{event_id}/ticket-types",
                json={"name": "Plein tarif", "price_cents": 1200, "capacity": 50},
                headers=headers,
            )
            statuses["add ticket type", added.status_code] += 1
            patched = client.patch(f"/api/v1/events/{event_id}", json={"title": f"Soirée {n}"}, headers=headers)
            statuses["change event", patched.status_code] += 1
            if added.status_code == 201:
                type_id = added.get_json()["id"]
                changed = client.patch(
                    f"/api/v1/events/{event_id}/ticket-types/{type_id}", json={"capacity": 60}, headers=headers
                )
                statuses["change ticket type", changed.status_code] += 1
            published = client.post(f"/api/v1/events/{event_id}/publish", headers=headers)
            statuses["publish", published.status_code] += 1

    def work(n: int) -> None:
        if n < BUYERS:
            buy()
        else:
            organise(tokens[n - BUYERS])

    run_together(BUYERS + ORGANISERS, work)

    assert {key: count for key, count in statuses.items() if key[1] >= 500} == {}
    assert statuses["order", 201] == BUYERS * ROUNDS * 3
    assert statuses["publish", 200] == ORGANISERS * ROUNDS
    assert statuses["change ticket type", 200] == ORGANISERS * ROUNDS
