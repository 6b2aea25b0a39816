"""The organiser API (``/api/v1/events``, bearer token) and the public event reads."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import update

from tests.conftest import make_event, make_organizer
from ticketing.catalog.models import Event, TicketType
from ticketing.extensions import db
from ticketing.models import utcnow


def organizer_token(app, name: str = "Salle Test") -> str:
    with app.app_context():
        return make_organizer(name)[1]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def iso(value: dt.datetime) -> str:
    return value.isoformat()


def event_body(days: int = 30, **overrides):
    starts = utcnow().replace(microsecond=0) + dt.timedelta(days=days)
    body = {
        "title": "Nuit du jazz",
        "description": "Trio et invités",
        "venue_name": "La Cave",
        "venue_address": "3 rue Basse, 31000 Toulouse",
        "starts_at": iso(starts),
        "ends_at": iso(starts + dt.timedelta(hours=3)),
        "timezone": "Europe/Paris",
    }
    body.update(overrides)
    return body


TICKET_TYPE = {"name": "Plein tarif", "price_cents": 1800, "fee_cents": 90, "capacity": 40}


def create_event(client, token: str, **overrides) -> dict:
    response = client.post("/api/v1/events", json=event_body(**overrides), headers=auth(token))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def add_ticket_type(client, token: str, event_id: str, **overrides) -> dict:
    response = client.post(
        f"/api/v1/events/{event_id}/ticket-types", json={**TICKET_TYPE, **overrides}, headers=auth(token)
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def published_event(client, token: str, **overrides) -> tuple[dict, dict]:
    event = create_event(client, token, **overrides)
    ticket_type = add_ticket_type(client, token, event["id"])
    response = client.post(f"/api/v1/events/{event['id']}/publish", headers=auth(token))
    assert response.status_code == 200, response.get_json()
    return response.get_json(), ticket_type


def listed_ids(client) -> set[str]:
    return {e["id"] for e in client.get("/api/v1/events").get_json()["events"]}


def test_created_event_is_a_draft_that_the_public_cannot_see(app, client):
    token = organizer_token(app)

    event = create_event(client, token)

    assert event["status"] == "draft"
    assert event["title"] == "Nuit du jazz"
    assert client.get(f"/api/v1/events/{event['id']}").status_code == 404
    assert event["id"] not in listed_ids(client)


def test_added_ticket_type_is_returned_with_its_prices_and_capacity(app, client):
    token = organizer_token(app)
    event = create_event(client, token)

    ticket_type = add_ticket_type(client, token, event["id"], grants=["entry", "stream"])

    assert ticket_type["name"] == "Plein tarif"
    assert ticket_type["price_cents"] == 1800
    assert ticket_type["fee_cents"] == 90
    assert ticket_type["capacity"] == 40
    assert ticket_type["available"] == 40
    assert ticket_type["grants"] == ["entry", "stream"]
    assert ticket_type["sale_state"] == "unavailable"


def test_published_event_is_public_with_its_ticket_types(app, client):
    token = organizer_token(app)

    event, ticket_type = published_event(client, token)

    public = client.get(f"/api/v1/events/{event['id']}")
    assert public.status_code == 200
    body = public.get_json()
    assert body["status"] == "published"
    assert [t["id"] for t in body["ticket_types"]] == [ticket_type["id"]]
    assert body["ticket_types"][0]["sale_state"] == "open"
    assert "sold" not in body and "held" not in body
    assert event["id"] in listed_ids(client)


def test_update_changes_only_the_fields_sent(app, client):
    token = organizer_token(app)
    event = create_event(client, token)

    response = client.patch(
        f"/api/v1/events/{event['id']}", json={"title": "Nuit du jazz (2e date)", "ask_name": True}, headers=auth(token)
    )

    assert response.status_code == 200
    body = response.get_json()
    assert body["title"] == "Nuit du jazz (2e date)"
    assert body["ask_name"] is True
    assert body["venue"]["name"] == "La Cave"
    assert body["starts_at"] == event["starts_at"]


def test_ticket_type_update_changes_price(app, client):
    token = organizer_token(app)
    event = create_event(client, token)
    ticket_type = add_ticket_type(client, token, event["id"])

    response = client.patch(
        f"/api/v1/events/{event['id']}/ticket-types/{ticket_type['id']}",
        json={"price_cents": 2000, "max_per_order": 4},
        headers=auth(token),
    )

    assert response.status_code == 200
    assert response.get_json()["price_cents"] == 2000
    assert response.get_json()["max_per_order"] == 4


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("patch", "/api/v1/events/{id}", {"title": "Taken over"}),
        ("post", "/api/v1/events/{id}/publish", None),
        ("post", "/api/v1/events/{id}/ticket-types", TICKET_TYPE),
        ("patch", "/api/v1/events/{id}/ticket-types/{type_id}", {"capacity": 1}),
    ],
)
def test_another_organizers_token_gets_404_on_my_event(app, client, method, path, body):
    mine = organizer_token(app, "Salle A")
    theirs = organizer_token(app, "Salle B")
    event = create_event(client, mine)
    ticket_type = add_ticket_type(client, mine, event["id"])

    response = getattr(client, method)(
        path.format(id=event["id"], type_id=ticket_type["id"]), json=body, headers=auth(theirs)
    )

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    with app.app_context():
        stored = db.session.get(Event, uuid.UUID(event["id"]))
        assert stored.title == "Nuit du jazz"
        assert stored.status == "draft"
        assert [(t.capacity, t.name) for t in stored.ticket_types] == [(40, "Plein tarif")]


def test_other_organizers_drafts_are_not_in_my_list(app, client):
    mine = organizer_token(app, "Salle A")
    theirs = organizer_token(app, "Salle B")
    create_event(client, theirs)

    response = client.get("/api/v1/organizer/events", headers=auth(mine))

    assert response.status_code == 200
    assert response.get_json()["events"] == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-real-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ],
    ids=["none", "bad-token", "basic-scheme", "empty-bearer"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/events"),
        ("get", "/api/v1/organizer/events"),
        ("patch", f"/api/v1/events/{uuid.uuid4()}"),
        ("post", f"/api/v1/events/{uuid.uuid4()}/publish"),
    ],
)
def test_missing_or_bad_token_gets_401_with_www_authenticate(app, client, headers, method, path):
    organizer_token(app)

    response = getattr(client, method)(path, json=event_body(), headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 401
    with app.app_context():
        assert db.session.query(Event).count() == 0


def test_capacity_cannot_go_below_sold_plus_held(app, client):
    token = organizer_token(app)
    event, ticket_type = published_event(client, token)
    with app.app_context():
        db.session.execute(update(TicketType).where(TicketType.id == uuid.UUID(ticket_type["id"])).values(sold=2))
        db.session.commit()
    order = client.post(
        "/api/v1/orders",
        json={
            "event_id": event["id"],
            "email": "buyer@example.org",
            "items": [{"ticket_type_id": ticket_type["id"], "quantity": 3}],
        },
    )
    assert order.status_code == 201

    too_low = client.patch(
        f"/api/v1/events/{event['id']}/ticket-types/{ticket_type['id']}", json={"capacity": 4}, headers=auth(token)
    )
    just_enough = client.patch(
        f"/api/v1/events/{event['id']}/ticket-types/{ticket_type['id']}", json={"capacity": 5}, headers=auth(token)
    )

    assert too_low.status_code == 409
    assert too_low.get_json()["code"] == "capacity_below_sold"
    assert "5" in too_low.get_json()["detail"]
    assert just_enough.status_code == 200
    assert just_enough.get_json()["capacity"] == 5
    assert just_enough.get_json()["available"] == 0


def test_refused_capacity_change_keeps_the_other_fields_unchanged(app, client):
    token = organizer_token(app)
    event, ticket_type = published_event(client, token)
    with app.app_context():
        db.session.execute(update(TicketType).where(TicketType.id == uuid.UUID(ticket_type["id"])).values(sold=10))
        db.session.commit()

    response = client.patch(
        f"/api/v1/events/{event['id']}/ticket-types/{ticket_type['id']}",
        json={"capacity": 9, "price_cents": 1},
        headers=auth(token),
    )

    assert response.status_code == 409
    with app.app_context():
        stored = db.session.get(TicketType, uuid.UUID(ticket_type["id"]))
        assert (stored.capacity, stored.price_cents) == (40, 1800)


def test_publishing_without_ticket_types_is_409(app, client):
    token = organizer_token(app)
    event = create_event(client, token)

    response = client.post(f"/api/v1/events/{event['id']}/publish", headers=auth(token))

    assert response.status_code == 409
    assert response.get_json()["code"] == "no_ticket_types"
    assert client.get(f"/api/v1/events/{event['id']}").status_code == 404


def test_event_ending_before_it_starts_is_422_on_ends_at(app, client):
    token = organizer_token(app)
    body = event_body()
    body["ends_at"], body["starts_at"] = body["starts_at"], body["ends_at"]

    response = client.post("/api/v1/events", json=body, headers=auth(token))

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert set(response.get_json()["errors"]) == {"ends_at"}
    with app.app_context():
        assert db.session.query(Event).count() == 0


def test_update_moving_the_start_after_the_end_is_422(app, client):
    token = organizer_token(app)
    event = create_event(client, token)
    later = dt.datetime.fromisoformat(event["ends_at"].replace("Z", "+00:00")) + dt.timedelta(hours=1)

    response = client.patch(f"/api/v1/events/{event['id']}", json={"starts_at": iso(later)}, headers=auth(token))

    assert response.status_code == 422
    assert "ends_at" in response.get_json()["errors"]


@pytest.mark.parametrize("field", ["title", "starts_at", "ends_at"])
@pytest.mark.parametrize("value", [None, "", "   "])
def test_update_cannot_blank_a_required_event_field(app, client, field, value):
    token = organizer_token(app)
    event = create_event(client, token)

    response = client.patch(f"/api/v1/events/{event['id']}", json={field: value}, headers=auth(token))

    assert response.status_code == 422
    assert field in response.get_json()["errors"]


@pytest.mark.parametrize("field", ["name", "price_cents"])
def test_update_cannot_blank_a_required_ticket_type_field(app, client, field):
    token = organizer_token(app)
    event = create_event(client, token)
    ticket_type = add_ticket_type(client, token, event["id"])

    response = client.patch(
        f"/api/v1/events/{event['id']}/ticket-types/{ticket_type['id']}", json={field: None}, headers=auth(token)
    )

    assert response.status_code == 422
    assert field in response.get_json()["errors"]


@pytest.mark.parametrize(
    "value",
    ["9999-12-31T23:30:00-05:00", "0001-01-01T00:30:00+01:00", "not a date", "2030-02-30T20:00:00"],
)
def test_out_of_range_or_malformed_time_is_422_not_500(app, client, value):
    token = organizer_token(app)

    response = client.post("/api/v1/events", json=event_body(starts_at=value), headers=auth(token))

    assert response.status_code == 422
    assert "starts_at" in response.get_json()["errors"]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Europe", "zone.tab", "/etc/localtime", "../Paris"])
def test_unknown_time_zone_is_422(app, client, zone):
    token = organizer_token(app)

    response = client.post("/api/v1/events", json=event_body(timezone=zone), headers=auth(token))

    assert response.status_code == 422
    assert "timezone" in response.get_json()["errors"]


def test_naive_times_are_read_in_the_events_time_zone(app, client):
    token = organizer_token(app)
    year = utcnow().year + 1

    event = create_event(
        client,
        token,
        timezone="America/New_York",
        starts_at=f"{year}-07-01T20:00:00",
        ends_at=f"{year}-07-01T23:00:00",
        doors_at=f"{year}-07-01T19:30:00",
    )
    winter = add_ticket_type(client, token, event["id"], sale_starts_at=f"{year}-01-15T10:00:00")

    assert event["starts_at"] == f"{year}-07-02T00:00:00Z"
    assert event["ends_at"] == f"{year}-07-02T03:00:00Z"
    assert event["doors_at"] == f"{year}-07-01T23:30:00Z"
    assert winter["sale_starts_at"] == f"{year}-01-15T15:00:00Z"


def test_times_with_an_offset_keep_their_offset(app, client):
    token = organizer_token(app)
    year = utcnow().year + 1

    event = create_event(
        client,
        token,
        timezone="Asia/Tokyo",
        starts_at=f"{year}-07-01T20:00:00+02:00",
        ends_at=f"{year}-07-01T23:00:00Z",
    )

    assert event["starts_at"] == f"{year}-07-01T18:00:00Z"
    assert event["ends_at"] == f"{year}-07-01T23:00:00Z"


def test_public_list_holds_upcoming_published_events_only(app, client):
    token = organizer_token(app)
    published, _type = published_event(client, token, title="Publié")
    draft = create_event(client, token, title="Brouillon")
    with app.app_context():
        past = make_event(starts_in=dt.timedelta(days=-3))
        past_id = str(past.id)
        cancelled = make_event(status="cancelled")
        cancelled_id = str(cancelled.id)

    ids = listed_ids(client)

    assert published["id"] in ids
    assert draft["id"] not in ids
    assert past_id not in ids
    assert cancelled_id not in ids


def test_public_list_shows_availability_and_sale_state(app, client):
    with app.app_context():
        open_event = make_event(capacity=12)
        db.session.execute(update(TicketType).where(TicketType.event_id == open_event.id).values(sold=5))
        db.session.commit()
        later = make_event(sale_starts_at=utcnow() + dt.timedelta(days=2))
        full = make_event(capacity=3)
        db.session.execute(update(TicketType).where(TicketType.event_id == full.id).values(sold=3))
        db.session.commit()
        ids = {"open": str(open_event.id), "later": str(later.id), "full": str(full.id)}

    events = {e["id"]: e for e in client.get("/api/v1/events").get_json()["events"]}

    states = {name: events[ids[name]]["ticket_types"][0] for name in ids}
    assert (states["open"]["sale_state"], states["open"]["available"]) == ("open", 7)
    assert (states["later"]["sale_state"], states["later"]["available"]) == ("not_yet", 10)
    assert states["later"]["sale_starts_at"] is not None
    assert (states["full"]["sale_state"], states["full"]["available"]) == ("sold_out", 0)


def test_public_list_is_ordered_by_start(app, client):
    with app.app_context():
        late = str(make_event(starts_in=dt.timedelta(days=20)).id)
        soon = str(make_event(starts_in=dt.timedelta(days=2)).id)

    events = [e["id"] for e in client.get("/api/v1/events").get_json()["events"]]

    assert events == [soon, late]


def test_organizer_list_shows_drafts_with_sold_and_held_counts(app, client):
    token = organizer_token(app)
    event, ticket_type = published_event(client, token, title="En vente")
    draft = create_event(client, token, title="Brouillon")
    with app.app_context():
        db.session.execute(update(TicketType).where(TicketType.id == uuid.UUID(ticket_type["id"])).values(sold=4))
        db.session.commit()
    client.post(
        "/api/v1/orders",
        json={
            "event_id": event["id"],
            "email": "buyer@example.org",
            "items": [{"ticket_type_id": ticket_type["id"], "quantity": 2}],
        },
    )

    response = client.get("/api/v1/organizer/events", headers=auth(token))

    assert response.status_code == 200
    events = {e["id"]: e for e in response.get_json()["events"]}
    assert set(events) == {event["id"], draft["id"]}
    assert events[draft["id"]]["status"] == "draft"
    assert events[event["id"]]["sold"] == {ticket_type["id"]: 4}
    assert events[event["id"]]["held"] == {ticket_type["id"]: 2}
    assert events[event["id"]]["ticket_types"][0]["available"] == 34


@pytest.mark.parametrize(
    "body",
    [
        {"title": "x" * 201},
        {"title": 42},
        {"mode": "hologram"},
        {"currency": "XBT"},
        {"ask_name": "maybe"},
        {"organizer_id": str(uuid.uuid4())},
        {"status": "published"},
    ],
    ids=["long-title", "title-not-text", "mode", "currency", "flag", "organizer-id", "status"],
)
def test_bad_event_fields_are_422_with_the_field_named(app, client, body):
    token = organizer_token(app)

    response = client.post("/api/v1/events", json=event_body(**body), headers=auth(token))

    assert response.status_code == 422
    assert set(body) <= set(response.get_json()["errors"])
    with app.app_context():
        assert db.session.query(Event).count() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"price_cents": -1},
        {"capacity": 10**12},
        {"capacity": "many"},
        {"max_per_order": 0},
        {"grants": ["backstage"]},
        {"grants": []},
        {"sold": 3},
    ],
    ids=["negative-price", "huge-capacity", "capacity-text", "max-zero", "grants-unknown", "grants-empty", "sold"],
)
def test_bad_ticket_type_fields_are_422_with_the_field_named(app, client, body):
    token = organizer_token(app)
    event = create_event(client, token)

    response = client.post(
        f"/api/v1/events/{event['id']}/ticket-types", json={**TICKET_TYPE, **body}, headers=auth(token)
    )

    assert response.status_code == 422
    assert set(body) <= set(response.get_json()["errors"])
    with app.app_context():
        assert db.session.query(TicketType).count() == 0


def test_body_that_is_not_an_object_is_refused(app, client):
    token = organizer_token(app)

    response = client.post("/api/v1/events", json=[event_body()], headers=auth(token))

    assert response.status_code in (400, 422)
    assert response.mimetype == "application/problem+json"


def test_event_id_that_is_not_a_uuid_is_404(app, client):
    token = organizer_token(app)

    response = client.patch("/api/v1/events/not-a-uuid", json={"title": "x"}, headers=auth(token))

    assert response.status_code == 404
    assert client.get("/api/v1/events/not-a-uuid").status_code == 404


def test_ticket_type_of_another_event_is_404(app, client):
    token = organizer_token(app)
    first = create_event(client, token)
    second = create_event(client, token)
    other_type = add_ticket_type(client, token, second["id"])

    response = client.patch(
        f"/api/v1/events/{first['id']}/ticket-types/{other_type['id']}", json={"capacity": 1}, headers=auth(token)
    )

    assert response.status_code == 404
