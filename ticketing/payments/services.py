"""Payment events, refunds, event cancellation and the solidarity ticket.

Money and tickets never disagree: a payment either issues its tickets or is refunded; a
refund voids the tickets it pays back. Every handler is idempotent, so a webhook delivered
twice, late, out of order or at the same moment as another changes the state once.
Provider calls (refunds) happen after the commit; the ``refund`` row is the outbox that
``flask process-refunds`` drains and retries. Mails to buyers are queued in the same
transaction as the change they announce (``ticketing.mail.queue``).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask_babel import gettext as _
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from ticketing.catalog.models import Event, Organizer, TicketType
from ticketing.catalog.services import parse_uuid
from ticketing.checkout.models import Order, OrderLine, Ticket
from ticketing.checkout.settlement import (
    HoldExpired,
    expire_order_in_transaction,
    load_order_for_payment,
    settle_loaded_order,
)
from ticketing.errors import Conflict, Forbidden, GuichetError, Invalid, NotFound
from ticketing.mail.queue import enqueue_mail
from ticketing.models import begin_write, insert_unless_present
from ticketing.payments.models import PaymentEvent, Refund
from ticketing.payments.stripe import PaymentProviderError, RefundResult

log = logging.getLogger(__name__)

PAID_SESSION_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
REFUND_EVENTS = ("charge.refunded", "refund.updated", "refund.created", "refund.failed")
MAX_REFUND_ATTEMPTS = 5
RECONCILE_WINDOW = dt.timedelta(days=2)  # Stripe sessions live at most a day
CHOICES = ("refund", "donate_price", "donate_all")
# Mail kinds (see ticketing/mail/queue.py): their subject is the order, and the refund.
LATE_PAYMENT_REFUNDED_MAIL = "late_payment_refunded"
EVENT_CANCELLED_MAIL = "event_cancelled"
REFUND_CONFIRMED_MAIL = "refund_confirmed"


class Refunder(Protocol):
    name: str

    def refund(self, payment_ref: str, amount_cents: int, refund_key: str, order_id: str) -> RefundResult: ...


@dataclass
class EventOutcome:
    """What the event changed, and the refunds the caller sends after the commit (mails
    were queued in the transaction)."""

    duplicate: bool = False
    paid_order_id: uuid.UUID | None = None
    refund_ids: list[uuid.UUID] = field(default_factory=list)


def _record_event(dialect_name: str) -> Any:
    """The primary key on the event id makes a repeat (or a concurrent twin) insert nothing
    and return no row."""
    return (
        insert_unless_present(dialect_name, PaymentEvent.__table__)
        .values(
            id=bindparam("event_id"),
            provider=bindparam("provider"),
            type=bindparam("event_type"),
            order_id=bindparam("order_id"),
            received_at=bindparam("now"),
        )
        .returning(PaymentEvent.__table__.c.id)
    )


def _order_id_of(obj: Mapping[str, Any]) -> uuid.UUID | None:
    metadata = obj.get("metadata")
    raw = metadata.get("order_id") if isinstance(metadata, Mapping) else None
    if not isinstance(raw, str):
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def _text(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if isinstance(value, Mapping):  # an expanded object instead of its id
        value = value.get("id")
    return value if isinstance(value, str) else None


def handle_event(session: Session, provider: str, event: Mapping[str, Any], now: dt.datetime) -> EventOutcome:
    """Apply one verified provider event, exactly once, in one transaction.

    The event id is inserted first: a repeated delivery finds it (or, arriving at the same
    moment, waits on it and then finds it) and changes nothing. If applying fails, the
    record goes with it and the provider's next delivery tries again.
    """
    event_id, event_type = str(event["id"]), str(event["type"])
    obj: Mapping[str, Any] = event["data"]["object"]
    order_id = _order_id_of(obj) if event_type.startswith("checkout.session.") else None
    begin_write(session)
    connection = session.connection()
    recorded = connection.execute(
        _record_event(connection.dialect.name),
        {"event_id": event_id, "provider": provider, "event_type": event_type[:64], "order_id": order_id, "now": now},
    ).first()
    if recorded is None:
        session.rollback()
        return EventOutcome(duplicate=True)
    outcome = EventOutcome()
    if event_type.startswith("checkout.session."):
        outcome = _apply_session(session, obj, event_type, now)
    elif event_type in REFUND_EVENTS:
        _apply_refund_objects(session, event_type, obj, now)
    session.commit()
    return outcome


def apply_checkout_session(session: Session, obj: Mapping[str, Any], event_type: str, now: dt.datetime) -> EventOutcome:
    """Bring the order in line with its Checkout Session, as ``reconcile-payments`` found it."""
    begin_write(session)
    outcome = _apply_session(session, obj, event_type, now)
    session.commit()
    return outcome


def _apply_session(session: Session, obj: Mapping[str, Any], event_type: str, now: dt.datetime) -> EventOutcome:
    outcome = EventOutcome()
    order_id = _order_id_of(obj)
    if order_id is None:
        log.info("checkout session %s names no order of ours; ignored", _text(obj, "id"))
        return outcome
    payment_status = obj.get("payment_status")
    if event_type in PAID_SESSION_EVENTS and payment_status in ("paid", "no_payment_required"):
        return _on_paid(session, order_id, obj, now)
    ended_unpaid = event_type in ("checkout.session.expired", "checkout.session.async_payment_failed")
    if ended_unpaid and expire_order_in_transaction(session, order_id, now):
        log.info("order id %s: payment session ended unpaid; hold released", order_id)
    return outcome


def _on_paid(session: Session, order_id: uuid.UUID, obj: Mapping[str, Any], now: dt.datetime) -> EventOutcome:
    outcome = EventOutcome()
    payment_ref, session_ref = _text(obj, "payment_intent"), _text(obj, "id")
    reason = None
    for _attempt in range(3):
        order = load_order_for_payment(session, order_id)
        if order is None:
            log.warning("checkout session for unknown order %s; ignored", order_id)
            return outcome
        if (
            obj.get("amount_total") != order.total_cents
            or str(obj.get("currency", "")).lower() != order.currency.lower()
        ):
            log.error("order %s: Stripe amount or currency differs from the order; not issued", order.code)
            return outcome
        try:
            settled = settle_loaded_order(session, order, now, provider_ref=payment_ref)
        except HoldExpired:
            reason = "hold_expired"
            break
        except Conflict as error:
            if error.code != "order_cancelled":
                raise
            reason = "order_cancelled"
            break
        if settled is not None:
            if settled.newly_paid:
                outcome.paid_order_id = order.id
            return outcome
    if reason is None:
        raise Conflict(_("This order is changing right now; try again."), code="order_busy")
    # Paid, but the tickets went to someone else (or the order was cancelled): give it back.
    moved = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status.in_(("expired", "cancelled")))
        .values(status="refunded", paid_at=now, provider_ref=payment_ref, payment_session_ref=session_ref)
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved:
        refund_id = _create_refund(session, order, reason, order.total_cents, now, status="pending")
        outcome.refund_ids.append(refund_id)
        enqueue_mail(session, LATE_PAYMENT_REFUNDED_MAIL, order.id, now)
        log.warning("order %s paid after its tickets were gone (%s); refunding", order.code, reason)
    return outcome


def _create_refund(
    session: Session,
    order: Order,
    reason: str,
    amount: int,
    now: dt.datetime,
    *,
    status: str,
    due_at: dt.datetime | None = None,
) -> uuid.UUID:
    refund_id = uuid.uuid4()
    session.execute(
        insert_unless_present(session.get_bind().dialect.name, Refund.__table__).values(
            id=refund_id,
            order_id=order.id,
            event_id=order.event_id,
            reason=reason,
            status=status,
            amount_cents=amount,
            donated_cents=0,
            currency=order.currency,
            due_at=due_at or now,
            attempt=0,
            created_at=now,
            decided_at=now if status != "awaiting_choice" else None,
        )
    )
    existing = session.execute(select(Refund.id).where(Refund.order_id == order.id)).scalar_one()
    return existing


def _apply_refund_objects(session: Session, event_type: str, obj: Mapping[str, Any], now: dt.datetime) -> None:
    """Follow what Stripe says about refunds it made; a late, stale event never undoes a later one."""
    if event_type == "charge.refunded":
        refunds = obj.get("refunds")
        items = refunds.get("data") if isinstance(refunds, Mapping) else None
        objects = [item for item in items or [] if isinstance(item, Mapping)]
    else:
        objects = [obj]
    for refund_obj in objects:
        ref, status = _text(refund_obj, "id"), refund_obj.get("status")
        if not ref:
            continue
        if status == "succeeded":
            session.execute(
                update(Refund)
                .where(Refund.provider_refund_ref == ref, Refund.status.in_(("pending", "sent")))
                .values(status="succeeded", completed_at=now, last_error=None)
                .execution_options(synchronize_session=False)
            )
        elif status in ("failed", "canceled"):
            reason = refund_obj.get("failure_reason")
            session.execute(
                update(Refund)
                .where(Refund.provider_refund_ref == ref, Refund.status.in_(("pending", "sent", "succeeded")))
                .values(status="failed", last_error=str(reason or status)[:200])
                .execution_options(synchronize_session=False)
            )
    if event_type == "charge.refunded" and obj.get("refunded") is True:
        _follow_refund_made_at_stripe(session, obj, now)


def _follow_refund_made_at_stripe(session: Session, charge: Mapping[str, Any], now: dt.datetime) -> None:
    """A charge refunded in full from Stripe's dashboard: the tickets must not stay valid.

    Money and tickets never disagree, whoever refunded. The order's tickets are voided
    and go back on sale, and the refund is recorded as made. (A partial refund at Stripe
    names no tickets, so it changes nothing here.)
    """
    payment_ref = _text(charge, "payment_intent")
    if not payment_ref:
        return
    order = session.execute(select(Order).where(Order.provider_ref == payment_ref)).scalar()
    if order is None or order.status != "paid":
        return
    claimed = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == "paid")
        .values(status="refunded", closed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        return
    _void_and_restock(session, order.id)
    refunds = charge.get("refunds")
    items = refunds.get("data") if isinstance(refunds, Mapping) else None
    first = next((item for item in items or [] if isinstance(item, Mapping)), {})
    refund_id = _create_refund(session, order, "provider_refund", order.total_cents, now, status="succeeded")
    session.execute(
        update(Refund)
        .where(Refund.id == refund_id)
        .values(completed_at=now, provider_refund_ref=_text(first, "id"))
        .execution_options(synchronize_session=False)
    )
    log.warning("order %s refunded at Stripe directly; its tickets are voided", order.code)


def _void_and_restock(session: Session, order_id: uuid.UUID) -> None:
    _void_tickets(session, order_ids=[order_id])
    lines = session.execute(select(OrderLine.ticket_type_id, OrderLine.quantity).where(OrderLine.order_id == order_id))
    for type_id, quantity in lines:
        session.execute(
            update(TicketType)
            .where(TicketType.id == type_id)
            .values(sold=TicketType.sold - quantity)
            .execution_options(synchronize_session=False)
        )


def send_refund(session: Session, refunder: Refunder, refund_id: uuid.UUID, now: dt.datetime) -> str:
    """Ask the provider to pay one refund back; returns the refund's status afterwards.

    The provider call happens outside any transaction. Its idempotency key is the refund
    id and attempt, so a call repeated after a timeout finds the refund already made.
    """
    refund = session.get(Refund, refund_id, populate_existing=True)
    if refund is None or refund.status != "pending":
        session.rollback()
        return refund.status if refund else "missing"
    order = refund.order
    payment_ref, amount, key = order.provider_ref, refund.amount_cents, f"guichet-refund-{refund.id}-{refund.attempt}"
    session.rollback()
    if amount == 0:
        result = RefundResult("", "succeeded")
    elif not payment_ref:
        result = RefundResult("", "failed", "no_payment_reference")
    else:
        try:
            result = refunder.refund(payment_ref, amount, key, str(order.id))
        except PaymentProviderError as error:
            _record_refund(session, refund_id, "pending", None, error.message[:200], now)
            log.warning("refund %s for order %s not sent yet: provider did not answer", refund_id, order.code)
            return "pending"
    status = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed"}.get(result.status, "sent")
    _record_refund(session, refund_id, status, result.provider_ref or None, result.failure, now)
    log.info("refund %s for order %s: %s", refund_id, order.code, status)
    return status


def _record_refund(
    session: Session, refund_id: uuid.UUID, status: str, ref: str | None, error: str | None, now: dt.datetime
) -> None:
    begin_write(session)
    values: dict[str, Any] = {"status": status, "last_error": error}
    if ref:
        values["provider_refund_ref"] = ref
    if status == "succeeded":
        values["completed_at"] = now
    session.execute(
        update(Refund)
        .where(Refund.id == refund_id, Refund.status == "pending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _void_tickets(
    session: Session, order_ids: Sequence[uuid.UUID] | None = None, event_id: uuid.UUID | None = None
) -> int:
    query = update(Ticket).where(Ticket.status == "valid")
    if order_ids is not None:
        query = query.where(Ticket.order_id.in_(order_ids))
    if event_id is not None:
        query = query.where(Ticket.event_id == event_id)
    return session.execute(query.values(status="voided").execution_options(synchronize_session=False)).rowcount


@dataclass(frozen=True)
class Cancellation:
    event: Event
    refund_ids: list[uuid.UUID]


def cancel_event(
    session: Session, organizer: Organizer, event_id: str, now: dt.datetime, choice_days: int
) -> Cancellation:
    """Cancel an event: void its tickets, close unpaid orders, owe every paid order its money.

    Buyers then have ``choice_days`` to choose a refund or a donation (each is mailed the
    link, queued here); ``process-refunds`` refunds those who did not answer.
    """
    begin_write(session)
    event = session.get(Event, parse_uuid(event_id, _("No such event.")))
    if event is None or event.organizer_id != organizer.id:
        session.rollback()
        raise NotFound(_("No such event."))
    if event.status == "cancelled":
        session.rollback()
        raise Conflict(_("This event is already cancelled."), code="event_cancelled")
    event.status = "cancelled"
    event.updated_at = now
    session.execute(
        update(Order)
        .where(Order.event_id == event.id, Order.status == "pending")
        .values(status="cancelled", closed_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(TicketType)
        .where(TicketType.event_id == event.id)
        .values(reserved=0)
        .execution_options(synchronize_session=False)
    )
    voided = _void_tickets(session, event_id=event.id)
    paid = (
        session.execute(select(Order).where(Order.event_id == event.id, Order.status == "paid", Order.total_cents > 0))
        .scalars()
        .all()
    )
    due = now + dt.timedelta(days=choice_days)
    refund_ids = [
        _create_refund(session, order, "event_cancelled", 0, now, status="awaiting_choice", due_at=due)
        for order in paid
    ]
    for refund_id in refund_ids:
        enqueue_mail(session, EVENT_CANCELLED_MAIL, refund_id, now)
    session.commit()
    log.info("event %s cancelled: %d tickets voided, %d orders to refund or donate", event.id, voided, len(refund_ids))
    return Cancellation(event, refund_ids)


def decide_refund(session: Session, refund_id: uuid.UUID, choice: str, now: dt.datetime) -> Refund:
    """The buyer's answer to a cancellation: refund, or give the price (and the fee) instead."""
    if choice not in CHOICES:
        raise Invalid(_("Choose a refund or a donation."), errors={"choice": _("Choose a refund or a donation.")})
    begin_write(session)
    refund = session.get(Refund, refund_id, populate_existing=True)
    if refund is None:
        session.rollback()
        raise NotFound(_("This link is not valid."))
    if refund.status != "awaiting_choice":
        session.rollback()
        raise Conflict(_("The choice for this order was already made."), code="already_decided")
    if now >= refund.due_at:
        session.rollback()
        raise Conflict(_("The time to choose is over; the order is refunded."), code="choice_closed")
    order = refund.order
    amount = {
        "refund": order.total_cents,
        "donate_price": order.fee_cents,
        "donate_all": 0,
    }[choice]
    _settle_refund(session, refund, order, amount, now)
    session.commit()
    log.info("order %s: buyer chose %s", order.code, choice)
    return refund


