"""What checkout tells the vault about a person: their orders and tickets.

Checkout comes after privacy in the dependency order, so the vault never imports this;
``create_app`` registers ``OrderLinks`` in ``app.extensions["guichet.person_links"]``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from ticketing.catalog.models import Event
from ticketing.checkout.models import Order, OrderLine, Ticket
from ticketing.checkout.orders import CODE_PATTERN
from ticketing.crypto import tokens_match
from ticketing.privacy.person_links import OrderOwner, PersonLinks
from ticketing.web import api_time


class OrderLinks(PersonLinks):
    def export(self, session: Session, person_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
        orders = session.execute(
            select(Order)
            .where(Order.person_id == person_id)
            .options(
                selectinload(Order.event),
                selectinload(Order.lines).selectinload(OrderLine.ticket_type),
                selectinload(Order.tickets).selectinload(Ticket.ticket_type),
            )
            .order_by(Order.created_at)
        ).scalars()
        exported_orders: list[dict[str, Any]] = []
        tickets: list[dict[str, Any]] = []
        for order in orders:
            exported_orders.append(
                {
                    "code": order.code,
                    "event": {"id": str(order.event_id), "title": order.event.title},
                    "status": order.status,
                    "currency": order.currency,
                    "subtotal_cents": order.subtotal_cents,
                    "fee_cents": order.fee_cents,
                    "total_cents": order.total_cents,
                    "created_at": api_time(order.created_at),
                    "paid_at": api_time(order.paid_at),
                    "lines": [
                        {
                            "name": line.ticket_type.name,
                            "quantity": line.quantity,
                            "unit_price_cents": line.unit_price_cents,
                        }
                        for line in order.lines
                    ],
                }
            )
            tickets.extend(
                {
                    "id": str(ticket.id),
                    "order_code": order.code,
                    "name": ticket.ticket_type.name,
                    "status": ticket.status,
                    "checked_in_at": api_time(ticket.checked_in_at),
                }
                for ticket in order.tickets
            )
        return {"orders": exported_orders, "tickets": tickets}

    def unlink(self, session: Session, person_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        rows = session.execute(select(Order.person_id, Order.id).where(Order.person_id.in_(person_ids))).all()
        session.execute(
            update(Order)
            .where(Order.person_id.in_(person_ids))
            .values(person_id=None)
            .execution_options(synchronize_session=False)
        )
        linked: dict[uuid.UUID, list[uuid.UUID]] = {}
        for person_id, order_id in rows:
            linked.setdefault(person_id, []).append(order_id)
        return linked

    def retention_ends(self, session: Session, person_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dt.datetime | None]:
        """When each person's order stops needing them: its event's end plus its retention
        (whatever the order's status: an unpaid order for a coming event may still be paid).
        None when that date is past the calendar's end (an event stored before dates were
        bounded at input)."""
        rows = session.execute(
            select(Order.person_id, Event.ends_at, Event.retention_days)
            .join(Event, Event.id == Order.event_id)
            .where(Order.person_id.in_(person_ids))
        ).all()
        ends: dict[uuid.UUID, dt.datetime | None] = {}
        for person_id, ends_at, retention_days in rows:
            try:
                until: dt.datetime | None = ends_at + dt.timedelta(days=retention_days)
            except OverflowError:
                until = None
            known = ends.get(person_id, until)
            ends[person_id] = None if until is None or known is None else max(until, known)
        return ends

    def order_owner(self, session: Session, code: str, access_token: str) -> OrderOwner | None:
        """The same check as ``find_order``, without loading lines and tickets."""
        code = code.strip().upper()
        if not CODE_PATTERN.fullmatch(code) or not access_token:
            return None
        row = session.execute(
            select(Order.id, Order.code, Order.person_id, Order.access_token_hash).where(Order.code == code)
        ).first()
        if row is None or not tokens_match(access_token, row.access_token_hash):
            return None
        return OrderOwner(order_id=row.id, order_code=row.code, person_id=row.person_id)
