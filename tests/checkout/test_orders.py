import datetime as dt
import email
import hashlib
import re

from sqlalchemy import func, select, update

from tests.conftest import csrf_token, outbox, post_form, published_event
from tests.privacy.helpers import held_records
from ticketing.catalog.models import TicketType
from ticketing.checkout.models import Order, Ticket
from ticketing.extensions import db
from ticketing.models import utcnow

LINK = re.compile(r"https?://[^/\s]+(/orders/[A-Z0-9-]+/[A-Za-z0-9_-]+)")


def api_order(client, event, quantity=1, email_address="ana@example.org", **extra):
    body = {
        "event_id": str(event.id),
        "items": [{"ticket_type_id": str(event.type_id), "quantity": quantity}],
        "email": email_address,
        **extra,
    }
    return client.post("/api/v1/orders", json=body)


def read_mail(path):
    return email.message_from_bytes(path.read_bytes())


def mail_text(message):
    return next(p for p in message.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()


def test_free_order_is_paid_at_once_and_mailed(app, client):
    event = published_event(app, price_cents=0, fee_cents=0, capacity=5)

    response = api_order(client, event, quantity=2)

    body = response.get_json()
    assert response.status_code == 201
    assert body["status"] == "paid" and body["total_cents"] == 0 and body["payment"]["provider"] == "free"
    [mail] = outbox(app)
    message = read_mail(mail)
    assert message["To"] == "ana@example.org"
    assert {p.get_content_type() for p in message.walk()} >= {"text/plain", "text/html"}
    link = LINK.search(mail_text(message)).group(1)
    page = client.get(link)
    assert page.status_code == 200 and "Paid" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Ticket)) == 2


def test_paid_demo_order_issues_its_tickets(app, client):
    event = published_event(app, price_cents=1500, fee_cents=100, capacity=5)
    type_id = event.type_id
    placed = api_order(client, event, quantity=2).get_json()
    pay_url = placed["payment"]["url"].replace("http://localhost", "")

    paid = post_form(client, pay_url, pay_url, {"action": "pay"})

    assert placed["total_cents"] == 3200 and placed["fee_cents"] == 200
    assert paid.status_code == 302
    order = client.get(
        f"/api/v1/orders/{placed['code']}", headers={"Authorization": f"Bearer {placed['access_token']}"}
    )
    assert order.get_json()["status"] == "paid"
    assert len(order.get_json()["tickets"]) == 2
    assert len(outbox(app)) == 1
    with app.app_context():
        ticket_type = db.session.get(TicketType, type_id)
        assert (ticket_type.sold, ticket_type.reserved) == (2, 0)


def test_paying_twice_changes_nothing(app, client):
    event = published_event(app, capacity=5)
    placed = api_order(client, event, quantity=1).get_json()
    pay_url = placed["payment"]["url"].replace("http://localhost", "")
    token = csrf_token(client, pay_url)
    client.post(pay_url, data={"csrf_token": token, "action": "pay"})

    again = client.post(pay_url, data={"csrf_token": token, "action": "pay"})

    assert again.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_cancelled_payment_frees_the_hold(app, client):
    event = published_event(app, capacity=3)
    type_id = event.type_id
    placed = api_order(client, event, quantity=3).get_json()
    pay_url = placed["payment"]["url"].replace("http://localhost", "")

    post_form(client, pay_url, pay_url, {"action": "cancel"})

    page = client.get(f"/orders/{placed['code']}/{placed['access_token']}").get_data(as_text=True)
    assert "cancelled" in page
    with app.app_context():
        assert db.session.get(TicketType, type_id).reserved == 0
    assert outbox(app) == []


def _expire(app, code):
    with app.app_context():
        db.session.execute(
            update(Order).where(Order.code == code).values(hold_expires_at=utcnow() - dt.timedelta(minutes=1))
        )
        db.session.commit()


