"""Placing orders costs something: a client cannot hold a sale's stock, or mail strangers, for free."""

from __future__ import annotations

from tests.conftest import outbox, published_event
from ticketing.checkout.limits import HELD_TICKETS_PER_CLIENT


def _order(client, event, email, quantity=1, address="203.0.113.7"):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/orders",
        json={
            "event_id": str(event.id),
            "items": [{"ticket_type_id": str(event.type_id), "quantity": quantity}],
            "email": email,
        },
        environ_base={"REMOTE_ADDR": address},
    )


def test_one_client_cannot_hold_more_than_the_cap_however_it_splits_its_orders(app, client):
    event = published_event(app, capacity=100, max_per_order=10)
    per_order = 10

    answers = [_order(client, event, f"h{n}@example.org", per_order) for n in range(4)]
    elsewhere = _order(client, event, "other@example.org", per_order, address="198.51.100.9")

    held = HELD_TICKETS_PER_CLIENT // per_order
    assert [a.status_code for a in answers] == [201] * held + [429] * (4 - held)
    assert answers[-1].get_json()["code"] == "too_many_held"
    assert elsewhere.status_code == 201
    available = client.get(f"/api/v1/events/{event.id}").get_json()["ticket_types"][0]["available"]
    assert available == 100 - HELD_TICKETS_PER_CLIENT - per_order


def test_a_refused_order_costs_nothing_against_the_hold_cap(app, client):
    event = published_event(app, capacity=5, max_per_order=10)

    too_many = [_order(client, event, f"s{n}@example.org", 10) for n in range(3)]
    fits = _order(client, event, "fits@example.org", 5)

    assert [a.status_code for a in too_many] == [409, 409, 409]
    assert fits.status_code == 201


def test_free_orders_to_many_addresses_from_one_client_stop_at_the_client_limit(app, client):
    event = published_event(app, capacity=500, price_cents=0, fee_cents=0)

    statuses = [_order(client, event, f"stranger{n}@example.org").status_code for n in range(25)]

    assert statuses.count(201) == 20 and statuses[20:] == [429] * 5
    assert len(outbox(app)) == 20


def test_one_address_receives_a_limited_number_of_orders_whoever_places_them(app, client):
    event = published_event(app, capacity=500, price_cents=0, fee_cents=0)

    statuses = [
        _order(
            client, event, "Victim@Example.org" if n % 2 else "victim@example.org", address=f"192.0.2.{n}"
        ).status_code
        for n in range(12)
    ]

    assert statuses == [201] * 10 + [429, 429]
    assert len(outbox(app)) == 10


def test_the_buy_form_shares_the_clients_budget_with_the_api(app, client):
    from tests.conftest import post_form

    event = published_event(app, capacity=100, max_per_order=20)
    _order(client, event, "api@example.org", HELD_TICKETS_PER_CLIENT)

    page = post_form(
        client,
        f"/events/{event.id}",
        f"/events/{event.id}/orders",
        {"email": "form@example.org", f"qty-{event.type_id}": "2"},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )

    assert page.status_code == 429
    assert "You already hold the most tickets" in page.get_data(as_text=True)
