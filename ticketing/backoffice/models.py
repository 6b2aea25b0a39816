"""Staff accounts and their one-time links. No personal data lives here: a staff member's
email and display name are a vault record (``person_id``, kind ``staff``)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ticketing.models import Base, UTCDateTime, new_id, utcnow

ROLES = ("owner", "manager", "door")
STAFF_STATUSES = ("invited", "active", "removed")
# "invite" sets the first password (an invitation, the first owner, the demo's owner);
# "reset" replaces a forgotten one.
LINK_PURPOSES = ("invite", "reset")


class StaffMember(Base):
    """One person's access to one organiser's back office, with a role.

    ``session_version`` is copied into the login session; raising it (a password change,
    a removal) ends every session opened before.
    """

    __tablename__ = "staff_member"
    __table_args__ = (
        CheckConstraint(f"role IN {ROLES!r}", name="role"),
        CheckConstraint(f"status IN {STAFF_STATUSES!r}", name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    organizer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizer.id"), index=True)
    # The vault record (email, display name); None once the account is removed and erased.
    person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("person.id"), unique=True)
    role: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(8), default="invited")
    # argon2id (argon2-cffi); None until the invitation is accepted.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    # The TOTP seed, sealed under the person's data key (``vault.seal_for_person``).
    totp_secret_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The last 30-second step a code was accepted for: a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def has_totp(self) -> bool:
        return self.totp_secret_ct is not None


class StaffLink(Base):
    """An emailed (or printed) one-time link: only the token's hash, an expiry, a use."""

    __tablename__ = "staff_link"
    __table_args__ = (CheckConstraint(f"purpose IN {LINK_PURPOSES!r}", name="purpose"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_member.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
