"""Organiser API for money: cancel an event, follow its refunds (failed ones first)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from werkzeug.wrappers import Response

from ticketing.catalog.services import authenticate_organizer
from ticketing.extensions import db
from ticketing.mail.queue import send_queued_mail_now
from ticketing.models import utcnow
from ticketing.payments.services import cancel_event, event_refunds
from ticketing.web import answer_after_commit, api_time, bearer_token

bp = Blueprint("payments_api", __name__, url_prefix="/api/v1")


@bp.post("/events/<event_id>/cancel")
def cancel(event_id: str) -> Response:
    organizer = authenticate_organizer(db.session, bearer_token())
    now = utcnow()
    cancellation = cancel_event(db.session, organizer, event_id, now, current_app.config["REFUND_CHOICE_DAYS"])
    event_id = str(cancellation.event.id)
    to_refund = len(cancellation.refund_ids)
    # Cancelled whatever follows; the mails stay queued for `flask send-mail`.
    answer_after_commit(lambda: jsonify(id=event_id, status="cancelled", orders_to_refund=to_refund, buyers_mailed=0))
    # Mailed by this request in inline mode; with a mail worker, 0 here and sent by it.
    mailed = send_queued_mail_now(db.session).sent
    return jsonify(id=event_id, status="cancelled", orders_to_refund=to_refund, buyers_mailed=mailed)


@bp.get("/events/<event_id>/refunds")
def refunds(event_id: str) -> Response:
    organizer = authenticate_organizer(db.session, bearer_token())
    event, rows = event_refunds(db.session, organizer, event_id)
    return jsonify(
        event_id=str(event.id),
        failed=sum(1 for refund, _code in rows if refund.status == "failed"),
        refunds=[
            {
                "order_code": code,
                "reason": refund.reason,
                "status": refund.status,
                "amount_cents": refund.amount_cents,
                "donated_cents": refund.donated_cents,
                "currency": refund.currency,
                "attempts": refund.attempt + 1,
                "last_error": refund.last_error,
                "due_at": api_time(refund.due_at),
                "completed_at": api_time(refund.completed_at),
            }
            for refund, code in rows
        ],
    )
