"""``/api/v1/orders``: place an order, read it back with its access token."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app
from flask_babel import get_locale
from flask_babel import gettext as _

from ticketing.checkout import orders
from ticketing.checkout.limits import charge_hold, check_hold_budget, order_limits
from ticketing.checkout.models import Order
from ticketing.checkout.presenter import ticket_presenter
from ticketing.checkout.schemas import NEW_ORDER, ORDER, PLACED_ORDER
from ticketing.checkout.ticket_links import ticket_links
from ticketing.errors import Unauthorized
from ticketing.extensions import db, keyring
from ticketing.mail.queue import send_queued_mail_now
from ticketing.models import utcnow
from ticketing.openapi import operation
from ticketing.schema import load, respond
from ticketing.web import answer_after_commit, bearer_token, external_url

bp = Blueprint("checkout_api", __name__, url_prefix="/api/v1")


def order_json(order: Order) -> dict[str, Any]:
    presenter = ticket_presenter()
    return {
        "code": order.code,
        "status": order.status,
        "event_id": order.event_id,
        "currency": order.currency,
        "subtotal_cents": order.subtotal_cents,
        "fee_cents": order.fee_cents,
        "total_cents": order.total_cents,
        "created_at": order.created_at,
        "paid_at": order.paid_at,
        "hold_expires_at": order.hold_expires_at if order.status == "pending" else None,
        "lines": [
            {
                "ticket_type_id": line.ticket_type_id,
                "name": line.ticket_type.name,
                "quantity": line.quantity,
                "unit_price_cents": line.unit_price_cents,
                "unit_fee_cents": line.unit_fee_cents,
            }
            for line in order.lines
        ],
        "tickets": [
            {
                "id": t.id,
                "ticket_type_id": t.ticket_type_id,
                "name": t.ticket_type.name,
                "status": t.status,
                **presenter.api_fields(t),
                "links": ticket_links(t),
            }
            for t in order.tickets
        ],
    }


@bp.post("/orders")
@order_limits
@operation(
    "Place an order: holds the tickets, answers the code, the access token and where to pay",
    body=NEW_ORDER,
    answers={201: (PLACED_ORDER, "The order")},
    problems={
        404: "No such event",
        409: "`sold_out` (with what is left per ticket type in `available`), or `event_cancelled`",
        429: "`too_many_held` (this client holds its budget of unpaid tickets), or too many orders from this "
        "client or for this address: see README, limits on placing orders",
    },
    rate_limited=True,
)
def create_order() -> Response:
    body = load(NEW_ORDER)
    items = tuple(orders.OrderItem(line["ticket_type_id"], line["quantity"]) for line in body["items"])
    order_request = orders.OrderRequest(items, body["email"], body.get("name"), body.get("postcode"))
    check_hold_budget()
    provider = current_app.extensions["guichet.payments"]
    placed = orders.place_order(
        db.session,
        keyring(),
        body["event_id"],
        order_request,
        locale=str(get_locale() or "en"),
        now=utcnow(),
        hold_minutes=current_app.config["HOLD_MINUTES"],
        provider=provider.name,
    )
    order, token = placed.order, placed.access_token
    if not order.is_paid:
        charge_hold(sum(item.quantity for item in order_request.items))
    if order.is_paid:
        payment = {"provider": "free", "url": external_url("checkout.order_page", code=order.code, token=token)}
    else:
        payment = {"provider": order.provider, "url": provider.start(order, token)}
    body = {
        "code": order.code,
        "access_token": token,
        "status": order.status,
        "total_cents": order.total_cents,
        "fee_cents": order.fee_cents,
        "currency": order.currency,
        "hold_expires_at": order.hold_expires_at if order.status == "pending" else None,
        "payment": payment,
    }
    response = respond(PLACED_ORDER, body, 201)
    answer_after_commit(lambda: response)  # the order is placed whatever follows
    send_queued_mail_now(db.session)  # a free order's tickets (after the body: sending expires the order object)
    return response


@bp.get("/orders/<code>")
@operation(
    "Read an order with its access token",
    answers={200: (ORDER, "The order")},
    problems={404: "`order_not_found`: no order for this code and token"},
    security=("orderToken",),
)
def get_order(code: str) -> Response:
    token = bearer_token()
    if not token:
        raise Unauthorized(_("Send the order's access token as 'Authorization: Bearer <token>'."))
    order = orders.find_order(db.session, code, token)
    return respond(ORDER, order_json(order))
