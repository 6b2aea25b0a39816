"""Viewer sessions: one row per screen watching a ticket's stream.

Nothing about the viewer is stored: the row names a ticket and holds the hash of a random
cookie value, and times. No address, no user agent.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ticketing.models import Base, UTCDateTime, new_id

END_REASONS = ("superseded", "closed")


class ViewerSession(Base):
    __tablename__ = "viewer_session"
    __table_args__ = (
        CheckConstraint(f"end_reason IS NULL OR end_reason IN {END_REASONS!r}", name="end_reason"),
        # Counting a ticket's live screens reads exactly this.
        Index("ix_viewer_session_ticket_live", "ticket_id", "ended_at", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    cookie_hash: Mapped[str] = mapped_column(String(64), unique=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(16))

    def is_live(self, now: dt.datetime) -> bool:
        return self.ended_at is None and self.expires_at > now
