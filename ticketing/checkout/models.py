"""Orders, their lines, and the tickets a paid order issues.

An order names its buyer only through ``person_id`` (the vault); after erasure that link
is cut and what remains is what accounting needs: code, amounts, dates, references.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.catalog.models import Event, TicketType
from ticketing.models import Base, UTCDateTime, new_id, utcnow

# refunded / part_refunded / donated: a paid order whose tickets were voided after a
# refund (whole or part) or a solidarity donation; the amounts paid stay as they were.
ORDER_STATUSES = ("pending", "paid", "expired", "cancelled", "refunded", "part_refunded", "donated")
TICKET_STATUSES = ("valid", "voided")


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(f"status IN {ORDER_STATUSES!r}", name="status"),
        CheckConstraint("total_cents = subtotal_cents + fee_cents", name="total"),
        # Lazy hold release looks for this exact pair.
        Index("ix_orders_status_hold", "status", "hold_expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    access_token_hash: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("event.id"), index=True)
    # The buyer's record in the vault, this order's own (unique): see ``privacy.models.Person``.
    person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    locale: Mapped[str] = mapped_column(String(8), default="en")
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_cents: Mapped[int] = mapped_column(Integer)
    fee_cents: Mapped[int] = mapped_column(Integer)
    total_cents: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(16))
    provider_ref: Mapped[str | None] = mapped_column(String(255), index=True)
    # The provider's checkout session (Stripe ``cs_...``), asked again by reconcile-payments.
    payment_session_ref: Mapped[str | None] = mapped_column(String(255), index=True)
    hold_expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    event: Mapped[Event] = relationship()
    lines: Mapped[list[OrderLine]] = relationship(back_populates="order", order_by="OrderLine.id")
    tickets: Mapped[list[Ticket]] = relationship(back_populates="order", order_by="Ticket.created_at")

    @property
    def is_paid(self) -> bool:
        return self.status == "paid"

    @property
    def ticket_count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def refund_cutoff(self) -> dt.datetime | None:
        """Until when the buyer may ask for a refund: the strictest of the order's ticket
        types; None when one of them is not refundable."""
        hours = [line.ticket_type.refundable_until_hours for line in self.lines]
        if not hours or any(h is None for h in hours):
            return None
        return self.event.starts_at - dt.timedelta(hours=max(h for h in hours if h is not None))


class OrderLine(Base):
    """Prices are copied at order time: what the buyer was shown is what they pay."""

    __tablename__ = "order_line"
    __table_args__ = (CheckConstraint("quantity >= 1", name="quantity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    ticket_type_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ticket_type.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    unit_fee_cents: Mapped[int] = mapped_column(Integer)

    order: Mapped[Order] = relationship(back_populates="lines")
    ticket_type: Mapped[TicketType] = relationship()


class Ticket(Base):
    """A bearer credential: random id, type, state. Never anything about a person."""

    __tablename__ = "ticket"
    __table_args__ = (CheckConstraint(f"status IN {TICKET_STATUSES!r}", name="status"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("event.id"), index=True)
    ticket_type_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ticket_type.id"))
    status: Mapped[str] = mapped_column(String(16), default="valid")
    checked_in_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    order: Mapped[Order] = relationship(back_populates="tickets")
    ticket_type: Mapped[TicketType] = relationship()
