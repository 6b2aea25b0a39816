"""Organisers, events and ticket types. No personal data lives here."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.models import Base, UTCDateTime, new_id, utcnow

EVENT_MODES = ("in_person", "livestream", "hybrid")
EVENT_STATUSES = ("draft", "published", "cancelled")
DEFAULT_RETENTION_DAYS = 30
STREAM_SCREEN_POLICIES = ("newest_wins", "refuse_new")
STREAM_ACCESS_MODES = ("gate", "signed_url")


class Organizer(Base):
    """Who sells, and who holds the buyers' data (the data controller).

    The settings below are published on every event page, order page, mail and the privacy
    page (a buyer must see who sells and who holds their data), so they are plain columns,
    not vault records: they are an organisation's public details, not a buyer's data.
    """

    __tablename__ = "organizer"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # The public name, shown to buyers.
    name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str] = mapped_column(String(254), default="", server_default="")
    legal_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    postal_address: Mapped[str] = mapped_column(String(500), default="", server_default="")
    support_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Every staff member must log in with a second factor (read by the back office).
    require_staff_totp: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def controller_name(self) -> str:
        """Who holds the buyers' data: the legal name, or the public name until one is set."""
        return self.legal_name or self.name


class ApiToken(Base):
    """An organiser's API token: only its hash is kept; revoked tokens stay listed.

    Every organiser-authenticated API route accepts any live token of the organiser
    (``catalog.services.authenticate_organizer``).
    """

    __tablename__ = "api_token"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    organizer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizer.id"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Marked at most once an hour (``LAST_USED_PRECISION``): a day is what an owner asks.
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None


class Event(Base):
    __tablename__ = "event"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint(f"mode IN {EVENT_MODES!r}", name="mode"),
        CheckConstraint(f"status IN {EVENT_STATUSES!r}", name="status"),
        CheckConstraint("retention_days >= 0", name="retention_days"),
        CheckConstraint("stream_max_screens BETWEEN 1 AND 100", name="stream_max_screens"),
        CheckConstraint(f"stream_screen_policy IN {STREAM_SCREEN_POLICIES!r}", name="stream_screen_policy"),
        CheckConstraint(f"stream_access IN {STREAM_ACCESS_MODES!r}", name="stream_access"),
        # The streaming server of one organiser knows each of its streams by name; two
        # organisers may use the same name (and a 409 tells nobody about another's).
        UniqueConstraint("organizer_id", "stream_name", name="uq_event_organizer_stream_name"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    organizer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizer.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    venue_name: Mapped[str] = mapped_column(String(200), default="")
    venue_address: Mapped[str] = mapped_column(String(500), default="")
    # The town the events list shows beside the date; the address says the rest.
    venue_city: Mapped[str] = mapped_column(String(100), default="", server_default="")
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    doors_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris")
    mode: Mapped[str] = mapped_column(String(16), default="in_person")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    ask_name: Mapped[bool] = mapped_column(Boolean, default=False)
    ask_postcode: Mapped[bool] = mapped_column(Boolean, default=False)
    # Days after the event ends before its buyers' personal data is erased (privacy.retention).
    retention_days: Mapped[int] = mapped_column(Integer, default=DEFAULT_RETENTION_DAYS, server_default="30")
    # Livestream settings (see ticketing/stream): where the player points, which stream
    # name the streaming server uses for this event, how many screens a ticket allows.
    stream_url: Mapped[str] = mapped_column(String(500), default="")
    stream_name: Mapped[str | None] = mapped_column(String(64))
    stream_access: Mapped[str] = mapped_column(String(16), default="gate")
    stream_max_screens: Mapped[int] = mapped_column(Integer, default=1)
    stream_screen_policy: Mapped[str] = mapped_column(String(16), default="newest_wins")
    stream_replay_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    stream_publisher_key_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    organizer: Mapped[Organizer] = relationship()
    ticket_types: Mapped[list[TicketType]] = relationship(
        back_populates="event", order_by="TicketType.position, TicketType.created_at"
    )

    @property
    def is_published(self) -> bool:
        return self.status == "published"

    @property
    def retention_ends_at(self) -> dt.datetime:
        return self.ends_at + dt.timedelta(days=self.retention_days)


class TicketType(Base):
    """Capacity is enforced on ``reserved + sold``; see ``checkout.stock``."""

    __tablename__ = "ticket_type"
    __table_args__ = (
        CheckConstraint("price_cents >= 0", name="price"),
        CheckConstraint("fee_cents >= 0", name="fee"),
        CheckConstraint("capacity >= 0", name="capacity"),
        CheckConstraint("reserved >= 0 AND sold >= 0", name="counters"),
        CheckConstraint("reserved + sold <= capacity", name="not_oversold"),
        CheckConstraint("max_per_order >= 1", name="max_per_order"),
        CheckConstraint("grants_entry OR grants_stream", name="grants"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("event.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    price_cents: Mapped[int] = mapped_column(Integer, default=0)
    fee_cents: Mapped[int] = mapped_column(Integer, default=0)
    capacity: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    sold: Mapped[int] = mapped_column(Integer, default=0)
    sale_starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sale_ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    max_per_order: Mapped[int] = mapped_column(Integer, default=10)
    grants_entry: Mapped[bool] = mapped_column(Boolean, default=True)
    grants_stream: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # Hours before the event until which a buyer may ask for a refund; None: no refunds.
    refundable_until_hours: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    event: Mapped[Event] = relationship(back_populates="ticket_types")

    # Tickets in ``reserved`` whose hold has expired but was not given back yet; set by
    # ``catalog.signals.show_live_availability`` before availability is shown.
    stale_held = 0

    @property
    def available(self) -> int:
        return max(0, self.capacity - self.reserved - self.sold + self.stale_held)

    @property
    def held(self) -> int:
        """Tickets held by unpaid orders whose hold is still running."""
        return max(0, self.reserved - self.stale_held)

    @property
    def grants(self) -> list[str]:
        return [name for name, on in (("entry", self.grants_entry), ("stream", self.grants_stream)) if on]


class Poster(Base):
    """An event's poster: its alternative text and the version its image URLs carry.

    A new upload takes a new version, so every URL names bytes that never change and can
    be cached for a year; the old version's URLs answer 404.
    """

    __tablename__ = "poster"

    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[str] = mapped_column(String(16))
    alt: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PosterImage(Base):
    """One width of a poster, as a JPEG re-encoded by Guichet: no metadata survives it.

    Kept in the database like everything else, so that every app host serves it.
    """

    __tablename__ = "poster_image"
    __table_args__ = (CheckConstraint("width > 0 AND height > 0", name="size"),)

    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("poster.event_id", ondelete="CASCADE"), primary_key=True)
    width: Mapped[int] = mapped_column(Integer, primary_key=True)
    height: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
