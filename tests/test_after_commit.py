"""A request that fails after its transaction committed says what was recorded.

The fault: the database goes away right after the request's first committed write, so
every statement after it fails with ``OperationalError`` (sending the tickets mail inline,
sending a refund, reading again). Before, such requests answered 503 "Nothing was
recorded; please try again" for orders that were paid. Now each says what happened, and
the database shows it is true.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from tests.catalog.test_api import auth, event_body, organizer_token
from tests.conftest import csrf_token, outbox, post_form, published_event, queued_mail
from ticketing.catalog.models import Event
from ticketing.checkout.models import Order
from ticketing.extensions import db

NOTHING_RECORDED = "Nothing was recorded"


@contextmanager
def database_fails_after_the_first_committed_write(app: Flask) -> Iterator[dict[str, int]]:
    """Every statement after the first commit of a transaction that wrote raises
    OperationalError, as when the server goes away at that moment."""
    with app.app_context():
        engine = db.engine
    state = {"wrote": False, "armed": False, "refused": 0}

    def note_write(_connection, _cursor, _statement, _parameters, context, _many) -> None:  # type: ignore[no-untyped-def]
        if context.isinsert or context.isupdate or context.isdelete:
            state["wrote"] = True

    def arm(_connection) -> None:  # type: ignore[no-untyped-def]
        state["armed"] = state["armed"] or state["wrote"]

    def refuse(_connection, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if state["armed"]:
            state["refused"] += 1
            raise OperationalError(statement, parameters, ConnectionError("server closed the connection"))

    sqlalchemy_event.listen(engine, "after_cursor_execute", note_write)
    sqlalchemy_event.listen(engine, "commit", arm)
    sqlalchemy_event.listen(engine, "before_cursor_execute", refuse)
    try:
        yield state
    finally:
        sqlalchemy_event.remove(engine, "before_cursor_execute", refuse)
        sqlalchemy_event.remove(engine, "commit", arm)
        sqlalchemy_event.remove(engine, "after_cursor_execute", note_write)


def text_of(response: Any) -> str:
    return response.get_data(as_text=True)


# --- Buyers -------------------------------------------------------------------------------


def test_a_demo_payment_whose_mail_fails_with_the_database_says_the_order_is_paid(app, client, runner):
    event = published_event(app, price_cents=1500, fee_cents=100)
    placed = client.post(
        "/api/v1/orders",
        json={
            "event_id": str(event.id),
            "email": "b@example.org",
            "items": [{"ticket_type_id": str(event.type_id), "quantity": 1}],
        },
    ).get_json()
    pay_page = placed["payment"]["url"].replace("http://localhost", "")
    token = csrf_token(client, pay_page)

    with database_fails_after_the_first_committed_write(app) as fault:
        answer = client.post(pay_page, data={"csrf_token": token, "action": "pay"})

    assert fault["refused"] > 0, "the fault never fired: the test would prove nothing"
    assert answer.status_code == 200
    assert NOTHING_RECORDED not in text_of(answer)
    assert f"Your order {placed['code']} is paid. Your tickets will follow by email." in text_of(answer)
    assert f"/orders/{placed['code']}/{placed['access_token']}" in text_of(answer)
    with app.app_context():
        assert db.session.execute(select(Order.status)).scalar_one() == "paid"
    assert runner.invoke(args=["send-mail"]).exit_code == 0  # the owed mail goes out later
    assert len(outbox(app)) == 1 and queued_mail(app) == []


def test_a_free_order_whose_mail_fails_with_the_database_says_it_is_confirmed(app, client):
    event = published_event(app, price_cents=0, fee_cents=0)
    page = f"/events/{event.id}"
    token = csrf_token(client, page)

    with database_fails_after_the_first_committed_write(app) as fault:
        answer = client.post(
            f"{page}/orders", data={"csrf_token": token, "email": "f@example.org", f"qty-{event.type_id}": "1"}
        )

    assert fault["refused"] > 0
    assert answer.status_code == 200
    assert re.search(r"Your order [A-Z0-9-]+ is confirmed\. Your tickets will follow by email\.", text_of(answer))
    with app.app_context():
        assert db.session.execute(select(Order.status)).scalar_one() == "paid"


def test_a_free_order_in_the_api_gets_its_order_even_when_the_mail_fails(app, client):
    event = published_event(app, price_cents=0, fee_cents=0)

    with database_fails_after_the_first_committed_write(app) as fault:
        answer = client.post(
            "/api/v1/orders",
            json={
                "event_id": str(event.id),
                "email": "f@example.org",
                "items": [{"ticket_type_id": str(event.type_id), "quantity": 1}],
            },
        )

    assert fault["refused"] > 0
    assert answer.status_code == 201
    body = answer.get_json()
    assert body["status"] == "paid" and body["access_token"]
    assert client.get(f"/api/v1/orders/{body['code']}", headers=auth(body["access_token"])).status_code == 200


# --- Anything else ------------------------------------------------------------------------


def test_any_other_write_failing_after_its_commit_says_it_was_recorded_and_not_to_resend(app, client):
    token = organizer_token(app)

    with database_fails_after_the_first_committed_write(app) as fault:
        answer = client.post("/api/v1/events", json=event_body(), headers=auth(token))

    assert fault["refused"] > 0
    assert answer.status_code == 500
    assert answer.get_json()["code"] == "recorded_then_failed"
    assert "Do not send it again" in answer.get_json()["detail"]
    with app.app_context():
        assert len(db.session.execute(select(Event)).scalars().all()) == 1


def test_a_failure_before_the_commit_still_says_nothing_was_recorded(app, client):
    event = published_event(app, price_cents=0, fee_cents=0)
    with app.app_context():
        engine = db.engine

    def refuse_inserts(_connection, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT"):
            raise OperationalError(statement, parameters, ConnectionError("server closed the connection"))

    sqlalchemy_event.listen(engine, "before_cursor_execute", refuse_inserts)
    try:
        answer = post_form(
            client,
            f"/events/{event.id}",
            f"/events/{event.id}/orders",
            {"email": "n@example.org", f"qty-{event.type_id}": "1"},
        )
    finally:
        sqlalchemy_event.remove(engine, "before_cursor_execute", refuse_inserts)

    assert answer.status_code == 503
    assert NOTHING_RECORDED in text_of(answer)
    with app.app_context():
        assert db.session.execute(select(Order)).scalars().all() == []
