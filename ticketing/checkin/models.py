"""Door devices and the scan log. No personal data: a scan names a ticket, a device, a gate."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from ticketing.models import Base, UTCDateTime, new_id, utcnow

SCAN_RESULTS = ("admitted", "already_used", "voided", "wrong_event", "not_paid", "invalid", "unknown_ticket")


class Device(Base):
    """A phone or handheld paired for some events. Only hashes of its secrets are kept.

    ``event_ids`` is a JSON list rather than a join table: every scan reads it with the
    device, and one row keeps the scan at one statement for authentication.
    """

    __tablename__ = "checkin_device"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    organizer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizer.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    event_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    pairing_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    pairing_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    paired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def state(self) -> str:
        if self.revoked_at:
            return "revoked"
        return "paired" if self.paired_at else "waiting_for_pairing"


class Scan(Base):
    """One answer given at a door (or decided offline and uploaded later).

    At most one ``admitted`` scan per ticket (partial unique index): a second line of
    defence behind the conditional UPDATE on ``ticket.checked_in_at``. ``(device_id,
    request_id)`` is unique so a retried request is logged once.
    """

    __tablename__ = "checkin_scan"
    __table_args__ = (
        CheckConstraint(f"result IN {SCAN_RESULTS!r}", name="result"),
        Index("uq_checkin_scan_device_request", "device_id", "request_id", unique=True),
        Index(
            "uq_checkin_scan_admitted_ticket",
            "ticket_id",
            unique=True,
            sqlite_where=text("result = 'admitted'"),
            postgresql_where=text("result = 'admitted'"),
        ),
        Index("ix_checkin_scan_event_result", "event_id", "result"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    ticket_type_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("checkin_device.id"))
    gate: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str | None] = mapped_column(String(64))
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    scanned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
