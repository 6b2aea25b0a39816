"""Cancellation by the organiser, the solidarity choice, buyer refunds, process-refunds, reconcile."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select, update

from tests.checkout.test_orders import mail_text, read_mail
from tests.conftest import MAIL_WORKER, csrf_token, make_organizer, outbox, published_event, queued_mail
from tests.payments.conftest import deliver, stripe_event
from tests.payments.test_stripe_checkout import go_to_stripe, place
from ticketing.catalog.models import Event, TicketType
from ticketing.checkout.models import Order, Ticket
from ticketing.extensions import db
from ticketing.payments.models import Refund

CHOICE_LINK = re.compile(r"https://tickets\.example\.org(/refunds/choose/[A-Za-z0-9_.-]+)")


def organised_event(app, **options):
    with app.app_context():
        organizer, token = make_organizer()
        organizer_id = organizer.id
    with app.app_context():
        from ticketing.catalog.models import Organizer

        event = published_event(app, organizer=db.session.get(Organizer, organizer_id), **options)
    return event, token


def buy_and_pay(client, fake_stripe, event, quantity=2):
    placed = place(client, event, quantity=quantity)
    session_id = go_to_stripe(client, placed).headers["Location"].rsplit("/", 1)[-1]
    session = fake_stripe.complete(session_id, payment_intent=f"pi_{session_id}")
    assert deliver(client, stripe_event("checkout.session.completed", session)).status_code == 200
    return placed, session


def mail_texts(app):
    return [mail_text(read_mail(path)) for path in outbox(app)]


def cancel(client, event, token):
    return client.post(f"/api/v1/events/{event.id}/cancel", headers={"Authorization": f"Bearer {token}"})


def choose(client, link, choice):
    # Any form page gives the session's CSRF token (a decided choice shows no form).
    return client.post(link, data={"csrf_token": csrf_token(client, "/orders/find"), "choice": choice})


def test_cancelling_an_event_voids_tickets_and_mails_each_buyer_a_choice(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event, token = organised_event(stripe_app, capacity=10)
    buy_and_pay(client, fake_stripe, event)
    buy_and_pay(client, fake_stripe, event, quantity=1)
    pending = place(client, event, quantity=3)

    response = cancel(client, event, token)

    assert response.status_code == 200
    assert response.get_json()["orders_to_refund"] == 2 and response.get_json()["buyers_mailed"] == 2
    with stripe_app.app_context():
        assert {t.status for t in db.session.execute(select(Ticket)).scalars()} == {"voided"}
        assert db.session.get(Event, event.id).status == "cancelled"
        assert db.session.execute(select(Order.status).where(Order.code == pending["code"])).scalar_one() == "cancelled"
        refunds = db.session.execute(select(Refund)).scalars().all()
        assert {r.status for r in refunds} == {"awaiting_choice"}
        assert all(r.due_at - r.created_at == dt.timedelta(days=14) for r in refunds)
    mails = [text for text in mail_texts(stripe_app) if "cancelled" in text]
    assert len(mails) == 2 and all(CHOICE_LINK.search(m) for m in mails)
    assert fake_stripe.sent("POST", "/v1/refunds") == []
    assert cancel(client, event, token).status_code == 409


@MAIL_WORKER
def test_with_a_mail_worker_cancelling_queues_one_mail_per_buyer_and_send_mail_sends_them(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event, token = organised_event(stripe_app, capacity=10)
    buy_and_pay(client, fake_stripe, event)
    buy_and_pay(client, fake_stripe, event, quantity=1)

    response = cancel(client, event, token)
    queued = queued_mail(stripe_app)
    result = stripe_app.test_cli_runner().invoke(args=["send-mail"])

    assert response.get_json()["orders_to_refund"] == 2 and response.get_json()["buyers_mailed"] == 0
    assert sorted(kind for kind, _subject in queued) == ["event_cancelled"] * 2 + ["order_paid"] * 2
    with stripe_app.app_context():
        refund_ids = set(db.session.execute(select(Refund.id)).scalars())
    assert {subject for kind, subject in queued if kind == "event_cancelled"} == refund_ids
    assert result.exit_code == 0 and "4 sent" in result.output
    assert queued_mail(stripe_app) == []
    mails = [text for text in mail_texts(stripe_app) if "cancelled" in text]
    assert len(mails) == 2 and all(CHOICE_LINK.search(m) for m in mails)


def test_buyer_chooses_refund_price_donation_or_full_donation(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event, token = organised_event(stripe_app, capacity=10, price_cents=1500, fee_cents=100)
    codes = [buy_and_pay(client, fake_stripe, event, quantity=1)[0]["code"] for _ in range(3)]
    cancel(client, event, token)
    links = {}
    for text in mail_texts(stripe_app):
        for code in codes:
            if code in text and CHOICE_LINK.search(text):
                links[code] = CHOICE_LINK.search(text).group(1)

    choices = ["refund", "donate_price", "donate_all"]
    results = [choose(client, links[code], choice) for code, choice in zip(codes, choices, strict=True)]

    assert [r.status_code for r in results] == [200, 200, 200]
    with stripe_app.app_context():
        by_code = {
            code: (refund.status, refund.amount_cents, refund.donated_cents, status)
            for refund, code, status in db.session.execute(
                select(Refund, Order.code, Order.status).join(Order, Order.id == Refund.order_id)
            )
        }
    assert by_code[codes[0]] == ("succeeded", 1600, 0, "refunded")
    assert by_code[codes[1]] == ("succeeded", 100, 1500, "part_refunded")
    assert by_code[codes[2]] == ("donated", 0, 1600, "donated")
    sent = sorted(int(body["amount"]) for _headers, body in fake_stripe.sent("POST", "/v1/refunds"))
    assert sent == [100, 1600]
    again = choose(client, links[codes[0]], "donate_all")
    assert again.status_code == 409


def test_forged_or_bad_choice_is_refused_cleanly(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event, token = organised_event(stripe_app)
    buy_and_pay(client, fake_stripe, event)
    cancel(client, event, token)
    link = next(CHOICE_LINK.search(text).group(1) for text in mail_texts(stripe_app) if CHOICE_LINK.search(text))

    # The signature's first character (all its bits count; the last one has padding bits).
    start = link.rindex(".") + 1
    forged = client.get(link[:start] + ("A" if link[start] != "A" else "B") + link[start + 1 :])
    bad = choose(client, link, "keep_it_all")

    assert forged.status_code == 404
    assert bad.status_code == 422
    with stripe_app.app_context():
        assert db.session.execute(select(Refund.status)).scalar_one() == "awaiting_choice"


def test_process_refunds_refunds_in_full_after_the_deadline(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event, token = organised_event(stripe_app)
    buy_and_pay(client, fake_stripe, event)
    cancel(client, event, token)
    runner = stripe_app.test_cli_runner()
    early = runner.invoke(args=["process-refunds"])
    with stripe_app.app_context():
        db.session.execute(update(Refund).values(due_at=Refund.created_at))
        db.session.commit()

    result = runner.invoke(args=["process-refunds"])

    assert "0 order(s) refunded by default" in early.output
    assert result.exit_code == 0 and "1 order(s) refunded by default" in result.output
    [(headers, body)] = fake_stripe.sent("POST", "/v1/refunds")
    assert body["amount"] == "3200" and body["metadata"] == {"order_id": body["metadata"]["order_id"]}
    with stripe_app.app_context():
        refund = db.session.execute(select(Refund)).scalar_one()
        assert headers["idempotency-key"] == f"guichet-refund-{refund.id}-0"
        assert refund.status == "succeeded"


def test_failed_refund_is_shown_to_the_organiser_and_retried_with_a_new_key(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event, token = organised_event(stripe_app)
    buy_and_pay(client, fake_stripe, event)
    cancel(client, event, token)
    with stripe_app.app_context():
        db.session.execute(update(Refund).values(due_at=Refund.created_at))
        db.session.commit()
    fake_stripe.refund_status = "failed"
    runner = stripe_app.test_cli_runner()
    runner.invoke(args=["process-refunds"])
    listed = client.get(f"/api/v1/events/{event.id}/refunds", headers={"Authorization": f"Bearer {token}"})
    fake_stripe.refund_status = "succeeded"

    retry = runner.invoke(args=["process-refunds"])

    assert listed.get_json()["failed"] == 1
    assert listed.get_json()["refunds"][0]["last_error"] == "expired_or_canceled_card"
    keys = [headers["idempotency-key"] for headers, _body in fake_stripe.sent("POST", "/v1/refunds")]
    assert len(keys) == 2 and keys[0].endswith("-0") and keys[1].endswith("-1")
    assert "1 succeeded" in retry.output
    with stripe_app.app_context():
        assert db.session.execute(select(Refund.status)).scalar_one() == "succeeded"


def test_refund_api_needs_the_organisers_own_token(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event, _token = organised_event(stripe_app)
    _other, other_token = organised_event(stripe_app)

    anonymous = client.post(f"/api/v1/events/{event.id}/cancel")
    stranger = cancel(client, event, other_token)

    assert anonymous.status_code == 401 and stranger.status_code == 404
    with stripe_app.app_context():
        assert db.session.get(Event, event.id).status == "published"


def test_buyer_refunds_own_order_until_the_cut_off_and_tickets_go_back_on_sale(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event, _token = organised_event(stripe_app, capacity=5)
    with stripe_app.app_context():
        db.session.execute(update(TicketType).values(refundable_until_hours=48))
        db.session.commit()
    placed, session = buy_and_pay(client, fake_stripe, event)
    page = f"/orders/{placed['code']}/{placed['access_token']}"
    assert "Ask for a refund" in client.get(page).get_data(as_text=True)

    response = client.post(page + "/refund", data={"csrf_token": csrf_token(client, page + "/refund")})

    assert response.status_code == 303
    [(_headers, body)] = fake_stripe.sent("POST", "/v1/refunds")
    assert body["payment_intent"] == session["payment_intent"] and body["amount"] == "3200"
    with stripe_app.app_context():
        assert {t.status for t in db.session.execute(select(Ticket)).scalars()} == {"voided"}
        ticket_type = db.session.get(TicketType, event.type_id)
        assert (ticket_type.sold, ticket_type.reserved) == (0, 0)
        assert db.session.execute(select(Order.status)).scalar_one() == "refunded"
    assert "refunded" in client.get(page).get_data(as_text=True)


def test_buyer_refund_is_refused_after_the_cut_off_or_where_not_allowed(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    late_event, _ = organised_event(stripe_app, starts_in=dt.timedelta(hours=10))
    never_event, _ = organised_event(stripe_app)
    with stripe_app.app_context():
        late_type = update(TicketType).where(TicketType.id == late_event.type_id)
        db.session.execute(late_type.values(refundable_until_hours=48))
        db.session.commit()
    late, _ = buy_and_pay(client, fake_stripe, late_event)
    never, _ = buy_and_pay(client, fake_stripe, never_event)

    answers = []
    for placed in (late, never):
        page = f"/orders/{placed['code']}/{placed['access_token']}/refund"
        answers.append(client.post(page, data={"csrf_token": csrf_token(client, "/orders/find")}))

    assert [a.status_code for a in answers] == [409, 403]
    assert fake_stripe.sent("POST", "/v1/refunds") == []
    with stripe_app.app_context():
        assert set(db.session.execute(select(Order.status)).scalars()) == {"paid"}


def test_refund_cut_off_is_a_ticket_type_setting_of_the_organiser_api(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event, token = organised_event(stripe_app)

    response = client.patch(
        f"/api/v1/events/{event.id}/ticket-types/{event.type_id}",
        json={"refundable_until_hours": 24},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 200 and response.get_json()["refundable_until_hours"] == 24
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/events/{event.id}/ticket-types/{event.type_id}"
    assert client.patch(url, json={"refundable_until_hours": -1}, headers=headers).status_code == 422
    cleared = client.patch(url, json={"refundable_until_hours": None}, headers=headers)
    assert cleared.status_code == 200 and cleared.get_json()["refundable_until_hours"] is None


def test_reconcile_payments_applies_sessions_whose_webhooks_were_lost(stripe_app, fake_stripe):
    client = stripe_app.test_client()
    event = published_event(stripe_app, capacity=10)
    paid = place(client, event, quantity=1)
    paid_session = go_to_stripe(client, paid).headers["Location"].rsplit("/", 1)[-1]
    fake_stripe.complete(paid_session, payment_intent="pi_lost")
    abandoned = place(client, event, quantity=1)
    abandoned_session = go_to_stripe(client, abandoned).headers["Location"].rsplit("/", 1)[-1]
    fake_stripe.sessions[abandoned_session]["status"] = "expired"
    with stripe_app.app_context():
        db.session.execute(update(Order).values(hold_expires_at=Order.created_at))
        db.session.commit()

    result = stripe_app.test_cli_runner().invoke(args=["reconcile-payments"])

    assert result.exit_code == 0, result.output
    assert "2 order(s) checked" in result.output
    with stripe_app.app_context():
        statuses = dict(db.session.execute(select(Order.code, Order.status)).all())
        assert statuses == {paid["code"]: "paid", abandoned["code"]: "expired"}
        assert len(db.session.execute(select(Ticket)).scalars().all()) == 1
        assert db.session.get(TicketType, event.type_id).reserved == 0


def test_stripe_flow_logs_no_email_or_secret_link(stripe_app, fake_stripe, caplog):
    caplog.set_level("DEBUG")
    client = stripe_app.test_client()
    event, token = organised_event(stripe_app)
    placed, _session = buy_and_pay(client, fake_stripe, event)
    cancel(client, event, token)
    link = next(CHOICE_LINK.search(text).group(1) for text in mail_texts(stripe_app) if CHOICE_LINK.search(text))

    choose(client, link, "refund")

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "order" in logged
    for secret in ("zoe.buyer", placed["access_token"], link.rsplit("/", 1)[-1], "whsec_", "sk_test_guichet"):
        assert secret not in logged
