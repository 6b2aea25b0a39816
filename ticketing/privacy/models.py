"""The personal-data vault: the only tables that hold anything about a person."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ticketing.models import Base, UTCDateTime, new_id, utcnow

PERSON_KINDS = ("buyer", "staff")


class Person(Base):
    """What one buyer gave for one order, as ciphertexts under a data key of its own.

    One record per order, never shared: an order's link opens its own record and nothing
    else, and placing an order cannot change what another order holds, even for the same
    address. ``email_index`` (a keyed hash, never the address) groups the records of one
    mailbox for whoever proves they control it (the emailed "my data" link).
    """

    __tablename__ = "person"
    __table_args__ = (CheckConstraint(f"kind IN {PERSON_KINDS!r}", name="kind"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    email_index: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    # Which blind-index key made ``email_index`` (a fingerprint, not the key): the rebuild
    # after a key rotation picks up the rows it has not done yet, so it can resume.
    index_key_id: Mapped[str | None] = mapped_column(String(16), index=True)
    email_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    name_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    postcode_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # A buyer's record (one per order) or a staff member's (the back office's login). The
    # two are indexed with different purposes (``crypto.index``), and every buyer's lookup
    # also asks for ``kind = 'buyer'``: "my data" and "find my orders" never reach staff.
    kind: Mapped[str] = mapped_column(String(8), default="buyer", server_default="buyer")

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


ERASURE_ROUTES = ("order_link", "email_link", "api_order_token", "api_email_token", "retention", "staff_removed")


class ErasureReceipt(Base):
    """Proof of one erasure: when, how it was asked for, how many orders it unlinked.

    It names nobody: an order erased by it finds it through ``ErasedOrder``, which is what
    we show when the same erasure is asked for again.
    """

    __tablename__ = "erasure_receipt"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    erased_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    route: Mapped[str] = mapped_column(String(32))
    orders_affected: Mapped[int] = mapped_column(Integer, default=0)


class ErasedOrder(Base):
    """Which receipt covers an order whose buyer was erased.

    An order's own link must still answer "already erased, here is your receipt"
    after ``orders.person_id`` is cut. The order id is deliberately not a foreign key:
    the vault comes before checkout and knows orders only as ids.
    """

    __tablename__ = "erased_order"

    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    receipt_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("erasure_receipt.id", ondelete="CASCADE"), index=True)


class UsedPrivacyToken(Base):
    """Hashes of emailed "my data" tokens already spent on an erasure (single use)."""

    __tablename__ = "used_privacy_token"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
