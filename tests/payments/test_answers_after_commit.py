"""Stripe's webhook and buyer refunds that fail after their commit say what was recorded
(the fault and the other cases: ``tests/test_after_commit.py``)."""

from __future__ import annotations

from sqlalchemy import select, update

from tests.conftest import csrf_token, published_event, queued_mail
from tests.payments.conftest import deliver, stripe_event
from tests.payments.test_refunds import buy_and_pay, organised_event
from tests.payments.test_stripe_checkout import go_to_stripe, place
from tests.test_after_commit import database_fails_after_the_first_committed_write, text_of
from ticketing.catalog.models import TicketType
from ticketing.checkout.models import Order, Ticket
from ticketing.extensions import db
from ticketing.payments.models import PaymentEvent, Refund


def test_a_webhook_recorded_before_the_database_went_gets_a_2xx(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event = published_event(stripe_app)
    placed = place(client, event, quantity=1)
    session_id = go_to_stripe(client, placed).headers["Location"].rsplit("/", 1)[-1]
    payload = stripe_event("checkout.session.completed", fake_stripe.complete(session_id, payment_intent="pi_1"))

    with database_fails_after_the_first_committed_write(stripe_app) as fault:
        answer = deliver(client, payload)
    again = deliver(client, payload)  # Stripe would not retry a 2xx; if it did, nothing changes

    assert fault["refused"] > 0
    assert answer.status_code == 200 and answer.get_json()["received"] is True
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    with stripe_app.app_context():
        assert db.session.execute(select(Order.status)).scalar_one() == "paid"
        assert db.session.execute(select(PaymentEvent.id)).scalars().all() != []
        assert len(db.session.execute(select(Ticket)).scalars().all()) == 1


def test_a_buyer_refund_whose_sending_fails_with_the_database_says_it_is_recorded(stripe_app, fake_stripe, runner):
    client = stripe_app.test_client()
    event, _token = organised_event(stripe_app, capacity=5)
    with stripe_app.app_context():
        db.session.execute(update(TicketType).values(refundable_until_hours=48))
        db.session.commit()
    placed, _session = buy_and_pay(client, fake_stripe, event)
    page = f"/orders/{placed['code']}/{placed['access_token']}"
    token = csrf_token(client, page + "/refund")

    with database_fails_after_the_first_committed_write(stripe_app) as fault:
        answer = client.post(page + "/refund", data={"csrf_token": token})

    assert fault["refused"] > 0
    assert answer.status_code == 200
    assert f"Your refund for order {placed['code']} is recorded" in text_of(answer)
    with stripe_app.app_context():
        assert db.session.execute(select(Order.status)).scalar_one() == "refunded"
        assert db.session.execute(select(Refund.status)).scalar_one() == "pending"
    stripe_app.test_cli_runner().invoke(args=["process-refunds"])
    assert len(fake_stripe.sent("POST", "/v1/refunds")) == 1


def test_a_cancellation_whose_mails_fail_with_the_database_answers_that_it_is_cancelled(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event, token = organised_event(stripe_app)
    buy_and_pay(client, fake_stripe, event)

    with database_fails_after_the_first_committed_write(stripe_app) as fault:
        answer = client.post(f"/api/v1/events/{event.id}/cancel", headers={"Authorization": f"Bearer {token}"})

    assert fault["refused"] > 0
    assert answer.status_code == 200
    assert answer.get_json() == {"id": str(event.id), "status": "cancelled", "orders_to_refund": 1, "buyers_mailed": 0}
    with stripe_app.app_context():
        assert db.session.execute(select(Refund.status)).scalar_one() == "awaiting_choice"
    assert queued_mail(stripe_app) != []  # the choice mail stays owed, for `flask send-mail`
