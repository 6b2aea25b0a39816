"""Payment pages: the demo provider's, the way to Stripe and its webhook, refund choices."""

from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, current_app, jsonify, redirect, render_template, request
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from ticketing.checkout.models import Order
from ticketing.checkout.orders import find_order
from ticketing.checkout.routes import order_recorded_page
from ticketing.checkout.settlement import cancel_order, pay_order
from ticketing.errors import Conflict, Forbidden, GuichetError, Invalid, NotFound
from ticketing.extensions import csrf, db, limiter
from ticketing.mail.queue import send_queued_mail_now
from ticketing.models import utcnow
from ticketing.payments.models import Refund
from ticketing.payments.notify import refund_id_from_token, send_refunds
from ticketing.payments.services import (
    decide_refund,
    handle_event,
    record_checkout_session,
    refund_cutoff,
    refund_refusal,
    request_refund,
)
from ticketing.payments.stripe import StripeProvider, WebhookRejected
from ticketing.web import answer_after_commit, external_url

log = logging.getLogger(__name__)

bp = Blueprint("payments", __name__)


@bp.get("/pay/demo/<code>/<token>")
def demo_checkout(code: str, token: str) -> str | Response:
    order = find_order(db.session, code, token)
    if order.status != "pending":
        return redirect(external_url("checkout.order_page", code=order.code, token=token))
    return render_template("payments/demo.html", order=order, token=token, now=utcnow())


@bp.post("/pay/demo/<code>/<token>")
def demo_decide(code: str, token: str) -> str | Response | tuple[str, int]:
    order = find_order(db.session, code, token)
    action = request.form.get("action")
    order_page = external_url("checkout.order_page", code=order.code, token=token)
    if action == "pay":
        paid_code = order.code
        answer_after_commit(lambda: order_recorded_page(paid_code, order_page, paid=True))
        try:
            order = pay_order(db.session, order.id, utcnow(), provider_ref=f"demo-{order.code}")
        except Conflict as error:  # HoldExpired among them: the tickets went to someone else
            return render_template(
                "payments/demo.html", order=order, token=token, now=utcnow(), error=error.message
            ), 409
        send_queued_mail_now(db.session)
    elif action == "cancel":
        cancel_order(db.session, order.id, utcnow())
    else:
        raise Invalid(_("Choose to pay or to cancel."), errors={"action": _("Choose to pay or to cancel.")})
    return redirect(order_page)


def _recorded_page(title: str, detail: str, order_page: str | None = None) -> tuple[str, int]:
    """The answer when a choice or a refund was recorded and what follows the commit failed."""
    page = render_template(
        "errors/recorded.html", title=title, detail=detail, link=order_page, link_text=_("See your order")
    )
    return page, 200


# --- Stripe -----------------------------------------------------------------------------


def _stripe() -> StripeProvider:
    provider = current_app.extensions["guichet.payments"]
    if not isinstance(provider, StripeProvider):
        raise NotFound(_("Stripe payments are not configured here."))
    return provider


@bp.get("/pay/stripe/<code>/<token>")
def stripe_checkout(code: str, token: str) -> Response:
    """Make (or find again, by idempotency key) the order's Checkout Session and go there."""
    provider = _stripe()
    order = find_order(db.session, code, token)
    order_page = external_url("checkout.order_page", code=order.code, token=token)
    if order.status != "pending" or order.hold_expires_at <= utcnow():
        return redirect(order_page, code=303)
    checkout = provider.create_checkout_session(order, token)
    db.session.rollback()
    record_checkout_session(db.session, order.id, checkout.session_id)
    return redirect(checkout.url, code=303)


@bp.post("/payments/stripe/webhook")
@csrf.exempt
@limiter.exempt
def stripe_webhook() -> tuple[Response, int]:
    """Stripe's events. 400 changes nothing; 2xx tells Stripe to stop retrying."""
    provider = _stripe()
    try:
        event = provider.verify_webhook(request.get_data(cache=False), request.headers.get("Stripe-Signature"))
    except WebhookRejected as error:
        log.info("stripe webhook refused: %s", error)
        return jsonify({"error": "invalid webhook"}), 400
    now = utcnow()
    # Once the event is recorded and applied, no failure may make Stripe send it again.
    answer_after_commit(lambda: (jsonify({"received": True, "duplicate": False}), 200))
    outcome = handle_event(db.session, provider.name, event, now)
    send_refunds(outcome.refund_ids, now)
    send_queued_mail_now(db.session)
    return jsonify({"received": True, "duplicate": outcome.duplicate}), 200


# --- Cancellation choice and buyer refunds ----------------------------------------------


def _refund_from(token: str) -> Refund:
    refund_id = refund_id_from_token(token)
    refund = db.session.get(Refund, refund_id) if refund_id else None
    if refund is None:
        raise NotFound(_("This link is not valid. Check that you copied the whole link."), code="bad_link")
    return refund


@bp.get("/refunds/choose/<token>")
def solidarity_choice(token: str) -> str:
    refund = _refund_from(token)
    return render_template("payments/choose.html", refund=refund, order=refund.order, now=utcnow(), errors={})


@bp.post("/refunds/choose/<token>")
def solidarity_decide(token: str) -> str | tuple[str, int]:
    refund = _refund_from(token)
    now = utcnow()
    detail = _("Your choice for order %(code)s is recorded.", code=refund.order.code)
    answer_after_commit(lambda: _recorded_page(_("Choice recorded"), detail))
    try:
        refund = decide_refund(db.session, refund.id, request.form.get("choice", ""), now)
    except Invalid as error:
        page = render_template("payments/choose.html", refund=refund, order=refund.order, now=now, errors=error.errors)
        return page, 422
    send_refunds([refund.id], now)
    send_queued_mail_now(db.session)
    refund = _refund_from(token)
    return render_template("payments/choose.html", refund=refund, order=refund.order, now=now, errors={})


def _refund_page(order: Order, token: str, now: dt.datetime, refusal: GuichetError | None, refused_now: bool) -> str:
    return render_template(
        "payments/refund.html",
        order=order,
        token=token,
        cutoff=refund_cutoff(order),
        now=now,
        refusal=refusal,
        refused_now=refused_now,
    )


@bp.get("/orders/<code>/<token>/refund")
def refund_page(code: str, token: str) -> str:
    order = find_order(db.session, code, token)
    now = utcnow()
    return _refund_page(order, token, now, refund_refusal(order, now), refused_now=False)


@bp.post("/orders/<code>/<token>/refund")
def refund_order(code: str, token: str) -> Response | tuple[str, int]:
    order = find_order(db.session, code, token)
    now = utcnow()
    order_page = external_url("checkout.order_page", code=order.code, token=token)
    detail = _("Your refund for order %(code)s is recorded; the money will be sent back to you.", code=order.code)
    answer_after_commit(lambda: _recorded_page(_("Refund recorded"), detail, order_page))
    try:
        refund = request_refund(db.session, order.id, now)
    except (Conflict, Forbidden) as error:
        order = find_order(db.session, code, token)
        return _refund_page(order, token, now, error, refused_now=True), error.status
    send_refunds([refund.id], now)
    send_queued_mail_now(db.session)
    return redirect(order_page, code=303)
