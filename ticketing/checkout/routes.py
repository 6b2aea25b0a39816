"""Buying from the event page, the order page, and "find my orders"."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from flask import Blueprint, current_app, redirect, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from ticketing.catalog.services import get_public_event, sale_state
from ticketing.catalog.signals import show_live_availability, stale_holds_asked
from ticketing.checkout import orders, stock
from ticketing.checkout.buy_form import buy_form, quantities_form
from ticketing.checkout.limits import TooManyHeld, charge_hold, check_hold_budget, order_limits
from ticketing.checkout.notify import send_order_links
from ticketing.checkout.presenter import ticket_presenter
from ticketing.checkout.ticket_links import ticket_link_opens_at, ticket_links
from ticketing.errors import Invalid, SoldOut
from ticketing.extensions import db, email_fingerprint, keyring, limiter, not_an_email
from ticketing.mail.queue import send_queued_mail_now
from ticketing.models import utcnow
from ticketing.web import answer_after_commit, external_url
from ticketing.webforms import EmailForm

bp = Blueprint("checkout", __name__)
bp.add_app_template_global(ticket_links, "ticket_links")
bp.add_app_template_global(ticket_link_opens_at, "ticket_link_opens_at")

ITEM_KEY = re.compile(r"items\[(\d+)\]")


@stale_holds_asked.connect
def _stale_holds(_sender: object, *, event_ids: list[uuid.UUID], now: dt.datetime) -> dict[uuid.UUID, int]:
    return stock.stale_holds(db.session, event_ids, now)


def _event_page_with(event_id: str, status: int, **context: object) -> tuple[str, int]:
    db.session.rollback()
    now = utcnow()
    event = get_public_event(db.session, event_id)
    show_live_availability([event], now)
    context.setdefault("errors", {})
    if "quote" not in context:
        context["quote"] = quantities_form(event, request.form).quote(event)[0]
    return (
        render_template(
            "catalog/event.html", event=event, now=now, sale_state=sale_state, form=request.form, **context
        ),
        status,
    )


@bp.post("/events/<event_id>/orders")
@order_limits
def create_order(event_id: str) -> Response | tuple[str, int]:
    now = utcnow()
    event = get_public_event(db.session, event_id)
    order_request = None
    try:
        order_request = buy_form(event, request.form).order_request()
        check_hold_budget()
        placed = orders.place_order(
            db.session,
            keyring(),
            event_id,
            order_request,
            locale=str(get_locale() or "en"),
            now=now,
            hold_minutes=current_app.config["HOLD_MINUTES"],
            provider=current_app.extensions["guichet.payments"].name,
        )
    except Invalid as error:
        errors = _errors_by_form_field(error.errors, order_request)
        return _event_page_with(event_id, 422, errors=errors, message=error.message)
    except SoldOut as error:
        return _event_page_with(event_id, 409, message=error.message)
    except TooManyHeld as error:
        return _event_page_with(event_id, 429, message=error.message)
    if not placed.order.is_paid:
        charge_hold(sum(item.quantity for item in order_request.items))
    return _continue_to_payment(placed)


@bp.post("/events/<event_id>/total")
def order_total(event_id: str) -> tuple[str, int]:
    """The buy form's "Update the total" button, for pages without JavaScript: the same
    page with the total of the chosen tickets. Nothing is held, nothing written."""
    event = get_public_event(db.session, event_id)
    quote, errors = quantities_form(event, request.form).quote(event)
    return _event_page_with(event_id, 422 if errors else 200, errors=errors, quote=quote)


def _errors_by_form_field(errors: dict[str, str], order_request: orders.OrderRequest | None) -> dict[str, str]:
    """``place_order`` names a line ``items[i]``; the buy form names it ``qty-<ticket type id>``.

    The form sends each ticket type once, so line ``i`` is ``order_request.items[i]``; moving
    the message there puts it next to its field, where a screen reader announces it.
    """
    if order_request is None:
        return errors
    by_field: dict[str, str] = {}
    for key, message in errors.items():
        line = ITEM_KEY.match(key)
        if line and int(line.group(1)) < len(order_request.items):
            key = f"qty-{order_request.items[int(line.group(1))].ticket_type_id}"
        by_field.setdefault(key, message)
    return by_field


def _continue_to_payment(placed: orders.PlacedOrder) -> Response:
    order, token = placed.order, placed.access_token
    if order.is_paid:  # a free order: paid at once, its tickets mail queued with it
        order_page = external_url("checkout.order_page", code=order.code, token=token)
        code = order.code  # read now: sending the mail expires the order object
        answer_after_commit(lambda: order_recorded_page(code, order_page, paid=False))
        send_queued_mail_now(db.session)
        return redirect(order_page, code=303)
    return redirect(current_app.extensions["guichet.payments"].start(order, token), code=303)


def order_recorded_page(code: str, order_page: str, *, paid: bool) -> tuple[str, int]:
    """The answer when an order was confirmed (free) or paid and what follows the commit failed."""
    if paid:
        title = _("Payment received")
        detail = _("Your order %(code)s is paid. Your tickets will follow by email.", code=code)
    else:
        title = _("Order confirmed")
        detail = _("Your order %(code)s is confirmed. Your tickets will follow by email.", code=code)
    page = render_template(
        "errors/recorded.html", title=title, detail=detail, link=order_page, link_text=_("See your order")
    )
    return page, 200


@bp.get("/orders/<code>/<token>")
def order_page(code: str, token: str) -> str:
    order = orders.find_order(db.session, code, token)
    payment_url = None
    if order.status == "pending":
        payment_url = current_app.extensions["guichet.payments"].start(order, token)
    return render_template(
        "checkout/order.html",
        order=order,
        token=token,
        payment_url=payment_url,
        now=utcnow(),
        presenter=ticket_presenter(),
        payment_returned=request.args.get("payment") == "returned",
    )


@bp.route("/orders/find", methods=["GET", "POST"])
@limiter.limit("10 per minute; 30 per hour", methods=["POST"])
@limiter.limit("3 per hour", methods=["POST"], key_func=email_fingerprint, exempt_when=not_an_email)
def find_orders() -> str | tuple[str, int]:
    if request.method == "GET":
        return render_template("checkout/find.html", errors={}, form={})
    form = EmailForm(formdata=request.form)
    if not form.validate():
        return render_template("checkout/find.html", errors=form.problems(), form=request.form), 422
    email = form.email.data
    found = orders.orders_for_email(db.session, keyring(), email)
    if found:
        send_order_links(email, found, str(get_locale() or "en"))
    # The same page whether or not we know the address: nobody learns who bought.
    return render_template("checkout/find_sent.html")