def _settle_refund(session: Session, refund: Refund, order: Order, amount: int, now: dt.datetime) -> None:
    refund.amount_cents = amount
    refund.donated_cents = order.total_cents - amount
    refund.status = "pending" if amount > 0 else "donated"
    refund.decided_at = now
    if amount == 0:
        refund.completed_at = now
    else:
        enqueue_mail(session, REFUND_CONFIRMED_MAIL, refund.id, now)
    order.status = "refunded" if amount == order.total_cents else "donated" if amount == 0 else "part_refunded"
    order.closed_at = now


def refund_due_choices(session: Session, now: dt.datetime) -> int:
    """Refund in full every cancelled order whose buyer did not choose in time."""
    begin_write(session)
    due = (
        session.execute(select(Refund).where(Refund.status == "awaiting_choice", Refund.due_at <= now)).scalars().all()
    )
    for refund in due:
        _settle_refund(session, refund, refund.order, refund.order.total_cents, now)
    session.commit()
    return len(due)


def refunds_to_send(session: Session) -> list[uuid.UUID]:
    """Refunds never sent, and failed ones still within their attempts (each retry a new key)."""
    begin_write(session)
    session.execute(
        update(Refund)
        .where(Refund.status == "failed", Refund.attempt < MAX_REFUND_ATTEMPTS - 1)
        .values(status="pending", attempt=Refund.attempt + 1)
        .execution_options(synchronize_session=False)
    )
    ids = list(
        session.execute(select(Refund.id).where(Refund.status == "pending").order_by(Refund.created_at)).scalars()
    )
    session.commit()
    return ids


