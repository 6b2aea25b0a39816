"""Placing an order with the stripe provider: what the SDK sends, and where the buyer goes."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

import config
from tests.conftest import published_event
from tests.payments.conftest import deliver, stripe_event
from ticketing.checkout.models import Order
from ticketing.extensions import db

EMAIL = "zoe.buyer@example.org"
NAME = "Zoé Marker"
POSTCODE = "31999"


def place(client, event, quantity=2, **extra):
    body = {
        "event_id": str(event.id),
        "items": [{"ticket_type_id": str(event.type_id), "quantity": quantity}],
        "email": EMAIL,
        **extra,
    }
    response = client.post("/api/v1/orders", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def go_to_stripe(client, placed):
    return client.get(placed["payment"]["url"].replace("https://tickets.example.org", ""))


def test_order_creates_one_checkout_session_with_fee_line_and_only_the_order_id(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event = published_event(stripe_app, price_cents=1500, fee_cents=100, ask_name=True, ask_postcode=True)
    placed = place(client, event, quantity=2, name=NAME, postcode=POSTCODE)

    response = go_to_stripe(client, placed)

    assert response.status_code == 303
    assert response.headers["Location"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    [(headers, body)] = fake_stripe.sent("POST", "/v1/checkout/sessions")
    with stripe_app.app_context():
        order = db.session.execute(select(Order)).scalar_one()
        assert order.payment_session_ref == response.headers["Location"].rsplit("/", 1)[-1]
        hold_end = order.hold_expires_at
        created = order.created_at
    assert headers["idempotency-key"] == f"guichet-checkout-{order.id}"
    assert headers["authorization"] == "Bearer sk_test_guichet"
    assert body["mode"] == "payment" and body["currency"] == "eur"
    tickets, fee = body["line_items"]["0"], body["line_items"]["1"]
    assert tickets["quantity"] == "2" and tickets["price_data"]["unit_amount"] == "1500"
    assert tickets["price_data"]["currency"] == "eur"
    assert fee["quantity"] == "1" and fee["price_data"]["unit_amount"] == "200"
    assert fee["price_data"]["product_data"]["name"] == "Service fee"
    assert body["metadata"] == {"order_id": str(order.id)}
    assert body["payment_intent_data"] == {"metadata": {"order_id": str(order.id)}}
    assert body["customer_creation"] == "if_required"
    assert "customer" not in body and "customer_email" not in body
    # Stripe's floor is 30 minutes: the session ends with the hold, or at that floor.
    assert int(body["expires_at"]) == int(max(hold_end, created + dt.timedelta(minutes=45)).timestamp())
    page = placed["code"] + "/" + placed["access_token"]
    assert body["success_url"] == f"https://tickets.example.org/orders/{page}?payment=returned"
    assert body["cancel_url"] == f"https://tickets.example.org/orders/{page}?payment=cancelled"
    everything_sent = repr(fake_stripe.requests).lower()
    for personal in (EMAIL, NAME.lower(), POSTCODE, "zoe", "marker"):
        assert personal.lower() not in everything_sent


def test_going_to_stripe_twice_reuses_the_session_through_the_idempotency_key(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event = published_event(stripe_app)
    placed = place(client, event)

    first = go_to_stripe(client, placed)
    second = go_to_stripe(client, placed)

    assert first.headers["Location"] == second.headers["Location"]
    assert len(fake_stripe.sessions) == 1
    keys = {headers["idempotency-key"] for headers, _ in fake_stripe.sent("POST", "/v1/checkout/sessions")}
    assert len(keys) == 1


def test_zero_decimal_currency_is_sent_in_whole_yen(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event = published_event(stripe_app, price_cents=3000, fee_cents=150, currency="JPY")
    placed = place(client, event, quantity=1)

    go_to_stripe(client, placed)

    [(_headers, body)] = fake_stripe.sent("POST", "/v1/checkout/sessions")
    assert body["currency"] == "jpy"
    assert body["line_items"]["0"]["price_data"]["unit_amount"] == "3000"
    assert body["line_items"]["1"]["price_data"]["unit_amount"] == "150"
    page = client.get(f"/orders/{placed['code']}/{placed['access_token']}").get_data(as_text=True)
    assert "¥3,150" in page


def test_stripe_down_gives_a_clear_503_and_keeps_the_hold(stripe_app, fake_stripe):
    fake_stripe.server.clear()  # nothing answers any more: every request is a 500
    client = stripe_app.test_client()
    event = published_event(stripe_app)
    placed = place(client, event)

    response = go_to_stripe(client, placed)

    assert response.status_code == 503
    assert "try again" in response.get_data(as_text=True)
    with stripe_app.app_context():
        assert db.session.execute(select(Order.status)).scalar_one() == "pending"


def test_returning_from_stripe_shows_payment_being_confirmed_until_the_webhook(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event = published_event(stripe_app)
    placed = place(client, event)
    session_id = go_to_stripe(client, placed).headers["Location"].rsplit("/", 1)[-1]
    page_url = f"/orders/{placed['code']}/{placed['access_token']}?payment=returned"

    before = client.get(page_url).get_data(as_text=True)
    deliver(client, stripe_event("checkout.session.completed", fake_stripe.complete(session_id)))
    after = client.get(page_url).get_data(as_text=True)

    assert "Payment being confirmed" in before and "Your 2 tickets" not in before
    assert "Payment being confirmed" not in after and "Your 2 tickets" in after


def test_csp_allows_the_stripe_checkout_origin_in_form_action_only_with_stripe(stripe_app, app):
    with_stripe = stripe_app.test_client().get("/").headers["Content-Security-Policy"]
    without = app.test_client().get("/").headers["Content-Security-Policy"]

    assert "form-action 'self' https://checkout.stripe.com;" in with_stripe
    assert "form-action 'self';" in without
    assert "script-src 'self';" in with_stripe


def test_stripe_is_the_provider_when_its_key_is_set_and_needs_the_webhook_secret(tmp_path):
    chosen = config.TestingConfig({"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x"})
    default = config.TestingConfig({})

    assert chosen.PAYMENT_PROVIDER == "stripe" and default.PAYMENT_PROVIDER == "demo"
    with pytest.raises(config.ConfigError, match="STRIPE_WEBHOOK_SECRET"):
        config.TestingConfig({"STRIPE_SECRET_KEY": "sk_test_x"})
    with pytest.raises(config.ConfigError, match="STRIPE_SECRET_KEY"):
        config.TestingConfig({"TICKETING_PAYMENT_PROVIDER": "stripe"})
