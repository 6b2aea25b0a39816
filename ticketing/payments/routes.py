"""The demo provider's payment page: the buyer confirms or cancels, no money moves."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from ticketing.checkout.notify import send_order_paid_mail
from ticketing.checkout.services import cancel_order, find_order, pay_order
from ticketing.errors import Conflict, Invalid
from ticketing.extensions import db
from ticketing.models import utcnow
from ticketing.web import external_url

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
    if action == "pay":
        try:
            order = pay_order(db.session, order.id, utcnow(), provider_ref=f"demo-{order.code}")
        except Conflict as error:  # HoldExpired among them: the tickets went to someone else
            return render_template(
                "payments/demo.html", order=order, token=token, now=utcnow(), error=error.message
            ), 409
        send_order_paid_mail(order, token)
    elif action == "cancel":
        cancel_order(db.session, order.id, utcnow())
    else:
        raise Invalid(_("Choose to pay or to cancel."), errors={"action": _("Choose to pay or to cancel.")})
    return redirect(external_url("checkout.order_page", code=order.code, token=token))