def test_payment_after_expired_hold_gets_tickets_while_stock_remains(app, client):
    event = published_event(app, capacity=2)
    placed = api_order(client, event, quantity=2).get_json()
    pay_url = placed["payment"]["url"].replace("http://localhost", "")
    token = csrf_token(client, pay_url)
    _expire(app, placed["code"])
    client.get(f"/events/{event.id}")  # releases the expired hold

    paid = client.post(pay_url, data={"csrf_token": token, "action": "pay"})

    assert paid.status_code == 302
    with app.app_context():
        order = db.session.execute(select(Order).where(Order.code == placed["code"])).scalar_one()
        assert order.status == "paid" and len(order.tickets) == 2


def test_payment_after_expired_hold_without_stock_issues_nothing(app, client):
    event = published_event(app, capacity=2)
    event_id, type_id = event.id, event.type_id
    placed = api_order(client, event, quantity=2).get_json()
    pay_url = placed["payment"]["url"].replace("http://localhost", "")
    token = csrf_token(client, pay_url)
    _expire(app, placed["code"])
    other = client.post(
        "/api/v1/orders",
        json={
            "event_id": str(event_id),
            "items": [{"ticket_type_id": str(type_id), "quantity": 2}],
            "email": "b@example.org",
        },
    )

    refused = client.post(pay_url, data={"csrf_token": token, "action": "pay"})

    assert other.status_code == 201
    assert refused.status_code == 409
    assert "no longer available" in refused.get_data(as_text=True)
    with app.app_context():
        order = db.session.execute(select(Order).where(Order.code == placed["code"])).scalar_one()
        assert order.status == "expired" and order.tickets == []
        assert db.session.get(TicketType, type_id).reserved == 2


def test_order_page_needs_the_right_token(app, client):
    event = published_event(app)
    placed = api_order(client, event).get_json()

    right = client.get(f"/orders/{placed['code']}/{placed['access_token']}")
    wrong = client.get(f"/orders/{placed['code']}/{'x' * 43}")

    assert right.status_code == 200 and "Awaiting payment" in right.get_data(as_text=True)
    assert wrong.status_code == 404
    assert right.headers["Cache-Control"] == "no-store"


def test_only_the_hash_of_the_access_token_is_stored(app, client):
    event = published_event(app)
    placed = api_order(client, event).get_json()

    with app.app_context():
        order = db.session.execute(select(Order).where(Order.code == placed["code"])).scalar_one()

    assert len(placed["access_token"]) >= 22  # at least 128 bits of base64
    assert order.access_token_hash == hashlib.sha256(placed["access_token"].encode()).hexdigest()


def test_same_email_twice_is_two_records_of_one_mailbox(app, client):
    event = published_event(app)

    api_order(client, event, email_address="twice@example.org")
    api_order(client, event, email_address="Twice@Example.org")

    with app.app_context():
        people = db.session.scalars(select(Order.person_id)).all()
        assert len(people) == 2 and len(set(people)) == 2
    assert set(held_records(app, "TWICE@example.org")) == set(people)


def test_find_my_orders_mails_working_links_and_looks_the_same_for_strangers(app, client):
    event = published_event(app, price_cents=0, fee_cents=0)
    api_order(client, event, email_address="finder@example.org")
    before = len(outbox(app))

    known = post_form(client, "/orders/find", "/orders/find", {"email": "finder@example.org"})
    unknown = post_form(client, "/orders/find", "/orders/find", {"email": "nobody@example.org"})

    assert known.status_code == unknown.status_code == 200
    assert known.get_data() == unknown.get_data()
    mails = outbox(app)[before:]
    assert len(mails) == 1
    link = LINK.search(mail_text(read_mail(mails[0]))).group(1)
    assert client.get(link).status_code == 200


def test_find_my_orders_is_rate_limited(app, client):
    for _ in range(3):
        post_form(client, "/orders/find", "/orders/find", {"email": "flood@example.org"})

    fourth = post_form(client, "/orders/find", "/orders/find", {"email": "flood@example.org"})

    assert fourth.status_code == 429
    assert "Too many requests" in fourth.get_data(as_text=True)
