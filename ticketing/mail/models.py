"""The mail outbox table: one row per mail decided and not yet sent.

A row names what the mail is about (``kind`` and the id of an order or refund), never
whom it goes to: the address is read from the vault at the moment of sending, so an
erasure between the two leaves nothing to send and nothing to leak.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ticketing.models import Base, UTCDateTime, new_id


class QueuedMail(Base):
    __tablename__ = "mail_queue"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Workers look for due rows by this column alone (see ``mail.queue.DUE``).
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    # Set by the deliverer that claimed the row; a crashed one's claim lapses at this time.
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # An exception class name, never its message (which could quote an address).
    last_error: Mapped[str | None] = mapped_column(String(64))
