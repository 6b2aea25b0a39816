"""Online check-in: every answer a door can get, idempotent retries, the scan log, stats."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from tests.checkin.factories import codes, make_device, make_tickets
from tests.conftest import make_event, make_organizer
from ticketing.catalog.models import TicketType
from ticketing.checkin.models import Device, Scan
from ticketing.checkout.models import Ticket
from ticketing.crypto import hash_token
from ticketing.extensions import db, keyring
from ticketing.tickets.payload import encode_ticket


def setup_door(app, count=2, **ticket_options):
    with app.app_context():
        organizer, organizer_token = make_organizer()
        event = make_event(organizer=organizer, capacity=100)
        tickets = make_tickets(event, count, **ticket_options)
        token = make_device(organizer, [event])
        device_id = db.session.execute(sa.select(Device.id).where(Device.token_hash == hash_token(token))).scalar_one()
        return {
            "device_id": str(device_id),
            "event_id": str(event.id),
            "type_id": str(event.ticket_types[0].id),
            "codes": codes(tickets),
            "ticket_ids": [str(t.id) for t in tickets],
            "token": token,
            "organizer_token": organizer_token,
        }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def scan(client, token, code, **extra):
    return client.post("/api/v1/checkin", json={"code": code, **extra}, headers={"Authorization": f"Bearer {token}"})


def test_valid_ticket_is_admitted_with_its_type(app, client):
    door = setup_door(app)

    response = scan(client, door["token"], door["codes"][0], gate="North")

    assert response.status_code == 200
    body = response.get_json()
    assert body["result"] == "admitted"
    assert body["ticket_type"] == "Standard"
    assert body["ticket_id"] == door["ticket_ids"][0]
    assert body["gate"] == "North"


def test_second_scan_is_already_used_with_when_and_gate(app, client):
    door = setup_door(app)
    first = scan(client, door["token"], door["codes"][0], gate="North").get_json()

    second = scan(client, door["token"], door["codes"][0], gate="South").get_json()

    assert second["result"] == "already_used"
    assert second["gate"] == "North"
    assert second["checked_in_at"] == first["checked_in_at"]


def test_retry_of_the_same_request_gets_the_same_answer(app, client):
    door = setup_door(app)
    first = scan(client, door["token"], door["codes"][0], request_id="req-1").get_json()

    retry = scan(client, door["token"], door["codes"][0], request_id="req-1").get_json()
    other = scan(client, door["token"], door["codes"][0], request_id="req-2").get_json()

    assert first["result"] == retry["result"] == "admitted"
    assert retry["checked_in_at"] == first["checked_in_at"]
    assert other["result"] == "already_used"
    with app.app_context():
        logged = db.session.execute(sa.select(Scan.request_id, Scan.result).order_by(Scan.id)).all()
    assert logged == [("req-1", "admitted"), ("req-2", "already_used")]


def test_voided_ticket_is_refused(app, client):
    door = setup_door(app)
    with app.app_context():
        db.session.execute(sa.update(Ticket).values(status="voided"))
        db.session.commit()

    body = scan(client, door["token"], door["codes"][0]).get_json()

    assert body["result"] == "voided"
    assert body["ticket_type"] == "Standard"


def test_ticket_of_an_unpaid_order_is_refused(app, client):
    door = setup_door(app, order_status="pending")

    assert scan(client, door["token"], door["codes"][0]).get_json()["result"] == "not_paid"


def test_ticket_for_another_event_is_wrong_event(app, client):
    door = setup_door(app)
    with app.app_context():
        other = make_event()
        other_code = codes(make_tickets(other, 1))[0]

    assert scan(client, door["token"], other_code).get_json()["result"] == "wrong_event"
    with app.app_context():
        assert db.session.execute(sa.select(Ticket.checked_in_at).where(Ticket.event_id == other.id)).scalar() is None


def test_another_organisers_device_scanning_a_ticket_logs_it_under_that_device_only(app, client):
    door = setup_door(app)  # organiser A: the event, the ticket
    with app.app_context():
        organizer_b, _token_b = make_organizer("Salle B")
        event_b = make_event(organizer=organizer_b)
        device_b = make_device(organizer_b, [event_b], "B's door")
        event_b_id = str(event_b.id)

    answer = scan(client, device_b, door["codes"][0], request_id="b-1").get_json()

    a_stats = client.get(
        f"/api/v1/checkin/events/{door['event_id']}/stats",
        headers={"Authorization": f"Bearer {door['organizer_token']}"},
    ).get_json()
    b_stats = client.get(
        f"/api/v1/checkin/events/{event_b_id}/stats", headers={"Authorization": f"Bearer {device_b}"}
    ).get_json()
    with app.app_context():
        logged = db.session.execute(sa.select(Scan.device_id, Scan.event_id, Scan.ticket_id, Scan.ticket_type_id)).all()
        b_device = db.session.execute(sa.select(Device.id).where(Device.name == "B's door")).scalar_one()
    assert answer["result"] == "wrong_event"
    assert a_stats["scans"] == {} and b_stats["scans"] == {}
    assert logged == [(b_device, None, None, None)]  # B's device's history, naming nothing of A's
    assert scan(client, door["token"], door["codes"][0]).get_json()["result"] == "admitted"  # still unused at A


def test_forged_code_is_invalid(app, client):
    door = setup_door(app)
    code = door["codes"][0]
    forged = code[:-10] + ("1" if code[-10] != "1" else "2") + code[-9:]  # a digit of the signature

    body = scan(client, door["token"], forged).get_json()

    assert body["result"] == "invalid"
    assert body["reason"] == "bad_signature"
    assert scan(client, door["token"], "NOT A TICKET").get_json()["result"] == "invalid"


def test_signed_but_unknown_ticket_is_unknown(app, client):
    door = setup_door(app)
    with app.app_context():
        code = encode_ticket(keyring(), uuid.UUID(door["event_id"]), uuid.uuid4(), uuid.UUID(door["type_id"]))

    assert scan(client, door["token"], code).get_json()["result"] == "unknown_ticket"


def test_scan_without_device_token_is_401(app, client):
    door = setup_door(app)

    missing = client.post("/api/v1/checkin", json={"code": door["codes"][0]})
    wrong = scan(client, "nope", door["codes"][0])

    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert wrong.mimetype == "application/problem+json"


def test_bad_scan_body_is_a_clear_4xx(app, client):
    door = setup_door(app)
    headers = {"Authorization": f"Bearer {door['token']}"}

    not_json = client.post("/api/v1/checkin", data="x", headers=headers)
    no_code = client.post("/api/v1/checkin", json={"gate": "A"}, headers=headers)
    wrong_type = client.post("/api/v1/checkin", json={"code": 12}, headers=headers)

    assert not_json.status_code == 400
    assert no_code.status_code == 422 and "code" in no_code.get_json()["errors"]
    assert wrong_type.status_code == 422


def test_scan_log_holds_ids_and_results_only(app, client):
    door = setup_door(app)
    scan(client, door["token"], door["codes"][0], gate="North")
    scan(client, door["token"], door["codes"][0], gate="North")

    with app.app_context():
        columns = set(Scan.__table__.columns.keys())
        rows = db.session.execute(sa.select(Scan.result, Scan.gate, Scan.ticket_id)).all()

    assert columns == {
        "id",
        "event_id",
        "ticket_id",
        "ticket_type_id",
        "device_id",
        "gate",
        "result",
        "request_id",
        "offline",
        "scanned_at",
        "recorded_at",
    }
    assert [r.result for r in rows] == ["admitted", "already_used"]
    assert {str(r.ticket_id) for r in rows} == {door["ticket_ids"][0]}


def test_a_scan_costs_at_most_three_statements(app, client):
    door = setup_door(app, count=3)
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

        def count(_conn, _cursor, statement, *_args):
            if not statement.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
                statements.append(statement)

        sa.event.listen(engine, "before_cursor_execute", count)
    scan(client, door["token"], door["codes"][2])  # warm: connection set-up is not a scan's cost

    costs = []
    for code in (door["codes"][0], door["codes"][0], "FORGED"):
        statements.clear()
        scan(client, door["token"], code, request_id=uuid.uuid4().hex)
        costs.append(len(statements))

    # Admitted: admit, log. Already used: try to admit, read why, log. Invalid: read, log.
    assert costs == [2, 3, 2]


def test_stats_count_admitted_per_type_and_gate(app, client):
    door = setup_door(app, count=3)
    with app.app_context():
        event_id = uuid.UUID(door["event_id"])
        db.session.add(TicketType(event_id=event_id, name="Child", capacity=10, position=1))
        db.session.commit()
        from ticketing.catalog.models import Event

        event = db.session.get(Event, event_id)
        child_code = codes(make_tickets(event, 1, type_index=1))[0]
    scan(client, door["token"], door["codes"][0], gate="North")
    scan(client, door["token"], door["codes"][1], gate="South")
    scan(client, door["token"], door["codes"][1], gate="South")
    scan(client, door["token"], child_code, gate="North")

    response = client.get(
        f"/api/v1/checkin/events/{door['event_id']}/stats",
        headers={"Authorization": f"Bearer {door['organizer_token']}"},
    )

    body = response.get_json()
    assert response.status_code == 200
    assert body["admitted"] == 3
    assert body["expected"] == 4
    assert {t["name"]: (t["admitted"], t["expected"]) for t in body["by_ticket_type"]} == {
        "Standard": (2, 3),
        "Child": (1, 1),
    }
    assert body["by_gate"] == [{"gate": "North", "admitted": 2}, {"gate": "South", "admitted": 1}]
    assert body["scans"] == {"admitted": 3, "already_used": 1}


def test_stats_refuse_another_organiser(app, client):
    door = setup_door(app)
    with app.app_context():
        _other, other_token = make_organizer("Other venue")

    response = client.get(
        f"/api/v1/checkin/events/{door['event_id']}/stats", headers={"Authorization": f"Bearer {other_token}"}
    )

    assert response.status_code == 404


def test_a_scan_on_a_killed_database_connection_answers_503_and_records_nothing(pg_app):
    client = pg_app.test_client()
    door = setup_door(pg_app)
    scan(client, door["token"], door["codes"][1])  # the pool now holds a connection
    admin = sa.create_engine(pg_app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with admin.begin() as connection:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        admin.dispose()

    refused = scan(client, door["token"], door["codes"][0])
    with pg_app.app_context():
        checked_in = db.session.execute(sa.select(Ticket.checked_in_at).where(Ticket.id == door["ticket_ids"][0]))
        recorded = checked_in.scalar_one()
    retried = scan(client, door["token"], door["codes"][0])

    assert (refused.status_code, refused.get_json()["code"]) == (503, "database_unavailable")
    assert recorded is None
    assert retried.get_json()["result"] == "admitted"


NESTED_JSON = "[" * 20_000 + "]" * 20_000  # far deeper than the JSON decoder recurses, under 64 KiB


def test_deeply_nested_json_to_every_checkin_endpoint_is_a_400(app, client, caplog):
    door = setup_door(app)
    as_device = {"Authorization": f"Bearer {door['token']}"}
    as_organizer = {"Authorization": f"Bearer {door['organizer_token']}"}

    statuses = {
        path: client.post(path, data=NESTED_JSON, content_type="application/json", headers=headers).status_code
        for path, headers in (
            ("/api/v1/checkin", as_device),
            ("/api/v1/checkin/sync", as_device),
            ("/api/v1/checkin/devices", as_organizer),
            ("/api/v1/checkin/devices/pair", {}),
        )
    }

    assert set(statuses.values()) == {400}, statuses
    assert "unexpected" not in caplog.text


BAD_BODIES = {
    "no-code": ("/api/v1/checkin", {"json": {"gate": "A"}}),
    "code-not-text": ("/api/v1/checkin", {"json": {"code": 12}}),
    "not-json": ("/api/v1/checkin", {"data": "x"}),
    "scans-not-a-list": ("/api/v1/checkin/sync", {"json": {"scans": "x"}}),
    "scan-without-time": ("/api/v1/checkin/sync", {"json": {"scans": [{"code": "X", "request_id": "r"}]}}),
    "sync-not-json": ("/api/v1/checkin/sync", {"data": "x"}),
}
REVOKED, UNKNOWN, MISSING = "revoked", "unknown", "missing"


@pytest.mark.parametrize("token", [MISSING, UNKNOWN, REVOKED])
@pytest.mark.parametrize("case", BAD_BODIES, ids=list(BAD_BODIES))
def test_a_door_without_a_valid_token_is_told_so_before_its_body_is_judged(app, client, case, token):
    door = setup_door(app)
    path, body = BAD_BODIES[case]
    if token == REVOKED:
        client.delete(f"/api/v1/checkin/devices/{door['device_id']}", headers=bearer(door["organizer_token"]))
    headers = {MISSING: {}, UNKNOWN: bearer("not-a-device-token"), REVOKED: bearer(door["token"])}[token]

    response = client.post(path, headers=headers, **body)

    assert response.status_code == 401, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("case", BAD_BODIES, ids=list(BAD_BODIES))
def test_a_paired_door_with_a_bad_body_still_gets_400_or_422(app, client, case):
    door = setup_door(app)
    path, body = BAD_BODIES[case]

    response = client.post(path, headers=bearer(door["token"]), **body)

    assert response.status_code == (400 if "data" in body else 422)
    assert response.mimetype == "application/problem+json"
