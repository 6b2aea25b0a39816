"""Seed a Guichet instance for the schemathesis run of .ci/run, and print what it needs.

Run with the environment the served app will have (``TICKETING_ENV``,
``TICKETING_INSTANCE_PATH``, ``TICKETING_DATABASE_URL``, ...). It migrates the database,
then, through the API itself (Flask's test client), creates an organiser token, a
published event with a paid and a free ticket type, a draft, a free order, and a second
organiser whose published event has 50 sold tickets and a paired door device, so that
schemathesis exercises the authenticated routes with real credentials, ids and ticket
codes. It prints ``export NAME=value`` lines for the shell, and writes the values
schemathesis may draw parameters from (its dictionaries) into the folder given as
argument.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(folder: Path) -> None:
    from flask_migrate import upgrade

    from ticketing import create_app
    from ticketing.catalog.services import create_organizer
    from ticketing.extensions import db
    from ticketing.models import utcnow

    app = create_app()
    with app.app_context():
        upgrade()
        _organizer, organizer_token = create_organizer(db.session, "Contract", utcnow())
        db.session.remove()
    client = app.test_client()
    organizer = {"Authorization": f"Bearer {organizer_token}"}

    def post(path: str, body: dict[str, Any] | None, expected: int, headers: dict[str, str] = organizer) -> Any:
        response = client.post(path, json=body, headers=headers)
        if response.status_code != expected:
            raise SystemExit(f"seeding: POST {path} answered {response.status_code}: {response.get_data(as_text=True)}")
        return response.get_json()

    window = {"starts_at": "2031-06-01T20:00:00+02:00", "ends_at": "2031-06-01T23:00:00+02:00"}
    event = post("/api/v1/events", {"title": "Contract", "stream_name": "contract", **window}, 201)
    other = post("/api/v1/events", {"title": "Draft", **window}, 201)
    paid = post(
        f"/api/v1/events/{event['id']}/ticket-types", {"name": "Paid", "price_cents": 1500, "capacity": 100_000}, 201
    )
    free = post(f"/api/v1/events/{event['id']}/ticket-types", {"name": "Free", "price_cents": 0, "capacity": 1000}, 201)
    post(f"/api/v1/events/{event['id']}/publish", None, 200)
    order = post(
        "/api/v1/orders",
        {
            "event_id": event["id"],
            "email": "contract@example.org",
            "items": [{"ticket_type_id": free["id"], "quantity": 2}],
        },
        201,
        headers={},
    )
    # The door belongs to another organiser, so that no request schemathesis makes with the
    # first organiser's token (a DELETE of a listed device) can revoke it.
    with app.app_context():
        _door_organizer, door_token = create_organizer(db.session, "Door", utcnow())
        db.session.remove()
    door_organizer = {"Authorization": f"Bearer {door_token}"}
    door_event = post("/api/v1/events", {"title": "At the door", **window}, 201, headers=door_organizer)
    door_type = post(
        f"/api/v1/events/{door_event['id']}/ticket-types",
        {"name": "Entry", "price_cents": 0, "capacity": 100, "max_per_order": 50},
        201,
        headers=door_organizer,
    )
    post(f"/api/v1/events/{door_event['id']}/publish", None, 200, headers=door_organizer)
    tickets = post(
        "/api/v1/orders",
        {
            "event_id": door_event["id"],
            "email": "door@example.org",
            "items": [{"ticket_type_id": door_type["id"], "quantity": 50}],
        },
        201,
        headers={},
    )
    read = client.get(
        f"/api/v1/orders/{tickets['code']}", headers={"Authorization": f"Bearer {tickets['access_token']}"}
    )
    codes = [ticket["qr_payload"] for ticket in read.get_json()["tickets"]]
    device = post("/api/v1/checkin/devices", {"name": "Door", "event_ids": [door_event["id"]]}, 201, door_organizer)
    paired = post("/api/v1/checkin/devices/pair", {"pairing_code": device["pairing_code"]}, 200, headers={})

    # Dictionaries of schemathesis (libFuzzer's format: one quoted entry per line).
    dictionaries = {
        "event_ids.txt": [event["id"], other["id"]],
        "ticket_type_ids.txt": [paid["id"], free["id"]],
        "door_event_ids.txt": [door_event["id"]],
        "ticket_codes.txt": codes,
    }
    for name, values in dictionaries.items():
        (folder / name).write_text("".join(f'"{value}"\n' for value in values))
    exports = {
        "GUICHET_ORGANIZER_TOKEN": organizer_token,
        "GUICHET_DEVICE_TOKEN": paired["device_token"],
        "GUICHET_ORDER_CODE": order["code"],
        "GUICHET_ORDER_TOKEN": order["access_token"],
        "GUICHET_EVENT_ID": event["id"],
        "GUICHET_DRAFT_EVENT_ID": other["id"],
        "GUICHET_TICKET_TYPE_ID": paid["id"],
    }
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
