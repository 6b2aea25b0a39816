"""What payments remember: provider events already handled, and refunds owed.

Neither table holds personal data: events are kept by id and type only (never the
payload, which names the buyer's email at Stripe), refunds by order and amount.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.checkout.models import Order
from ticketing.models import Base, UTCDateTime, new_id, utcnow

# awaiting_choice: event cancelled, the buyer may still choose refund or donation.
# pending: to be sent to the provider; sent: the provider has it and has not finished;
# failed: the provider said no (retried by process-refunds); donated: nothing to send.
REFUND_STATUSES = ("awaiting_choice", "pending", "sent", "succeeded", "failed", "donated")
# provider_refund: made at the provider directly (Stripe dashboard); Guichet followed it.
REFUND_REASONS = ("event_cancelled", "buyer_request", "hold_expired", "order_cancelled", "provider_refund")


class PaymentEvent(Base):
    """One row per provider event handled; its primary key makes redelivery a no-op."""

    __tablename__ = "payment_event"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Refund(Base):
    """Money owed back on one order; at most one per order.

    ``donated_cents`` is what the buyer gave to the organiser instead (solidarity ticket);
    ``amount_cents`` is what goes back to them. ``attempt`` enters the idempotency key: a
    retry after a network error reuses it (Stripe answers with the refund it made), a retry
    after a refund Stripe marked failed takes the next one.
    """

    __tablename__ = "refund"
    __table_args__ = (
        CheckConstraint(f"status IN {REFUND_STATUSES!r}", name="status"),
        CheckConstraint(f"reason IN {REFUND_REASONS!r}", name="reason"),
        CheckConstraint("amount_cents >= 0 AND donated_cents >= 0", name="amounts"),
        Index("ix_refund_status_due", "status", "due_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), unique=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("event.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    amount_cents: Mapped[int] = mapped_column(Integer, default=0)
    donated_cents: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    provider_refund_ref: Mapped[str | None] = mapped_column(String(255), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    order: Mapped[Order] = relationship()
