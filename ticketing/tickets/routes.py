"""The printable ticket view: one ticket per page, from the browser's own print."""

from __future__ import annotations

from flask import Blueprint, render_template

from ticketing.checkout.orders import find_order
from ticketing.errors import NotFound
from ticketing.extensions import db
from ticketing.tickets.presenter import QrTicketPresenter

bp = Blueprint("tickets", __name__)


@bp.get("/orders/<code>/<token>/print")
def print_tickets(code: str, token: str) -> str:
    order = find_order(db.session, code, token)
    if not order.is_paid:
        raise NotFound()
    return render_template("tickets/print.html", order=order, event=order.event, presenter=QrTicketPresenter())
