"""Capacity is never exceeded, whatever the concurrency, on SQLite and PostgreSQL."""

import datetime as dt
import threading

from sqlalchemy import func, select

from tests.conftest import make_event, run_together
from ticketing.catalog.models import TicketType
from ticketing.checkout.models import Order, OrderLine, Ticket
from ticketing.checkout.orders import OrderItem, OrderRequest, place_order
from ticketing.checkout.stock import release_expired_holds
from ticketing.extensions import db, keyring
from ticketing.models import utcnow


def order_body(event_id, ticket_type_id, n, quantity=1):
    return {
        "event_id": str(event_id),
        "items": [{"ticket_type_id": str(ticket_type_id), "quantity": quantity}],
        "email": f"buyer{n}@example.org",
    }


def test_200_buyers_for_50_tickets_get_exactly_50_orders(app):
    with app.app_context():
        event = make_event(capacity=50, max_per_order=1)
        event_id, type_id = event.id, event.ticket_types[0].id
    statuses: list[int] = []
    codes: list[str] = []
    lock = threading.Lock()

    def buy(n: int) -> None:
        response = app.test_client().post(
            "/api/v1/orders",
            json=order_body(event_id, type_id, n),
            environ_base={"REMOTE_ADDR": f"10.0.{n // 250}.{n % 250}"},
        )
        with lock:
            statuses.append(response.status_code)
            codes.append(response.get_json().get("code", ""))

    run_together(200, buy)

    assert statuses.count(201) == 50
    assert statuses.count(409) == 150
    sold_out = [code for status, code in zip(statuses, codes, strict=True) if status == 409]
    assert set(sold_out) == {"sold_out"}
    with app.app_context():
        ticket_type = db.session.get(TicketType, type_id)
        held = db.session.scalar(select(func.sum(OrderLine.quantity)).join(Order).where(Order.status == "pending"))
        assert ticket_type.reserved == 50 and ticket_type.sold == 0
        assert held == 50
        assert db.session.scalar(select(func.count()).select_from(Order)) == 50


def test_concurrent_payments_issue_exactly_the_held_tickets(app):
    with app.app_context():
        event = make_event(capacity=30, price_cents=0, fee_cents=0, max_per_order=3)
        event_id, type_id = event.id, event.ticket_types[0].id
    statuses: list[int] = []

    def buy(n: int) -> None:
        body = order_body(event_id, type_id, n, quantity=2)
        statuses.append(app.test_client().post("/api/v1/orders", json=body).status_code)

    run_together(40, buy)

    assert statuses.count(201) == 15
    with app.app_context():
        ticket_type = db.session.get(TicketType, type_id)
        tickets = db.session.scalar(select(func.count()).select_from(Ticket))
        assert (ticket_type.sold, ticket_type.reserved, tickets) == (30, 0, 30)


def request_for(type_id, quantity=1, email="hold@example.org"):
    return OrderRequest(items=(OrderItem(type_id, quantity),), email=email)


def place(event, quantity, now, email="hold@example.org", minutes=10):
    return place_order(
        db.session,
        keyring(),
        str(event.id),
        request_for(event.ticket_types[0].id, quantity, email),
        locale="en",
        now=now,
        hold_minutes=minutes,
        provider="demo",
    )


def test_expired_hold_is_released_when_the_stock_is_needed(ctx):
    event = make_event(capacity=2)
    start = utcnow()
    first = place(event, 2, start)

    later = start + dt.timedelta(minutes=11)
    second = place(event, 2, later, email="next@example.org")

    db.session.refresh(first.order)
    assert first.order.status == "expired"
    assert second.order.status == "pending"
    assert db.session.get(TicketType, event.ticket_types[0].id, populate_existing=True).reserved == 2


def test_hold_still_valid_means_sold_out(ctx):
    event = make_event(capacity=2)
    start = utcnow()
    place(event, 2, start)

    try:
        place(event, 1, start + dt.timedelta(minutes=9), email="late@example.org")
        raised = None
    except Exception as error:  # noqa: BLE001 - the type is the assertion
        raised = error

    assert raised is not None and raised.code == "sold_out"
    assert raised.extra["available"] == {str(event.ticket_types[0].id): 0}


def test_expire_holds_command_releases_and_is_idempotent(app, runner):
    with app.app_context():
        event = make_event(capacity=5)
        place(event, 3, utcnow() - dt.timedelta(minutes=30))
        type_id = event.ticket_types[0].id

    first = runner.invoke(args=["expire-holds"])
    second = runner.invoke(args=["expire-holds"])

    assert "Released 1 expired hold" in first.output
    assert "Released 0 expired hold" in second.output
    with app.app_context():
        assert db.session.get(TicketType, type_id).reserved == 0


def test_two_releasers_never_give_the_same_hold_back_twice(app):
    with app.app_context():
        event = make_event(capacity=4)
        for n in range(4):
            place(event, 1, utcnow() - dt.timedelta(minutes=30), email=f"x{n}@example.org")
        type_id = event.ticket_types[0].id
    released: list[int] = []

    def release(_n: int) -> None:
        with app.app_context():
            released.append(release_expired_holds(db.session, utcnow()))
            db.session.remove()

    run_together(4, release)

    assert sum(released) == 4
    with app.app_context():
        assert db.session.get(TicketType, type_id).reserved == 0


def _stock_and_order_statuses(app, type_id):
    with app.app_context():
        reserved = db.session.get(TicketType, type_id).reserved
        statuses = db.session.execute(select(Order.status)).scalars().all()
        db.session.rollback()
        return reserved, statuses


def test_event_page_counts_only_live_holds_and_writes_nothing(app, client):
    with app.app_context():
        event = make_event(capacity=5)
        place(event, 3, utcnow() - dt.timedelta(minutes=30))
        place(event, 1, utcnow(), email="live@example.org")
        event_id, type_id = event.id, event.ticket_types[0].id
    before = _stock_and_order_statuses(app, type_id)

    page = client.get(f"/events/{event_id}").get_data(as_text=True)
    api = client.get(f"/api/v1/events/{event_id}").get_json()

    assert "4 left" in page
    assert api["ticket_types"][0]["available"] == 4
    assert _stock_and_order_statuses(app, type_id) == before == (4, ["pending", "pending"])


def test_list_of_events_counts_only_live_holds_and_writes_nothing(app, client):
    with app.app_context():
        event = make_event(capacity=2)
        place(event, 2, utcnow() - dt.timedelta(minutes=30))
        type_id = event.ticket_types[0].id

    page = client.get("/").get_data(as_text=True)

    assert "2 tickets left" in page
    assert _stock_and_order_statuses(app, type_id) == (2, ["pending"])


def test_an_order_takes_the_stock_of_expired_holds_back(ctx):
    event = make_event(capacity=2)
    place(event, 2, utcnow() - dt.timedelta(minutes=30))

    place(event, 2, utcnow(), email="next@example.org")

    statuses = db.session.execute(select(Order.status).order_by(Order.created_at)).scalars().all()
    assert statuses == ["expired", "pending"]
    assert db.session.get(TicketType, event.ticket_types[0].id, populate_existing=True).reserved == 2
