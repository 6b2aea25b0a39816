"""Bounds on what organisers enter, each refused with a 422 naming the field:
instants within ten years of now (either side), and a ticket's price and fee together at
most ``MAX_PRICE_CENTS``, so that nothing downstream (retention arithmetic, order totals
in an integer column) meets a value it cannot hold."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.catalog.test_api import TICKET_TYPE, add_ticket_type, auth, create_event, event_body, organizer_token
from ticketing.catalog.services import MAX_PER_ORDER, MAX_PRICE_CENTS
from ticketing.models import utcnow

FAR_FUTURE = "9999-12-31T23:00:00+00:00"
ELEVEN_YEARS = dt.timedelta(days=11 * 366)


def iso(value: dt.datetime) -> str:
    return value.replace(microsecond=0).isoformat()


@pytest.mark.parametrize("field", ["starts_at", "ends_at", "doors_at", "stream_replay_until"])
@pytest.mark.parametrize("when", ["far future", "eleven years ago"])
def test_an_event_instant_beyond_ten_years_is_refused_with_a_422(app, client, field, when):
    token = organizer_token(app)
    value = FAR_FUTURE if when == "far future" else iso(utcnow() - ELEVEN_YEARS)
    body = event_body()
    if field == "starts_at":
        body["starts_at"], body["doors_at"] = value, None
    body[field] = value

    answer = client.post("/api/v1/events", json=body, headers=auth(token))

    assert answer.status_code == 422
    assert answer.get_json()["errors"][field] == "Must be within ten years of today."


def test_a_patch_to_a_far_date_is_refused_and_changes_nothing(app, client):
    token = organizer_token(app)
    event = create_event(client, token)

    answer = client.patch(f"/api/v1/events/{event['id']}", json={"ends_at": FAR_FUTURE}, headers=auth(token))

    assert answer.status_code == 422 and "ends_at" in answer.get_json()["errors"]
    [listed] = client.get("/api/v1/organizer/events", headers=auth(token)).get_json()["events"]
    assert listed["ends_at"] == event["ends_at"]


def test_an_event_nine_years_ahead_is_accepted(app, client):
    token = organizer_token(app)

    create_event(client, token, days=9 * 365)


@pytest.mark.parametrize("field", ["sale_starts_at", "sale_ends_at"])
def test_a_sale_window_beyond_ten_years_is_refused_with_a_422(app, client, field):
    token = organizer_token(app)
    event = create_event(client, token)

    answer = client.post(
        f"/api/v1/events/{event['id']}/ticket-types", json={**TICKET_TYPE, field: FAR_FUTURE}, headers=auth(token)
    )

    assert answer.status_code == 422
    assert answer.get_json()["errors"][field] == "Must be within ten years of today."


def test_price_and_fee_together_above_the_bound_are_refused_with_a_422(app, client):
    token = organizer_token(app)
    event = create_event(client, token)

    answer = client.post(
        f"/api/v1/events/{event['id']}/ticket-types",
        json={**TICKET_TYPE, "price_cents": MAX_PRICE_CENTS, "fee_cents": 1},
        headers=auth(token),
    )

    assert answer.status_code == 422
    assert (
        answer.get_json()["errors"]["fee_cents"]
        == f"price_cents and fee_cents together must be at most {MAX_PRICE_CENTS}."
    )


def test_a_patch_raising_the_price_past_the_bound_with_the_stored_fee_is_refused(app, client):
    token = organizer_token(app)
    event = create_event(client, token)
    ticket_type = add_ticket_type(client, token, event["id"], fee_cents=100)

    answer = client.patch(
        f"/api/v1/events/{event['id']}/ticket-types/{ticket_type['id']}",
        json={"price_cents": MAX_PRICE_CENTS},
        headers=auth(token),
    )

    assert answer.status_code == 422 and "price_cents" in answer.get_json()["errors"]


def test_price_and_fee_at_the_bound_are_accepted(app, client):
    token = organizer_token(app)
    event = create_event(client, token)

    ticket_type = add_ticket_type(client, token, event["id"], price_cents=MAX_PRICE_CENTS - 500, fee_cents=500)

    assert ticket_type["price_cents"] + ticket_type["fee_cents"] == MAX_PRICE_CENTS


@pytest.mark.parametrize("field", ["price_cents", "fee_cents"])
def test_a_price_or_fee_alone_above_the_bound_is_refused(app, client, field):
    token = organizer_token(app)
    event = create_event(client, token)
    body = {**TICKET_TYPE, "fee_cents": 0, field: MAX_PRICE_CENTS + 1}

    answer = client.post(f"/api/v1/events/{event['id']}/ticket-types", json=body, headers=auth(token))

    assert answer.status_code == 422 and field in answer.get_json()["errors"]


def test_a_full_line_of_the_dearest_ticket_fits_an_integer_column():
    assert MAX_PRICE_CENTS * MAX_PER_ORDER <= 2**31 - 1
