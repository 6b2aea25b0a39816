"""Public keys that sign tickets, kept published after they stop signing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ticketing.models import Base, UTCDateTime, utcnow


class PublishedKey(Base):
    """A retired ticket signing key's public half.

    The current key comes from the configuration and is always published; this table
    holds the ones ``flask rotate-signing-key`` retired, so tickets mailed before a
    rotation keep scanning (online and in offline bundles) until ``expires_at``, if set.
    Public keys only: nothing here is secret.
    """

    __tablename__ = "published_key"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64))  # base64url, 32 raw bytes
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
