"""``/api/v1/orders``: place an order, read it back with its access token."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from flask_babel import get_locale
from flask_babel import gettext as _

from ticketing.checkout import orders
from ticketing.checkout.limits import charge_hold, check_hold_budget, order_limits
from ticketing.checkout.links import ticket_links
from ticketing.checkout.models import Order
from ticketing.checkout.parsing import parse_order_json
from ticketing.checkout.presenter import ticket_presenter
from ticketing.errors import Unauthorized
from ticketing.extensions import db, keyring
from ticketing.mail.queue import send_queued_mail_now
from ticketing.models import utcnow
from ticketing.web import answer_after_commit, api_time, bearer_token, external_url, json_body

bp = Blueprint("checkout_api", __name__, url_prefix="/api/v1")


def order_json(order: Order) -> dict[str, Any]:
    presenter = ticket_presenter()
    return {
        "code": order.code,
        "status": order.status,
        "event_id": str(order.event_id),
        "currency": order.currency,
        "subtotal_cents": order.subtotal_cents,
        "fee_cents": order.fee_cents,
        "total_cents": order.total_cents,
        "created_at": api_time(order.created_at),
        "paid_at": api_time(order.paid_at),
        "hold_expires_at": api_time(order.hold_expires_at) if order.status == "pending" else None,
        "lines": [
            {
                "ticket_type_id": str(line.ticket_type_id),
                "name": line.ticket_type.name,
                "quantity": line.quantity,
                "unit_price_cents": line.unit_price_cents,
                "unit_fee_cents": line.unit_fee_cents,
            }
            for line in order.lines
        ],
        "tickets": [
            {
                "id": str(t.id),
                "ticket_type_id": str(t.ticket_type_id),
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
def create_order() -> tuple[Response, int]:
    event_id, order_request = parse_order_json(json_body())
    check_hold_budget()
    provider = current_app.extensions["guichet.payments"]
    placed = orders.place_order(
        db.session,
        keyring(),
        event_id,
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
        "hold_expires_at": api_time(order.hold_expires_at) if order.status == "pending" else None,
        "payment": payment,
    }
    answer_after_commit(lambda: (jsonify(body), 201))  # the order is placed whatever follows
    send_queued_mail_now(db.session)  # a free order's tickets (after the body: sending expires the order object)
    return jsonify(body), 201


@bp.get("/orders/<code>")
def get_order(code: str) -> Response:
    token = bearer_token()
    if not token:
        raise Unauthorized(_("Send the order's access token as 'Authorization: Bearer <token>'."))
    order = orders.find_order(db.session, code, token)
    return jsonify(order_json(order))
