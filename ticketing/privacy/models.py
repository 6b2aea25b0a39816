"""The personal-data vault: the only tables that hold anything about a person."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ticketing.models import Base, UTCDateTime, new_id, utcnow


class Person(Base):
    """A buyer, as ciphertexts. ``email_index`` is a keyed hash, never the address."""

    __tablename__ = "person"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    email_index: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    email_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    name_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    postcode_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None


class DataKey(Base):
    """A person's data key, wrapped. Deleting this row is what erasure means."""

    __tablename__ = "data_key"

    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    master_key_id: Mapped[str] = mapped_column(String(32), index=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