def refund_cutoff(order: Order) -> dt.datetime | None:
    """Until when the buyer may ask for a refund: the strictest of the order's ticket types."""
    return order.refund_cutoff


def refund_refusal(order: Order, now: dt.datetime) -> GuichetError | None:
    """Why this order cannot be refunded at the buyer's request now, or None if it can.

    The refund page asks before it offers the button, and ``request_refund`` asks again
    in its transaction: a refused refund is never offered again.
    """
    cutoff = order.refund_cutoff
    if order.status != "paid":
        return Conflict(_("Only a paid order can be refunded."), code="not_refundable")
    if cutoff is None:
        return Forbidden(_("These tickets cannot be refunded."), code="not_refundable")
    if now > cutoff:
        return Conflict(_("The time for refunds on these tickets is over."), code="refund_closed")
    if any(ticket.checked_in_at is not None for ticket in order.tickets):
        return Conflict(_("A ticket of this order was already used."), code="ticket_used")
    return None


def request_refund(session: Session, order_id: uuid.UUID, now: dt.datetime) -> Refund:
    """A buyer's own refund, where the ticket types allow it, until their cut-off.

    The tickets are voided and go back on sale in the same transaction.
    """
    begin_write(session)
    order = session.get(Order, order_id, populate_existing=True)
    if order is None:
        session.rollback()
        raise NotFound(_("No such order."))
    refusal = refund_refusal(order, now)
    if refusal is not None:
        session.rollback()
        raise refusal
    claimed = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == "paid")
        .values(status="refunded", closed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        session.rollback()
        raise Conflict(_("Only a paid order can be refunded."), code="not_refundable")
    _void_and_restock(session, order.id)
    status = "pending" if order.total_cents > 0 else "succeeded"
    refund_id = _create_refund(session, order, "buyer_request", order.total_cents, now, status=status)
    if order.total_cents > 0:
        enqueue_mail(session, REFUND_CONFIRMED_MAIL, refund_id, now)
    session.commit()
    log.info("order %s refunded at the buyer's request", order.code)
    refund = session.get(Refund, refund_id)
    assert refund is not None
    return refund


def orders_to_reconcile(session: Session, provider: str, now: dt.datetime) -> list[tuple[uuid.UUID, str]]:
    """Orders whose hold is over without a final word from the provider."""
    rows = session.execute(
        select(Order.id, Order.payment_session_ref).where(
            Order.provider == provider,
            Order.status.in_(("pending", "expired")),
            Order.payment_session_ref.is_not(None),
            Order.hold_expires_at <= now,
            Order.created_at >= now - RECONCILE_WINDOW,
        )
    ).all()
    session.rollback()
    return [(order_id, ref) for order_id, ref in rows if ref]


def record_checkout_session(session: Session, order_id: uuid.UUID, session_ref: str) -> None:
    begin_write(session)
    session.execute(
        update(Order)
        .where(Order.id == order_id, Order.payment_session_ref.is_(None))
        .values(payment_session_ref=session_ref)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def event_refunds(session: Session, organizer: Organizer, event_id: str) -> tuple[Event, list[tuple[Refund, str]]]:
    """Every refund of an organiser's event with its order code, failed ones first."""
    event = session.get(Event, parse_uuid(event_id, _("No such event.")))
    if event is None or event.organizer_id != organizer.id:
        raise NotFound(_("No such event."))
    rows = session.execute(
        select(Refund, Order.code).join(Order, Order.id == Refund.order_id).where(Refund.event_id == event.id)
    ).all()
    ordered = sorted(rows, key=lambda row: (row[0].status != "failed", row[0].created_at))
    return event, [(refund, code) for refund, code in ordered]
