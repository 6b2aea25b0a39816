"""The stock of each ticket type: held, sold and given back, never read-then-written.

Every change to ``reserved`` or ``sold`` is one conditional UPDATE, so that no
interleaving of requests on SQLite or PostgreSQL can sell more than the capacity (the
CHECK constraint ``reserved + sold <= capacity`` backs it).

A hold that expired still counts in ``reserved`` until a write gives it back: the order
path when it finds a type short, a payment that settles the order, or ``flask
expire-holds``. Reading availability never writes; it adds those stale holds back
(``stale_holds``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from ticketing.catalog.models import TicketType
from ticketing.checkout.models import Order, OrderLine
from ticketing.models import begin_write

log = logging.getLogger(__name__)

RELEASE_BATCH = 500

TICKET_TYPE = TicketType.__table__
HOLD = (
    update(TICKET_TYPE)
    .where(
        TICKET_TYPE.c.id == bindparam("type_id"),
        TICKET_TYPE.c.reserved + TICKET_TYPE.c.sold + bindparam("quantity") <= TICKET_TYPE.c.capacity,
    )
    .values(reserved=TICKET_TYPE.c.reserved + bindparam("quantity"))
)
SELL_HELD = (
    update(TICKET_TYPE)
    .where(TICKET_TYPE.c.id == bindparam("type_id"))
    .values(reserved=TICKET_TYPE.c.reserved - bindparam("quantity"), sold=TICKET_TYPE.c.sold + bindparam("quantity"))
)
GIVE_BACK = (
    update(TICKET_TYPE)
    .where(TICKET_TYPE.c.id == bindparam("type_id"))
    .values(reserved=TICKET_TYPE.c.reserved - bindparam("quantity"))
)


def hold(session: Session, wanted: Mapping[uuid.UUID, int]) -> list[uuid.UUID]:
    """Hold each type's quantity; returns the types that were short (nothing held of them).

    Types are taken in id order: on PostgreSQL each UPDATE locks its row until the
    commit, and two orders for the same types must not lock them in opposite orders.
    """
    connection = session.connection()
    return [
        type_id
        for type_id in sorted(wanted)
        if connection.execute(HOLD, {"type_id": type_id, "quantity": wanted[type_id]}).rowcount != 1
    ]


def sell_held(session: Session, wanted: Mapping[uuid.UUID, int]) -> None:
    session.connection().execute(SELL_HELD, [{"type_id": t, "quantity": wanted[t]} for t in sorted(wanted)])


def give_back(session: Session, order_id: uuid.UUID) -> None:
    """Return an order's held tickets to the stock (the caller has closed the order)."""
    lines = session.execute(
        select(OrderLine.ticket_type_id, OrderLine.quantity)
        .where(OrderLine.order_id == order_id)
        .order_by(OrderLine.ticket_type_id)
    ).all()
    if lines:
        session.connection().execute(GIVE_BACK, [{"type_id": t, "quantity": q} for t, q in lines])


def release_expired(session: Session, now: datetime, event_id: uuid.UUID | None = None) -> int:
    """Give expired holds back to the stock, inside the caller's write transaction.

    Each order is closed with a conditional UPDATE first, so two processes releasing the
    same hold cannot give its tickets back twice.
    """
    query = select(Order.id).where(Order.status == "pending", Order.hold_expires_at <= now)
    if event_id is not None:
        query = query.where(Order.event_id == event_id)
    order_ids = session.execute(query.limit(RELEASE_BATCH)).scalars().all()
    released = 0
    for order_id in order_ids:
        closed = session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == "pending")
            .values(status="expired", closed_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if closed:
            give_back(session, order_id)
            released += 1
    return released


def release_expired_holds(session: Session, now: datetime) -> int:
    """``flask expire-holds``: release every expired hold, a batch per transaction;
    returns how many orders."""
    total = 0
    while True:
        begin_write(session)
        released = release_expired(session, now)
        session.commit()
        total += released
        if released < RELEASE_BATCH:
            break
    if total:
        log.info("released %d expired holds", total)
    return total


def stale_holds(session: Session, event_ids: Sequence[uuid.UUID], now: datetime) -> dict[uuid.UUID, int]:
    """Per ticket type, the tickets still counted in ``reserved`` by holds that expired."""
    if not event_ids:
        return {}
    rows = session.execute(
        select(OrderLine.ticket_type_id, func.sum(OrderLine.quantity))
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.event_id.in_(event_ids), Order.status == "pending", Order.hold_expires_at <= now)
        .group_by(OrderLine.ticket_type_id)
    ).all()
    return {type_id: int(quantity) for type_id, quantity in rows}


def left_for_sale(session: Session, event_id: uuid.UUID, now: datetime) -> dict[uuid.UUID, int]:
    """What each type of an event has left, counting only live holds (for a sold-out answer)."""
    stale = stale_holds(session, [event_id], now)
    rows = session.execute(
        select(TicketType.id, TicketType.capacity - TicketType.reserved - TicketType.sold).where(
            TicketType.event_id == event_id
        )
    ).all()
    return {type_id: max(0, left + stale.get(type_id, 0)) for type_id, left in rows}
