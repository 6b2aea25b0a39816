"""The Stripe webhook: signatures as Stripe makes them, repeats, disorder, late payments."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

from sqlalchemy import func, select, update

from tests.checkout.test_orders import mail_text, read_mail
from tests.conftest import MAIL_WORKER, outbox, published_event, queued_mail
from tests.payments.conftest import WEBHOOK_SECRET, deliver, sign, stripe_event
from tests.payments.test_stripe_checkout import go_to_stripe, place
from ticketing.catalog.models import TicketType
from ticketing.checkout import settlement as checkout_services
from ticketing.checkout.models import Order, Ticket
from ticketing.checkout.stock import release_expired_holds
from ticketing.extensions import db
from ticketing.payments.models import PaymentEvent, Refund


def paid_session(client, stripe_app, fake_stripe, quantity=2, **event_options):
    event = published_event(stripe_app, **event_options)
    placed = place(client, event, quantity=quantity)
    session_id = go_to_stripe(client, placed).headers["Location"].rsplit("/", 1)[-1]
    return event, placed, fake_stripe.complete(session_id, payment_intent=f"pi_{session_id}")


def counts(app):
    with app.app_context():
        tickets = db.session.scalar(select(func.count()).select_from(Ticket))
        order = db.session.execute(select(Order)).scalar_one()
        events = db.session.scalar(select(func.count()).select_from(PaymentEvent))
        return tickets, order.status, events


def test_completed_session_pays_the_order_issues_tickets_and_mails_once(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    _event, _placed, session = paid_session(client, stripe_app, fake_stripe)

    response = deliver(client, stripe_event("checkout.session.completed", session))

    assert response.status_code == 200
    assert counts(stripe_app) == (2, "paid", 1)
    assert len(outbox(stripe_app)) == 1
    assert queued_mail(stripe_app) == []  # inline delivery sent it and settled its job
    with stripe_app.app_context():
        assert db.session.execute(select(Order.provider_ref)).scalar_one() == session["payment_intent"]


def order_id_of(app):  # type: ignore[no-untyped-def]
    with app.app_context():
        return db.session.execute(select(Order.id)).scalar_one()


@MAIL_WORKER
def test_with_a_mail_worker_the_webhook_queues_one_tickets_mail_and_send_mail_sends_it(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    _event, placed, session = paid_session(client, stripe_app, fake_stripe)
    payload = stripe_event("checkout.session.completed", session)

    first = deliver(client, payload)
    again = deliver(client, payload)
    queued = queued_mail(stripe_app)
    result = stripe_app.test_cli_runner().invoke(args=["send-mail"])

    assert first.status_code == again.status_code == 200
    assert queued == [("order_paid", order_id_of(stripe_app))]
    assert result.exit_code == 0 and "1 sent" in result.output
    assert queued_mail(stripe_app) == []
    [mail] = outbox(stripe_app)
    text = mail_text(read_mail(mail))
    assert f"https://tickets.example.org/orders/{placed['code']}/{placed['access_token']}" in text


@MAIL_WORKER
def test_a_webhook_that_fails_after_queueing_the_mail_leaves_no_mail_and_is_applied_on_retry(
    stripe_app, fake_stripe, monkeypatch
):
    client = stripe_app.test_client()
    _event, _placed, session = paid_session(client, stripe_app, fake_stripe)
    payload = stripe_event("checkout.session.completed", session)
    queue_for_real = checkout_services.enqueue_mail

    def queue_then_fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        queue_for_real(*args, **kwargs)
        raise RuntimeError("the process fails after queueing, before the commit")

    monkeypatch.setattr(checkout_services, "enqueue_mail", queue_then_fail)
    failed = deliver(client, payload)
    after_failure = (counts(stripe_app), queued_mail(stripe_app))
    monkeypatch.setattr(checkout_services, "enqueue_mail", queue_for_real)
    retried = deliver(client, payload)

    assert failed.status_code == 500
    assert after_failure == ((0, "pending", 0), [])
    assert retried.status_code == 200
    assert counts(stripe_app) == (2, "paid", 1)
    assert queued_mail(stripe_app) == [("order_paid", order_id_of(stripe_app))]


def test_repeated_delivery_is_acknowledged_and_changes_nothing(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    _event, _placed, session = paid_session(client, stripe_app, fake_stripe)
    payload = stripe_event("checkout.session.completed", session)
    deliver(client, payload)

    again = deliver(client, payload)

    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert counts(stripe_app) == (2, "paid", 1)
    assert len(outbox(stripe_app)) == 1


def test_bad_signature_stale_timestamp_missing_header_and_malformed_json_get_400(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    _event, _placed, session = paid_session(client, stripe_app, fake_stripe)
    payload = stripe_event("checkout.session.completed", session)
    stale = int(time.time()) - 3600
    tampered = payload.replace('"amount_total": ', '"amount_total": 1')

    answers = [
        deliver(client, payload, sign(payload, secret="whsec_someone_else")),
        deliver(client, payload, sign(payload, timestamp=stale)),
        deliver(client, tampered, sign(payload)),
        client.post("/payments/stripe/webhook", data=payload, headers={"Content-Type": "application/json"}),
        deliver(client, "{not json", sign("{not json")),
        deliver(client, '{"id": "evt_1"}', sign('{"id": "evt_1"}')),
        deliver(client, payload, "t=abc,v1=zz"),
    ]

    assert [a.status_code for a in answers] == [400] * len(answers)
    assert counts(stripe_app) == (0, "pending", 0)


def test_unknown_event_type_is_acknowledged_and_ignored(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    _event, _placed, _session = paid_session(client, stripe_app, fake_stripe)

    response = deliver(client, stripe_event("customer.created", {"id": "cus_1", "object": "customer"}))

    assert response.status_code == 200
    assert counts(stripe_app) == (0, "pending", 1)


def test_expired_event_arriving_after_completed_leaves_the_order_paid(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    _event, _placed, session = paid_session(client, stripe_app, fake_stripe)
    deliver(client, stripe_event("checkout.session.completed", session))

    deliver(client, stripe_event("checkout.session.expired", {**session, "status": "expired"}))

    assert counts(stripe_app) == (2, "paid", 2)


def test_async_payment_waits_for_success_and_late_events_do_not_undo_it(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    _event, _placed, session = paid_session(client, stripe_app, fake_stripe)
    processing = {**session, "payment_status": "unpaid"}

    deliver(client, stripe_event("checkout.session.completed", processing))
    waiting = counts(stripe_app)
    deliver(client, stripe_event("checkout.session.async_payment_succeeded", session))
    deliver(client, stripe_event("checkout.session.completed", processing))

    assert waiting == (0, "pending", 1)
    assert counts(stripe_app) == (2, "paid", 3)


def test_async_payment_failure_releases_the_hold(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event, _placed, session = paid_session(client, stripe_app, fake_stripe)

    deliver(client, stripe_event("checkout.session.async_payment_failed", {**session, "payment_status": "unpaid"}))

    assert counts(stripe_app)[:2] == (0, "expired")
    with stripe_app.app_context():
        assert db.session.get(TicketType, event.type_id).reserved == 0


def test_payment_after_hold_expiry_issues_tickets_when_stock_remains(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event, _placed, session = paid_session(client, stripe_app, fake_stripe, capacity=5)
    with stripe_app.app_context():
        db.session.execute(update(Order).values(hold_expires_at=Order.created_at))
        db.session.commit()
        release_expired_holds(db.session, dt.datetime.now(dt.UTC))

    deliver(client, stripe_event("checkout.session.completed", session))

    assert counts(stripe_app)[:2] == (2, "paid")
    with stripe_app.app_context():
        ticket_type = db.session.get(TicketType, event.type_id)
        assert (ticket_type.sold, ticket_type.reserved) == (2, 0)
    assert fake_stripe.sent("POST", "/v1/refunds") == []


def expire_hold_and_sell_out(stripe_app):
    """The hold ends and is released; someone else buys the two seats meanwhile."""
    with stripe_app.app_context():
        db.session.execute(update(Order).values(hold_expires_at=Order.created_at))
        db.session.commit()
        release_expired_holds(db.session, dt.datetime.now(dt.UTC))
        db.session.execute(update(TicketType).values(sold=2))
        db.session.commit()


def test_payment_after_hold_expiry_without_stock_is_refunded_and_the_buyer_told(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event, _placed, session = paid_session(client, stripe_app, fake_stripe, capacity=2)
    expire_hold_and_sell_out(stripe_app)

    response = deliver(client, stripe_event("checkout.session.completed", session))

    assert response.status_code == 200
    assert counts(stripe_app)[:2] == (0, "refunded")
    [(headers, body)] = fake_stripe.sent("POST", "/v1/refunds")
    assert body["payment_intent"] == session["payment_intent"] and body["amount"] == "3200"
    assert headers["idempotency-key"].startswith("guichet-refund-")
    with stripe_app.app_context():
        refund = db.session.execute(select(Refund)).scalar_one()
        assert (refund.reason, refund.status, refund.amount_cents) == ("hold_expired", "succeeded", 3200)
        assert db.session.get(TicketType, event.type_id).sold == 2
    [mail] = outbox(stripe_app)
    assert "refunding the full" in mail_text(read_mail(mail))


@MAIL_WORKER
def test_with_a_mail_worker_a_late_payment_queues_its_refund_mail(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    _event, _placed, session = paid_session(client, stripe_app, fake_stripe, capacity=2)
    expire_hold_and_sell_out(stripe_app)

    deliver(client, stripe_event("checkout.session.completed", session))

    assert queued_mail(stripe_app) == [("late_payment_refunded", order_id_of(stripe_app))]
    assert outbox(stripe_app) == []
    assert len(fake_stripe.sent("POST", "/v1/refunds")) == 1  # the money does not wait for the worker


def test_refund_events_follow_the_refund_and_a_stale_one_does_not_undo_it(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    _event, _placed, session = paid_session(client, stripe_app, fake_stripe, capacity=2)
    fake_stripe.refund_status = "pending"
    expire_hold_and_sell_out(stripe_app)
    deliver(client, stripe_event("checkout.session.completed", session))
    [refund_obj] = fake_stripe.refunds.values()

    deliver(client, stripe_event("refund.updated", {**refund_obj, "status": "succeeded"}))
    deliver(client, stripe_event("refund.updated", {**refund_obj, "status": "pending"}))
    refunds = {"object": "list", "data": [{**refund_obj, "status": "succeeded"}]}
    charge = {"id": "ch_1", "object": "charge", "refunds": refunds}
    deliver(client, stripe_event("charge.refunded", charge))

    with stripe_app.app_context():
        assert db.session.execute(select(Refund.status)).scalar_one() == "succeeded"


def test_same_webhook_delivered_twenty_times_at_once_issues_tickets_once(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event, _placed, session = paid_session(client, stripe_app, fake_stripe, capacity=10)
    payload = stripe_event("checkout.session.completed", session)
    header = sign(payload)
    start = threading.Barrier(20)
    statuses: list[int] = []

    def deliver_once() -> None:
        own_client = stripe_app.test_client()
        start.wait(timeout=30)
        statuses.append(deliver(own_client, payload, header).status_code)

    threads = [threading.Thread(target=deliver_once) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [200] * 20
    assert counts(stripe_app) == (2, "paid", 1)
    with stripe_app.app_context():
        ticket_type = db.session.get(TicketType, event.type_id)
        assert (ticket_type.sold, ticket_type.reserved) == (2, 0)
    assert len(outbox(stripe_app)) == 1


def test_webhook_tables_hold_no_payload_or_personal_data(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    _event, _placed, session = paid_session(client, stripe_app, fake_stripe)
    session = {**session, "customer_details": {"email": "leak.me@example.org", "name": "Leak Me"}}

    deliver(client, stripe_event("checkout.session.completed", session))

    with stripe_app.app_context():
        rows = db.session.execute(select(PaymentEvent)).scalars().all()
        dumped = json.dumps([[r.id, r.provider, r.type, str(r.order_id)] for r in rows])
    assert "leak" not in dumped.lower()
    assert WEBHOOK_SECRET not in dumped


def test_full_refund_made_in_the_stripe_dashboard_voids_the_tickets(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event, _placed, session = paid_session(client, stripe_app, fake_stripe, capacity=5)
    deliver(client, stripe_event("checkout.session.completed", session))
    refund = {"id": "re_dashboard", "object": "refund", "status": "succeeded", "amount": 3200}
    charge = {
        "id": "ch_1",
        "object": "charge",
        "amount": 3200,
        "amount_refunded": 3200,
        "refunded": True,
        "payment_intent": session["payment_intent"],
        "refunds": {"object": "list", "data": [refund]},
    }
    payload = stripe_event("charge.refunded", charge)

    deliver(client, payload)
    deliver(client, stripe_event("charge.refunded", charge))

    with stripe_app.app_context():
        assert {t.status for t in db.session.execute(select(Ticket)).scalars()} == {"voided"}
        assert db.session.execute(select(Order.status)).scalar_one() == "refunded"
        recorded = db.session.execute(select(Refund)).scalar_one()
        assert (recorded.reason, recorded.status, recorded.provider_refund_ref) == (
            "provider_refund",
            "succeeded",
            "re_dashboard",
        )
        assert db.session.get(TicketType, event.type_id).sold == 0
    assert fake_stripe.sent("POST", "/v1/refunds") == []


def test_partial_refund_in_the_dashboard_changes_no_ticket(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    _event, _placed, session = paid_session(client, stripe_app, fake_stripe)
    deliver(client, stripe_event("checkout.session.completed", session))
    charge = {
        "id": "ch_1",
        "object": "charge",
        "amount": 3200,
        "amount_refunded": 100,
        "refunded": False,
        "payment_intent": session["payment_intent"],
        "refunds": {"object": "list", "data": [{"id": "re_part", "object": "refund", "status": "succeeded"}]},
    }

    deliver(client, stripe_event("charge.refunded", charge))

    assert counts(stripe_app)[:2] == (2, "paid")
