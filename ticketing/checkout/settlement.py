"""Paying an order, and closing one that will not be paid.

Every path that pays (a webhook, reconciliation, the demo page) goes through
``settle_loaded_order``, which issues the tickets and queues their mail in the payment's
own transaction: a payment owes the buyer exactly one mail, and a payment rolled back
owes none.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ticketing.checkout import stock
from ticketing.checkout.models import Order, OrderLine, Ticket
from ticketing.errors import Conflict, NotFound
from ticketing.mail.queue import enqueue_mail
from ticketing.models import begin_write, new_id

log = logging.getLogger(__name__)

# Statuses of an order that was paid once (refunds and donations come after payment).
PAID_STATUSES = ("paid", "refunded", "part_refunded", "donated")
# The mail kind (see ticketing/mail/queue.py) owed by paying an order: its tickets.
ORDER_PAID_MAIL = "order_paid"

ORDER = Order.__table__
TICKET = Ticket.__table__
# Paying claims the order only in the status it was read in: a concurrent payment or
# release makes this match nothing, and the caller reads again.
CLAIM_PAYMENT = (
    update(ORDER)
    .where(ORDER.c.id == bindparam("order_id"), ORDER.c.status == bindparam("seen_status"))
    .values(status="paid", paid_at=bindparam("now"), closed_at=None, provider_ref=bindparam("ref"))
)


class HoldExpired(Conflict):
    code = "hold_expired"
    title = "Hold expired"


def issue_tickets(
    session: Session, order_id: uuid.UUID, event_id: uuid.UUID, wanted: dict[uuid.UUID, int], now: dt.datetime
) -> None:
    """Turn held tickets into sold ones and mint a random id for each ticket."""
    stock.sell_held(session, wanted)
    session.connection().execute(
        insert(TICKET),
        [
            {
                "id": new_id(),
                "order_id": order_id,
                "event_id": event_id,
                "ticket_type_id": t,
                "status": "valid",
                "checked_in_at": None,
                "created_at": now,
            }
            for t, q in wanted.items()
            for _ in range(q)
        ],
    )


def pay_order(session: Session, order_id: uuid.UUID, now: dt.datetime, provider_ref: str | None = None) -> Order:
    """Mark an order paid and issue its tickets; paying twice changes nothing.

    A pending order past its hold but not yet released still owns its held tickets. One
    whose hold was released gets its tickets only if they can be taken again from the
    stock; otherwise ``HoldExpired`` tells the provider to refund.
    """
    return settle_order(session, order_id, now, provider_ref).order


@dataclass(frozen=True)
class Settlement:
    order: Order
    newly_paid: bool  # this call paid it (and queued the tickets mail)


def settle_order(
    session: Session, order_id: uuid.UUID, now: dt.datetime, provider_ref: str | None = None
) -> Settlement:
    """``pay_order`` that also says whether this call did the paying.

    Webhooks arrive more than once, sometimes at the same moment; only the delivery that
    won the conditional UPDATE queues the buyer's mail.
    """
    for _attempt in range(3):
        begin_write(session)
        order = load_order_for_payment(session, order_id)
        if order is None:
            session.rollback()
            raise NotFound(_("No such order."))
        try:
            settlement = settle_loaded_order(session, order, now, provider_ref)
        except Conflict:
            session.rollback()
            raise
        if settlement is None:
            # Another process paid or released it between our read and our write: look again.
            session.rollback()
            continue
        if settlement.newly_paid:
            session.commit()
        else:
            session.rollback()
        return settlement
    raise Conflict(_("This order is changing right now; try again."), code="order_busy")


# One statement: an order has a few lines, so joining them beats a second round trip.
LOAD_FOR_PAYMENT = (
    select(Order)
    .where(Order.id == bindparam("order_id"))
    .options(joinedload(Order.lines).joinedload(OrderLine.ticket_type), joinedload(Order.event))
    .execution_options(populate_existing=True)
)


def load_order_for_payment(session: Session, order_id: uuid.UUID) -> Order | None:
    """The order with its lines, their types and its event, fresh from the database."""
    return session.execute(LOAD_FOR_PAYMENT, {"order_id": order_id}).unique().scalar_one_or_none()


def settle_loaded_order(
    session: Session, order: Order, now: dt.datetime, provider_ref: str | None = None
) -> Settlement | None:
    """Pay an order inside the caller's write transaction; the caller commits.

    Paying queues the tickets mail in the same transaction, so every path that pays
    (webhook, reconciliation, the demo page) owes the buyer exactly one mail, and a
    payment rolled back owes none. Returns None when another transaction changed the
    order between its read and this claim: the caller reads it again and retries.
    ``HoldExpired`` leaves the caller's transaction as it was (a savepoint undoes the
    stock taken).
    """
    if order.status in PAID_STATUSES:
        return Settlement(order, False)
    if order.status == "cancelled":
        raise Conflict(_("This order was cancelled."), code="order_cancelled")
    wanted = {line.ticket_type_id: line.quantity for line in order.lines}
    seen_status = order.status
    savepoint = session.begin_nested() if seen_status == "expired" else None
    if savepoint is not None and stock.hold(session, wanted):
        savepoint.rollback()
        raise HoldExpired(_("The hold on these tickets expired and they are no longer available."))
    ref = provider_ref or order.provider_ref
    claimed = (
        session.connection()
        .execute(CLAIM_PAYMENT, {"order_id": order.id, "seen_status": seen_status, "now": now, "ref": ref})
        .rowcount
    )
    if not claimed:
        if savepoint is not None:
            savepoint.rollback()
        return None
    if savepoint is not None:
        savepoint.commit()
    issue_tickets(session, order.id, order.event_id, wanted, now)
    enqueue_mail(session, ORDER_PAID_MAIL, order.id, now)
    for name, value in (("status", "paid"), ("paid_at", now), ("closed_at", None), ("provider_ref", ref)):
        set_committed_value(order, name, value)
    log.info("order %s paid", order.code)
    return Settlement(order, True)


def cancel_order(session: Session, order_id: uuid.UUID, now: dt.datetime) -> Order:
    """Cancel an unpaid order (the buyer gave up at the payment page) and free its hold."""
    begin_write(session)
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound(_("No such order."))
    if order.status == "paid":
        session.rollback()
        raise Conflict(_("This order is already paid."), code="order_paid")
    closed = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == "pending")
        .values(status="cancelled", closed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if closed:
        stock.give_back(session, order.id)
    session.commit()
    session.refresh(order)
    log.info("order %s cancelled before payment", order.code)
    return order


def expire_order(session: Session, order_id: uuid.UUID, now: dt.datetime) -> bool:
    """Give back the hold of an unpaid order whose payment session ended unpaid.

    Unlike ``cancel_order`` it leaves the order ``expired``: a payment that still arrives
    (events come out of order) takes the stock again like any late payment.
    """
    begin_write(session)
    closed = expire_order_in_transaction(session, order_id, now)
    session.commit()
    return closed


def expire_order_in_transaction(session: Session, order_id: uuid.UUID, now: dt.datetime) -> bool:
    closed = session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == "pending")
        .values(status="expired", closed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if closed:
        stock.give_back(session, order_id)
    return bool(closed)
