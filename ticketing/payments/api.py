"""Organiser API for money: cancel an event, follow its refunds (failed ones first)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from ticketing.catalog.services import authenticate_organizer
from ticketing.extensions import db
from ticketing.mail.queue import send_queued_mail_now
from ticketing.models import utcnow
from ticketing.openapi import operation
from ticketing.payments.schemas import CANCELLATION, REFUNDS
from ticketing.payments.services import cancel_event, event_refunds
from ticketing.schema import respond
from ticketing.web import answer_after_commit, bearer_token

bp = Blueprint("payments_api", __name__, url_prefix="/api/v1")


@bp.post("/events/<event_id>/cancel")
@operation(
    "Cancel an event: tickets voided, buyers mailed a refund-or-donation choice",
    answers={200: (CANCELLATION, "The cancelled event and how many orders are owed a refund")},
    problems={404: "No such event (or not yours)", 409: "`event_cancelled`: already cancelled"},
    security=("organizerToken",),
)
def cancel(event_id: str) -> Response:
    organizer = authenticate_organizer(db.session, bearer_token())
    now = utcnow()
    cancellation = cancel_event(db.session, organizer, event_id, now, current_app.config["REFUND_CHOICE_DAYS"])
    event_id = str(cancellation.event.id)
    to_refund = len(cancellation.refund_ids)

    def answer(mailed: int) -> Response:
        body = {"id": event_id, "status": "cancelled", "orders_to_refund": to_refund, "buyers_mailed": mailed}
        return respond(CANCELLATION, body)

    answer_after_commit(lambda: answer(0))  # cancelled whatever follows; the mails stay queued
    # Mailed by this request in inline mode; with a mail worker, 0 here and sent by it.
    mailed = send_queued_mail_now(db.session).sent
    return answer(mailed)


@bp.get("/events/<event_id>/refunds")
@operation(
    "The event's refunds and donations, failed ones first",
    answers={200: (REFUNDS, "Refunds")},
    problems={404: "No such event (or not yours)"},
    security=("organizerToken",),
)
def refunds(event_id: str) -> Response:
    organizer = authenticate_organizer(db.session, bearer_token())
    event, rows = event_refunds(db.session, organizer, event_id)
    return respond(
        REFUNDS,
        {
            "event_id": event.id,
            "failed": sum(1 for refund, _code in rows if refund.status == "failed"),
            "refunds": [
                {
                    "order_code": code,
                    "reason": refund.reason,
                    "status": refund.status,
                    "amount_cents": refund.amount_cents,
                    "donated_cents": refund.donated_cents,
                    "currency": refund.currency,
                    "attempts": refund.attempt + 1,
                    "last_error": refund.last_error,
                    "due_at": refund.due_at,
                    "completed_at": refund.completed_at,
                }
                for refund, code in rows
            ],
        },
    )
