"""Bad input to every public checkout entry point: the JSON API, the buy form, the order
read-back and "find my orders".

Every refusal is a 4xx answer of the right kind (problem details for the API, a page for
people) and leaves the database exactly as it was.

Quantities: integers are read by ``schema.Whole`` for HTML forms and JSON
alike, and a form field is always text, so a JSON string of digits (``"2"``) is accepted
the same as ``2``. Anything else that is not a whole number (``2.5``, ``2.0``, ``"two"``,
``true``) is refused.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import csrf_token, make_event, outbox, post_form
from ticketing.catalog.models import TicketType
from ticketing.checkout.models import Order, OrderLine, Ticket
from ticketing.extensions import db
from ticketing.models import utcnow
from ticketing.privacy.models import Person


@dataclass(frozen=True)
class Shop:
    event: str
    ticket_type: str
    second_type: str
    other_event: str
    other_type: str
    draft: str
    draft_type: str
    cancelled: str
    cancelled_type: str
    not_yet: str
    not_yet_type: str
    asking: str
    asking_type: str


@pytest.fixture
def shop(app) -> Shop:
    with app.app_context():
        event = make_event(capacity=10, max_per_order=4)
        db.session.add(
            TicketType(event_id=event.id, name="Reduced", price_cents=800, fee_cents=50, capacity=5, max_per_order=4)
        )
        db.session.commit()
        other = make_event()
        draft = make_event(status="draft")
        cancelled = make_event(status="cancelled")
        not_yet = make_event(sale_starts_at=utcnow() + dt.timedelta(days=2))
        asking = make_event(ask_name=True, ask_postcode=True)
        return Shop(
            event=str(event.id),
            ticket_type=str(event.ticket_types[0].id),
            second_type=str(event.ticket_types[1].id),
            other_event=str(other.id),
            other_type=str(other.ticket_types[0].id),
            draft=str(draft.id),
            draft_type=str(draft.ticket_types[0].id),
            cancelled=str(cancelled.id),
            cancelled_type=str(cancelled.ticket_types[0].id),
            not_yet=str(not_yet.id),
            not_yet_type=str(not_yet.ticket_types[0].id),
            asking=str(asking.id),
            asking_type=str(asking.ticket_types[0].id),
        )


def snapshot(app) -> tuple[Any, ...]:
    """Everything an order could change: stock counters and the rows an order writes."""
    with app.app_context():
        stock = db.session.execute(
            select(TicketType.id, TicketType.reserved, TicketType.sold).order_by(TicketType.id)
        ).all()
        counts = tuple(
            db.session.scalar(select(func.count()).select_from(model)) for model in (Order, OrderLine, Ticket, Person)
        )
        return tuple(stock), counts


def body_for(shop: Shop, event: str = "event", quantity: Any = 1, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": getattr(shop, event),
        "items": [
            {
                "ticket_type_id": getattr(shop, f"{event}_type" if event != "event" else "ticket_type"),
                "quantity": quantity,
            }
        ],
        "email": "buyer@example.org",
    }
    if event == "asking":
        body.update(name="Ana Martin", postcode="31000")
    body.update(changes)
    return {name: value for name, value in body.items() if value is not DROP}


DROP = object()


def assert_problem(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == status
    assert isinstance(problem["code"], str) and problem["code"]
    assert isinstance(problem["title"], str) and problem["title"]
    assert isinstance(problem["detail"], str) and problem["detail"]
    if status == 422:
        assert isinstance(problem["errors"], dict) and problem["errors"]
        assert all(isinstance(message, str) and message for message in problem["errors"].values())
    return problem


# Each case: a body built from the shop, and the fields the 422 must name.
INVALID_BODIES = {
    "missing-email": (lambda s: body_for(s, email=DROP), {"email"}),
    "missing-event-id": (lambda s: body_for(s, event_id=DROP), {"event_id"}),
    "missing-items": (lambda s: body_for(s, items=DROP), {"items"}),
    "empty-items": (lambda s: body_for(s, items=[]), {"items"}),
    "empty-body-object": (lambda s: {}, {"email", "event_id", "items"}),
    "email-no-at": (lambda s: body_for(s, email="buyer.example.org"), {"email"}),
    "email-no-domain-dot": (lambda s: body_for(s, email="buyer@localhost"), {"email"}),
    "email-with-space": (lambda s: body_for(s, email="bu yer@example.org"), {"email"}),
    "email-two-ats": (lambda s: body_for(s, email="a@b@example.org"), {"email"}),
    "email-blank": (lambda s: body_for(s, email="   "), {"email"}),
    "email-not-text": (lambda s: body_for(s, email=["buyer@example.org"]), {"email"}),
    "email-too-long": (lambda s: body_for(s, email="a" * 60 + "@" + "b" * 190 + ".org"), {"email"}),
    "email-control-char": (lambda s: body_for(s, email="buyer\x00@example.org"), {"email"}),
    "email-lone-surrogate": (lambda s: body_for(s, email="bu\ud800yer@example.org"), {"email"}),
    "name-too-long": (lambda s: body_for(s, "asking", name="N" * 201), {"name"}),
    "name-newline": (lambda s: body_for(s, "asking", name="Ana\nBcc: x@example.org"), {"name"}),
    "name-not-text": (lambda s: body_for(s, "asking", name=42), {"name"}),
    "name-lone-surrogate": (lambda s: body_for(s, "asking", name="Ana \udcff"), {"name"}),
    "postcode-too-long": (lambda s: body_for(s, "asking", postcode="1" * 17), {"postcode"}),
    "postcode-markup": (lambda s: body_for(s, "asking", postcode="<b>31</b>"), {"postcode"}),
    "event-id-not-text": (lambda s: body_for(s, event_id=12345), {"event_id"}),
    "event-id-too-long": (lambda s: body_for(s, event_id="a" * 65), {"event_id"}),
    "quantity-zero": (lambda s: body_for(s, quantity=0), {"items[0].quantity"}),
    "quantity-negative": (lambda s: body_for(s, quantity=-1), {"items[0].quantity"}),
    "quantity-huge": (lambda s: body_for(s, quantity=10**12), {"items[0].quantity"}),
    "quantity-huger-than-int64": (lambda s: body_for(s, quantity=10**30), {"items[0].quantity"}),
    "quantity-float": (lambda s: body_for(s, quantity=1.5), {"items[0].quantity"}),
    "quantity-whole-float": (lambda s: body_for(s, quantity=2.0), {"items[0].quantity"}),
    "quantity-word": (lambda s: body_for(s, quantity="two"), {"items[0].quantity"}),
    "quantity-decimal-string": (lambda s: body_for(s, quantity="2.5"), {"items[0].quantity"}),
    "quantity-boolean": (lambda s: body_for(s, quantity=True), {"items[0].quantity"}),
    "quantity-null": (lambda s: body_for(s, quantity=None), {"items[0].quantity"}),
    "quantity-list": (lambda s: body_for(s, quantity=[1]), {"items[0].quantity"}),
    "quantity-missing": (
        lambda s: body_for(s, items=[{"ticket_type_id": s.ticket_type}]),
        {"items[0].quantity"},
    ),
    "ticket-type-missing": (lambda s: body_for(s, items=[{"quantity": 1}]), {"items[0].ticket_type_id"}),
    "ticket-type-not-uuid": (
        lambda s: body_for(s, items=[{"ticket_type_id": "standard", "quantity": 1}]),
        {"items[0].ticket_type_id"},
    ),
    "ticket-type-not-text": (
        lambda s: body_for(s, items=[{"ticket_type_id": 7, "quantity": 1}]),
        {"items[0].ticket_type_id"},
    ),
    "ticket-type-unknown": (
        lambda s: body_for(s, items=[{"ticket_type_id": str(uuid.uuid4()), "quantity": 1}]),
        {"items[0].ticket_type_id"},
    ),
    "ticket-type-of-another-event": (
        lambda s: body_for(s, items=[{"ticket_type_id": s.other_type, "quantity": 1}]),
        {"items[0].ticket_type_id"},
    ),
    "items-an-object": (
        lambda s: body_for(s, items={"ticket_type_id": s.ticket_type, "quantity": 1}),
        {"items"},
    ),
    "items-a-string": (lambda s: body_for(s, items="2 standard"), {"items"}),
    "item-a-string": (lambda s: body_for(s, items=[s.ticket_type]), {"items[0]"}),
    "item-a-list": (lambda s: body_for(s, items=[[s.ticket_type, 1]]), {"items[0]"}),
    "item-null": (lambda s: body_for(s, items=[None]), {"items[0]"}),
    "too-many-items": (
        lambda s: body_for(s, items=[{"ticket_type_id": s.ticket_type, "quantity": 1}] * 21),
        {"items"},
    ),
    "unknown-field": (lambda s: body_for(s, phone="+33600000000"), {"phone"}),
    "unknown-fields": (lambda s: body_for(s, birth_date="1990-01-01", ip="10.0.0.1"), {"birth_date", "ip"}),
    "name-not-asked": (lambda s: body_for(s, name="Ana Martin"), {"name"}),
    "postcode-not-asked": (lambda s: body_for(s, postcode="31000"), {"postcode"}),
    "name-asked-missing": (lambda s: body_for(s, "asking", name=DROP), {"name"}),
    "postcode-asked-missing": (lambda s: body_for(s, "asking", postcode=DROP), {"postcode"}),
    "name-asked-blank": (lambda s: body_for(s, "asking", name="  "), {"name"}),
    "above-max-per-order": (lambda s: body_for(s, quantity=5), {"items[0]"}),
    "above-max-per-order-split-in-two-lines": (
        lambda s: body_for(
            s,
            items=[{"ticket_type_id": s.ticket_type, "quantity": 3}, {"ticket_type_id": s.ticket_type, "quantity": 2}],
        ),
        {"items[0]"},
    ),
    "sales-not-open-yet": (lambda s: body_for(s, "not_yet"), {"items[0]"}),
}


@pytest.mark.parametrize("case", INVALID_BODIES, ids=list(INVALID_BODIES))
def test_invalid_order_is_422_naming_the_field_and_writes_nothing(app, client, shop, case):
    build, fields = INVALID_BODIES[case]
    before = snapshot(app)

    response = client.post("/api/v1/orders", json=build(shop))

    problem = assert_problem(response, 422)
    assert fields <= set(problem["errors"]), problem["errors"]
    assert snapshot(app) == before


def test_one_bad_line_among_good_ones_holds_nothing(app, client, shop):
    before = snapshot(app)

    response = client.post(
        "/api/v1/orders",
        json=body_for(
            shop,
            items=[
                {"ticket_type_id": shop.ticket_type, "quantity": 2},
                {"ticket_type_id": shop.other_type, "quantity": 1},
            ],
        ),
    )

    assert_problem(response, 422)
    assert snapshot(app) == before


def test_every_problem_is_reported_at_once(app, client, shop):
    body = {"event_id": shop.event, "email": "nope", "items": [{"ticket_type_id": "x", "quantity": 0}], "fax": "1"}

    response = client.post("/api/v1/orders", json=body)

    problem = assert_problem(response, 422)
    assert set(problem["errors"]) == {"email", "items[0].ticket_type_id", "items[0].quantity", "fax"}


@pytest.mark.parametrize(
    ("event", "status", "code"),
    [
        (lambda s: str(uuid.uuid4()), 404, "not_found"),
        (lambda s: "not-a-uuid", 404, "not_found"),
        (lambda s: s.draft, 404, "not_found"),
        (lambda s: s.cancelled, 409, "event_cancelled"),
    ],
    ids=["unknown-uuid", "not-a-uuid", "draft", "cancelled"],
)
def test_order_for_an_event_not_on_sale_is_refused(app, client, shop, event, status, code):
    before = snapshot(app)

    response = client.post(
        "/api/v1/orders",
        json={**body_for(shop), "event_id": event(shop)},
    )

    assert assert_problem(response, status)["code"] == code
    assert snapshot(app) == before


def test_draft_event_is_404_even_with_its_own_ticket_type(app, client, shop):
    before = snapshot(app)

    response = client.post("/api/v1/orders", json=body_for(shop, "draft"))

    assert_problem(response, 404)
    assert snapshot(app) == before


def test_cancelled_event_is_409_even_with_its_own_ticket_type(app, client, shop):
    before = snapshot(app)

    response = client.post("/api/v1/orders", json=body_for(shop, "cancelled"))

    assert assert_problem(response, 409)["code"] == "event_cancelled"
    assert snapshot(app) == before


def test_order_above_what_is_left_is_409_with_what_is_left(app, client, shop):
    first = client.post("/api/v1/orders", json=body_for(shop, quantity=4))
    client.post("/api/v1/orders", json=body_for(shop, quantity=4, email="second@example.org"))
    before = snapshot(app)

    response = client.post("/api/v1/orders", json=body_for(shop, quantity=3, email="third@example.org"))

    assert first.status_code == 201
    problem = assert_problem(response, 409)
    assert problem["code"] == "sold_out"
    assert problem["available"] == {shop.ticket_type: 2}
    assert snapshot(app) == before


@pytest.mark.parametrize("quantity", ["2", " 2 "])
def test_quantity_as_a_string_of_digits_counts_like_the_number(app, client, shop, quantity):
    response = client.post("/api/v1/orders", json=body_for(shop, quantity=quantity))

    assert response.status_code == 201
    assert response.get_json()["total_cents"] == 2 * (1500 + 100)
    with app.app_context():
        assert db.session.get(TicketType, uuid.UUID(shop.ticket_type)).reserved == 2


RAW_BODIES = {
    "not-json": ("application/json", b'{"event_id": ', 400),
    "empty-body": ("application/json", b"", 400),
    "invalid-utf8": ("application/json", b'{"email": "\xff\xfe@example.org"}', 400),
    "deeply-nested": ("application/json", b"[" * 30_000 + b"]" * 30_000, 400),
    "text-plain": ("text/plain", b'{"event_id": "x"}', 400),
    "form-encoded": ("application/x-www-form-urlencoded", b"event_id=x&email=a%40b.org", 400),
    "no-content-type": (None, b'{"event_id": "x"}', 400),
    "json-array": ("application/json", b'[{"event_id": "x"}]', 422),
    "json-string": ("application/json", b'"order"', 422),
    "json-number": ("application/json", b"42", 422),
    "json-null": ("application/json", b"null", 422),
    "too-large": ("application/json", b'{"email": "' + b"a" * 70_000 + b'"}', 413),
}


@pytest.mark.parametrize("case", RAW_BODIES, ids=list(RAW_BODIES))
def test_body_that_is_not_a_json_object_is_a_problem_not_a_crash(app, client, shop, case):
    content_type, data, status = RAW_BODIES[case]
    headers = {"Content-Type": content_type} if content_type else {}
    before = snapshot(app)

    response = client.post("/api/v1/orders", data=data, headers=headers)

    assert_problem(response, status)
    assert snapshot(app) == before


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_other_methods_on_orders_are_405_problems(client, method):
    response = getattr(client, method)("/api/v1/orders")

    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


# --- Reading an order back -------------------------------------------------------------


def place(client, shop, email: str = "buyer@example.org") -> dict[str, Any]:
    response = client.post("/api/v1/orders", json=body_for(shop, email=email))
    assert response.status_code == 201
    return response.get_json()


def test_order_read_without_token_is_401_with_www_authenticate(client, shop):
    order = place(client, shop)

    response = client.get(f"/api/v1/orders/{order['code']}")

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Basic YTpi", "Bearer", "Token abc"])
def test_order_read_with_another_scheme_is_401(client, shop, header):
    order = place(client, shop)

    response = client.get(f"/api/v1/orders/{order['code']}", headers={"Authorization": header})

    assert_problem(response, 401)


def test_order_read_with_a_wrong_token_is_404(client, shop):
    order = place(client, shop)

    response = client.get(f"/api/v1/orders/{order['code']}", headers={"Authorization": "Bearer " + "A" * 43})

    assert assert_problem(response, 404)["code"] == "order_not_found"


def test_order_read_with_the_token_of_another_order_is_404(client, shop):
    mine = place(client, shop, "ana@example.org")
    theirs = place(client, shop, "ben@example.org")

    response = client.get(
        f"/api/v1/orders/{mine['code']}", headers={"Authorization": f"Bearer {theirs['access_token']}"}
    )

    assert assert_problem(response, 404)["code"] == "order_not_found"


@pytest.mark.parametrize("code", ["ZZZZZ-ZZZZZ", "x", "A" * 300, "%00", "ABCDE%00", "%F0%9F%8E%AB"])
def test_order_read_of_an_unknown_code_is_404(client, shop, code):
    order = place(client, shop)

    response = client.get(f"/api/v1/orders/{code}", headers={"Authorization": f"Bearer {order['access_token']}"})

    assert assert_problem(response, 404)["code"] == "order_not_found"


def test_order_read_with_its_token_answers_the_order(client, shop):
    order = place(client, shop)

    response = client.get(
        f"/api/v1/orders/{order['code'].lower()}", headers={"Authorization": f"Bearer {order['access_token']}"}
    )

    assert response.status_code == 200
    assert response.get_json()["code"] == order["code"]


@pytest.mark.parametrize("path", ["/orders/%00/token", "/orders/ABCDE-%00/x", "/pay/demo/%00/x"])
def test_order_page_with_a_nul_in_the_code_is_404(client, path):
    response = client.get(path)

    assert response.status_code == 404


# --- The HTML buy form ------------------------------------------------------------------


def buy(client, shop: Shop, data: dict[str, str], event: str = "event"):  # type: ignore[no-untyped-def]
    event_id = getattr(shop, event)
    return post_form(
        client, f"/events/{event_id}", f"/events/{event_id}/orders", data, headers={"Accept-Language": "en"}
    )


def qty(type_id: str) -> str:
    return f"qty-{type_id}"


def assert_error_next_to(html: str, field: str) -> None:
    """The message sits right after the field and the field points at it, for screen readers."""
    assert f'id="{field}-error"' in html, f"no error paragraph for {field}"
    control = re.search(rf'<(?:input|select|fieldset)[^>]*\bid="{re.escape(field)}"[^>]*>', html)
    assert control, f"no control {field}"
    if not control.group(0).startswith("<fieldset"):
        assert f"{field}-error" in control.group(0), f"{field} is not described by its error"
        assert 'aria-invalid="true"' in control.group(0)


def assert_page(response, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:400]
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("email", "field"),
    [(None, "email"), ("", "email"), ("not-an-email", "email"), ("a" * 250 + "@example.org", "email")],
    ids=["missing", "blank", "malformed", "too-long"],
)
def test_buy_form_with_a_bad_email_shows_the_error_next_to_it(app, client, shop, email, field):
    data = {qty(shop.ticket_type): "1"}
    if email is not None:
        data["email"] = email
    before = snapshot(app)

    response = buy(client, shop, data)

    html = assert_page(response, 422)
    assert_error_next_to(html, field)
    assert snapshot(app) == before


def test_buy_form_with_no_ticket_chosen_says_so_at_the_tickets(app, client, shop):
    before = snapshot(app)

    response = buy(client, shop, {qty(shop.ticket_type): "0", qty(shop.second_type): "0", "email": "a@example.org"})

    html = assert_page(response, 422)
    assert_error_next_to(html, "tickets")
    assert snapshot(app) == before


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "99", "1e3", "999999999999999999"])
def test_buy_form_with_a_bad_quantity_shows_the_error_next_to_it(app, client, shop, value):
    before = snapshot(app)

    response = buy(client, shop, {qty(shop.ticket_type): value, "email": "a@example.org"})

    html = assert_page(response, 422)
    assert_error_next_to(html, qty(shop.ticket_type))
    assert snapshot(app) == before


def test_buy_form_above_max_per_order_shows_the_error_next_to_that_ticket_type(app, client, shop):
    before = snapshot(app)

    response = buy(client, shop, {qty(shop.ticket_type): "1", qty(shop.second_type): "5", "email": "a@example.org"})

    html = assert_page(response, 422)
    assert_error_next_to(html, qty(shop.second_type))
    assert f'id="{qty(shop.ticket_type)}-error"' not in html
    assert snapshot(app) == before


def test_buy_form_keeps_what_the_buyer_typed(app, client, shop):
    response = buy(client, shop, {qty(shop.ticket_type): "2", "email": "not-an-email"})

    html = assert_page(response, 422)
    assert 'value="not-an-email"' in html
    assert '<option value="2" selected>' in html


def test_buy_form_without_csrf_token_is_a_400_page(app, client, shop):
    before = snapshot(app)

    response = client.post(f"/events/{shop.event}/orders", data={qty(shop.ticket_type): "1", "email": "a@example.org"})

    assert_page(response, 400)
    assert snapshot(app) == before


def test_buy_form_with_a_forged_csrf_token_is_a_400_page(app, client, shop):
    before = snapshot(app)

    response = client.post(
        f"/events/{shop.event}/orders",
        data={"csrf_token": "forged", qty(shop.ticket_type): "1", "email": "a@example.org"},
    )

    assert_page(response, 400)
    assert snapshot(app) == before


def test_buy_form_for_a_draft_event_is_404(app, client, shop):
    token = csrf_token(client, f"/events/{shop.event}")
    before = snapshot(app)

    response = client.post(
        f"/events/{shop.draft}/orders",
        data={"csrf_token": token, qty(shop.draft_type): "1", "email": "a@example.org"},
    )

    assert_page(response, 404)
    assert snapshot(app) == before


def test_buy_form_for_an_event_asking_for_a_name_needs_it(app, client, shop):
    before = snapshot(app)

    response = buy(client, shop, {qty(shop.asking_type): "1", "email": "a@example.org", "postcode": "31000"}, "asking")

    html = assert_page(response, 422)
    assert_error_next_to(html, "name")
    assert snapshot(app) == before


# --- Find my orders ---------------------------------------------------------------------


CSRF_VALUE = re.compile(r'name="csrf_token" value="[^"]*"')


@pytest.mark.parametrize("email", ["", "not-an-email", "a" * 300 + "@example.org"])
def test_find_orders_with_a_bad_email_is_a_422_page_with_the_error(client, email):
    response = post_form(client, "/orders/find", "/orders/find", {"email": email})

    html = assert_page(response, 422)
    assert_error_next_to(html, "email")


def test_find_orders_answers_the_same_page_for_known_and_unknown_emails(app, client, shop):
    place(client, shop, "known@example.org")
    mails_before = len(outbox(app))

    known = post_form(client, "/orders/find", "/orders/find", {"email": "known@example.org"})
    mails_after_known = len(outbox(app))
    unknown = post_form(client, "/orders/find", "/orders/find", {"email": "stranger@example.org"})

    assert (mails_after_known, len(outbox(app))) == (mails_before + 1, mails_before + 1)
    assert known.status_code == unknown.status_code == 200
    assert CSRF_VALUE.sub("", known.get_data(as_text=True)) == CSRF_VALUE.sub("", unknown.get_data(as_text=True))
    assert known.headers.get("Content-Length") == unknown.headers.get("Content-Length")


def test_find_orders_without_csrf_token_is_a_400_page(client):
    response = client.post("/orders/find", data={"email": "known@example.org"})

    assert_page(response, 400)


def test_an_order_whose_total_a_32_bit_amount_cannot_hold_is_a_422_that_writes_nothing(app, client):
    with app.app_context():
        event = make_event(price_cents=9_000_000, fee_cents=1_000_000, capacity=1000, max_per_order=50)
        event_id = str(event.id)
        for n in range(4):
            db.session.add(
                TicketType(
                    event_id=event.id,
                    name=f"Loge {n}",
                    price_cents=9_000_000,
                    fee_cents=1_000_000,
                    capacity=1000,
                    max_per_order=50,
                )
            )
        db.session.commit()
        type_ids = [str(t) for t in db.session.scalars(select(TicketType.id).where(TicketType.event_id == event.id))]
    before = snapshot(app)
    items = [{"ticket_type_id": type_id, "quantity": 50} for type_id in type_ids]  # 250 x 100,000.00

    response = client.post("/api/v1/orders", json={"event_id": event_id, "items": items, "email": "big@example.org"})

    problem = assert_problem(response, 422)
    assert "items" in problem["errors"]
    assert snapshot(app) == before
