"""Catalogue rules: who may see and change an event, and what is on sale when."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from ticketing.catalog.models import (
    DEFAULT_RETENTION_DAYS,
    EVENT_MODES,
    STREAM_ACCESS_MODES,
    STREAM_SCREEN_POLICIES,
    Event,
    Organizer,
    TicketType,
)
from ticketing.catalog.stream_url import stream_url_problem
from ticketing.crypto import hash_token, new_token
from ticketing.errors import Conflict, Invalid, NotFound, Unauthorized
from ticketing.forms import FieldParser, timezone_or_none
from ticketing.models import begin_write

CURRENCIES = ("EUR", "CHF", "GBP", "USD", "CAD", "JPY", "SEK", "NOK", "DKK", "PLN", "CZK")
MAX_CAPACITY = 1_000_000
# What one ticket costs its buyer, price and fee together, in minor units (100,000.00 in
# the event's currency): a line of MAX_PER_ORDER tickets stays far below the 2**31 - 1
# an integer column holds; checkout bounds the order's total across its lines.
MAX_PRICE_CENTS = 10_000_000
MAX_PER_ORDER = 50
DEFAULT_MAX_RETENTION_DAYS = 365
# Every instant an organiser sets (event times, sale windows, replay) lies within ten years
# of now, either side: far beyond any real sale, and far from the calendar's edge, where
# adding a retention period or a time zone overflows.
DATE_RANGE = dt.timedelta(days=3653)
EVENT_INSTANTS = ("starts_at", "ends_at", "doors_at", "stream_replay_until")
SALE_INSTANTS = ("sale_starts_at", "sale_ends_at")
STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class SaleState:
    """What a buyer can do with a ticket type right now, and why not."""

    state: str  # "open", "not_yet", "ended", "sold_out", "unavailable"
    available: int
    opens_at: dt.datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.state == "open"


class _OnSale(Protocol):
    sale_starts_at: dt.datetime | None
    sale_ends_at: dt.datetime | None

    @property
    def available(self) -> int: ...


class _EventWindow(Protocol):
    status: str
    ends_at: dt.datetime


@contextmanager
def _writing(session: Session) -> Iterator[None]:
    """The write transaction every change takes (``begin_write``: ``BEGIN IMMEDIATE`` on
    SQLite, so it waits for the write lock instead of failing on it); any error rolls it
    back, so a refused change gives the lock back at once. The body commits."""
    begin_write(session)
    try:
        yield
    except BaseException:
        session.rollback()
        raise


def sale_state(ticket_type: _OnSale, event: _EventWindow, now: dt.datetime) -> SaleState:
    """Works on ORM objects and on checkout's lighter views of them alike."""
    available = ticket_type.available
    if event.status != "published":
        return SaleState("unavailable", available)
    if ticket_type.sale_starts_at and now < ticket_type.sale_starts_at:
        return SaleState("not_yet", available, ticket_type.sale_starts_at)
    ends = ticket_type.sale_ends_at or event.ends_at
    if now >= ends:
        return SaleState("ended", available)
    if available <= 0:
        return SaleState("sold_out", 0)
    return SaleState("open", available)


@dataclass(frozen=True)
class Listing:
    """What the events list says of an event: what a ticket costs and what is left.

    Prices are what a buyer pays for one ticket, service fee included, over the types on
    sale (or all types when none is); ``left`` counts the tickets of the types on sale.
    """

    lowest_cents: int | None
    highest_cents: int | None
    left: int
    state: SaleState | None


def listing(event: Event, now: dt.datetime) -> Listing:
    states = [(ticket_type, sale_state(ticket_type, event, now)) for ticket_type in event.ticket_types]
    open_types = [(t, state) for t, state in states if state.is_open]
    priced = open_types or states
    prices = [t.price_cents + t.fee_cents for t, _state in priced]
    return Listing(
        lowest_cents=min(prices) if prices else None,
        highest_cents=max(prices) if prices else None,
        left=sum(state.available for _t, state in open_types),
        state=open_types[0][1] if open_types else (states[0][1] if states else None),
    )


def create_organizer(session: Session, name: str, now: dt.datetime) -> tuple[Organizer, str]:
    """Return the organiser and their API token; the token is shown once, only its hash kept."""
    name = name.strip()
    if not name or len(name) > 200:
        raise Invalid(
            _("An organiser needs a name of 1 to 200 characters."),
            errors={"name": _("An organiser needs a name of 1 to 200 characters.")},
        )
    token = new_token()
    with _writing(session):
        organizer = Organizer(name=name, api_token_hash=hash_token(token), created_at=now)
        session.add(organizer)
        session.commit()
    return organizer, token


def authenticate_organizer(session: Session, token: str | None) -> Organizer:
    if not token:
        raise Unauthorized(_("Send the organiser API token as 'Authorization: Bearer <token>'."))
    organizer = session.execute(select(Organizer).where(Organizer.api_token_hash == hash_token(token))).scalar()
    if organizer is None:
        raise Unauthorized(_("This API token is not valid."), code="invalid_token")
    return organizer


def list_upcoming_events(session: Session, now: dt.datetime) -> list[Event]:
    return list(
        session.execute(
            select(Event)
            .where(Event.status == "published", Event.ends_at > now)
            .options(selectinload(Event.ticket_types))
            .order_by(Event.starts_at)
        ).scalars()
    )


def list_organizer_events(session: Session, organizer: Organizer) -> list[Event]:
    return list(
        session.execute(
            select(Event)
            .where(Event.organizer_id == organizer.id)
            .options(selectinload(Event.ticket_types))
            .order_by(Event.starts_at)
        ).scalars()
    )


def parse_uuid(value: str, not_found: str | None = None) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(not_found or _("No such event.")) from None


def get_public_event(session: Session, event_id: str) -> Event:
    """Published and cancelled events are public; a draft is as if it did not exist."""
    event = session.execute(
        select(Event)
        .where(Event.id == parse_uuid(event_id), Event.status != "draft")
        .options(selectinload(Event.ticket_types))
        .execution_options(populate_existing=True)  # availability must be live, not cached
    ).scalar()
    if event is None:
        raise NotFound(_("No such event."))
    return event


def get_own_event(session: Session, organizer: Organizer, event_id: str) -> Event:
    """Another organiser's event answers 404, not 403: ids are not confirmed to strangers."""
    event = session.get(Event, parse_uuid(event_id))
    if event is None or event.organizer_id != organizer.id:
        raise NotFound(_("No such event."))
    return event


def _check_instants(fields: FieldParser, values: Mapping[str, Any], names: tuple[str, ...], now: dt.datetime) -> None:
    for name in names:
        value = values.get(name)
        if value is not None and not now - DATE_RANGE <= value <= now + DATE_RANGE:
            fields.fail(name, _("Must be within ten years of today."))


def _parse_event(
    payload: Mapping[str, Any],
    event: Event | None,
    now: dt.datetime,
    max_retention_days: int = DEFAULT_MAX_RETENTION_DAYS,
) -> dict[str, Any]:
    creating = event is None
    fields = FieldParser(payload)
    values: dict[str, Any] = {}
    # A reader runs only when creating or when the field is sent, so ``required=True``
    # below also refuses a PATCH that would blank a NOT NULL column (null or "").
    timezone_name = fields.text("timezone", max_length=64) or (event.timezone if event else "Europe/Paris")
    zone = timezone_or_none(timezone_name)
    if zone is None:
        fields.fail("timezone", _("Unknown time zone; use a name like Europe/Paris."))
        zone = timezone_or_none("UTC")
        assert zone is not None
    if fields.has("timezone") or creating:
        values["timezone"] = timezone_name
    readers = {
        "title": lambda: fields.text("title", required=True, max_length=200),
        "description": lambda: fields.text("description", max_length=10_000, multiline=True, default=""),
        "venue_name": lambda: fields.text("venue_name", max_length=200, default=""),
        "venue_address": lambda: fields.text("venue_address", max_length=500, multiline=True, default=""),
        "venue_city": lambda: fields.text("venue_city", max_length=100, default=""),
        "starts_at": lambda: fields.instant("starts_at", zone=zone, required=True),
        "ends_at": lambda: fields.instant("ends_at", zone=zone, required=True),
        "doors_at": lambda: fields.instant("doors_at", zone=zone),
        "mode": lambda: fields.choice("mode", EVENT_MODES, default="in_person"),
        "currency": lambda: fields.choice("currency", CURRENCIES, default="EUR"),
        "ask_name": lambda: fields.boolean("ask_name", default=False),
        "ask_postcode": lambda: fields.boolean("ask_postcode", default=False),
        "retention_days": lambda: fields.integer(
            "retention_days",
            minimum=0,
            maximum=max_retention_days,
            default=min(DEFAULT_RETENTION_DAYS, max_retention_days),
        ),
        **_stream_readers(fields, zone),
    }
    for name, read in readers.items():
        if creating or fields.has(name):
            values[name] = read()
    unknown = set(payload) - set(readers) - {"timezone"}
    for name in sorted(unknown):
        fields.fail(name, _("Unknown field."))
    _check_instants(fields, values, EVENT_INSTANTS, now)
    fields.finish()
    starts = values.get("starts_at") or (event.starts_at if event else None)
    ends = values.get("ends_at") or (event.ends_at if event else None)
    doors = values.get("doors_at") if "doors_at" in values else (event.doors_at if event else None)
    if starts and ends and ends <= starts:
        fields.fail("ends_at", _("The event must end after it starts."))
    if doors and starts and doors > starts:
        fields.fail("doors_at", _("Doors must open before the event starts."))
    fields.finish()
    return values


def _stream_readers(fields: FieldParser, zone: Any) -> dict[str, Any]:
    """The livestream settings an organiser may set; ``stream`` uses them to admit viewers."""

    def stream_url() -> str:
        value = fields.text("stream_url", max_length=500, default="") or ""
        problem = stream_url_problem(value) if value else None
        if problem:
            fields.fail("stream_url", problem)
        return value

    def stream_name() -> str | None:
        value = fields.text("stream_name", max_length=64)
        if value is not None and not STREAM_NAME.fullmatch(value):
            fields.fail("stream_name", _("Use 1 to 64 letters, digits, '-' or '_'."))
        return value

    return {
        "stream_url": stream_url,
        "stream_name": stream_name,
        "stream_access": lambda: fields.choice("stream_access", STREAM_ACCESS_MODES, default="gate"),
        "stream_max_screens": lambda: fields.integer("stream_max_screens", minimum=1, maximum=100, default=1),
        "stream_screen_policy": lambda: fields.choice(
            "stream_screen_policy", STREAM_SCREEN_POLICIES, default="newest_wins"
        ),
        "stream_replay_until": lambda: fields.instant("stream_replay_until", zone=zone),
    }


def _check_stream_name_free(
    session: Session, values: Mapping[str, Any], organizer_id: uuid.UUID, event: Event | None
) -> None:
    """Names are the organiser's own: another organiser's events are neither checked nor told about."""
    name = values.get("stream_name")
    if not name:
        return
    taken = session.execute(
        select(Event.id).where(Event.organizer_id == organizer_id, Event.stream_name == name)
    ).scalar()
    if taken is not None and (event is None or taken != event.id):
        raise Conflict(_("Another event already uses this stream name."), code="stream_name_taken")


def _commit_event(session: Session) -> None:
    """The unique stream name is checked first; a concurrent claim still ends as a 409."""
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(_("Another event already uses this stream name."), code="stream_name_taken") from None


def create_event(
    session: Session,
    organizer: Organizer,
    payload: Mapping[str, Any],
    now: dt.datetime,
    max_retention_days: int = DEFAULT_MAX_RETENTION_DAYS,
) -> Event:
    values = _parse_event(payload, None, now, max_retention_days)
    with _writing(session):
        _check_stream_name_free(session, values, organizer.id, None)
        event = Event(organizer_id=organizer.id, status="draft", created_at=now, updated_at=now, **values)
        session.add(event)
        _commit_event(session)
    return event


def update_event(
    session: Session,
    event: Event,
    payload: Mapping[str, Any],
    now: dt.datetime,
    max_retention_days: int = DEFAULT_MAX_RETENTION_DAYS,
) -> Event:
    """Change an event. ``retention_days`` may go down or up, never past the operator's
    maximum (``TICKETING_MAX_RETENTION_DAYS``)."""
    with _writing(session):
        session.refresh(event)
        values = _parse_event(payload, event, now, max_retention_days)
        if event.status == "cancelled":
            raise Conflict(_("A cancelled event cannot be changed."), code="event_cancelled")
        currency_changes = "currency" in values and values["currency"] != event.currency
        if currency_changes and _has_sold_or_held(session, event):
            raise Conflict(_("The currency cannot change once tickets are sold or held."), code="currency_locked")
        _check_stream_name_free(session, values, event.organizer_id, event)
        for name, value in values.items():
            setattr(event, name, value)
        event.updated_at = now
        _commit_event(session)
    return event


def _has_sold_or_held(session: Session, event: Event) -> bool:
    """Read in the write transaction: ticket types loaded before it may predate a sale."""
    taken = (TicketType.reserved > 0) | (TicketType.sold > 0)
    return bool(session.execute(select(exists().where(TicketType.event_id == event.id, taken))).scalar())


def publish_event(session: Session, event: Event, now: dt.datetime) -> Event:
    with _writing(session):
        session.refresh(event)
        if event.status == "cancelled":
            raise Conflict(_("A cancelled event cannot be published."), code="event_cancelled")
        if not event.ticket_types:
            raise Conflict(_("Add at least one ticket type before publishing."), code="no_ticket_types")
        if event.mode == "livestream" and not any(t.grants_stream for t in event.ticket_types):
            raise Conflict(_("A livestream needs a ticket type that grants the stream."), code="no_stream_ticket")
        event.status = "published"
        event.updated_at = now
        session.commit()
    return event


def _parse_ticket_type(
    payload: Mapping[str, Any], event: Event, ticket_type: TicketType | None, now: dt.datetime
) -> dict[str, Any]:
    creating = ticket_type is None
    fields = FieldParser(payload)
    zone = timezone_or_none(event.timezone) or timezone_or_none("UTC")
    assert zone is not None
    readers = {
        "name": lambda: fields.text("name", required=True, max_length=100),
        "price_cents": lambda: fields.integer("price_cents", required=True, maximum=MAX_PRICE_CENTS),
        "fee_cents": lambda: fields.integer("fee_cents", maximum=MAX_PRICE_CENTS, default=0),
        "capacity": lambda: fields.integer("capacity", required=True, maximum=MAX_CAPACITY),
        "sale_starts_at": lambda: fields.instant("sale_starts_at", zone=zone),
        "sale_ends_at": lambda: fields.instant("sale_ends_at", zone=zone),
        "max_per_order": lambda: fields.integer("max_per_order", minimum=1, maximum=MAX_PER_ORDER, default=10),
        "position": lambda: fields.integer("position", maximum=1000, default=0),
        "refundable_until_hours": lambda: fields.integer("refundable_until_hours", maximum=24 * 365),
    }
    values: dict[str, Any] = {}
    for name, read in readers.items():
        if creating or fields.has(name):
            values[name] = read()
    if creating or fields.has("grants"):
        grants = payload.get("grants", ["stream"] if event.mode == "livestream" else ["entry"])
        if not isinstance(grants, list) or not grants or any(g not in ("entry", "stream") for g in grants):
            fields.fail("grants", _('Must be a list holding "entry", "stream" or both.'))
        else:
            values["grants_entry"] = "entry" in grants
            values["grants_stream"] = "stream" in grants
    for name in sorted(set(payload) - set(readers) - {"grants"}):
        fields.fail(name, _("Unknown field."))
    _check_instants(fields, values, SALE_INSTANTS, now)
    fields.finish()
    price = values.get("price_cents", ticket_type.price_cents if ticket_type else 0)
    fee = values.get("fee_cents", ticket_type.fee_cents if ticket_type else 0)
    if price + fee > MAX_PRICE_CENTS:
        fields.fail(
            "fee_cents" if "fee_cents" in values else "price_cents",
            _("price_cents and fee_cents together must be at most %(n)d.", n=MAX_PRICE_CENTS),
        )
    starts = (
        values.get("sale_starts_at") if "sale_starts_at" in values else (ticket_type and ticket_type.sale_starts_at)
    )
    ends = values.get("sale_ends_at") if "sale_ends_at" in values else (ticket_type and ticket_type.sale_ends_at)
    if starts and ends and ends <= starts:
        fields.fail("sale_ends_at", _("Sales must end after they start."))
    fields.finish()
    return values


def add_ticket_type(session: Session, event: Event, payload: Mapping[str, Any], now: dt.datetime) -> TicketType:
    with _writing(session):
        session.refresh(event)
        if event.status == "cancelled":
            raise Conflict(_("A cancelled event cannot be changed."), code="event_cancelled")
        values = _parse_ticket_type(payload, event, None, now)
        ticket_type = TicketType(event_id=event.id, created_at=now, **values)
        session.add(ticket_type)
        event.updated_at = now
        session.commit()
    return ticket_type


def get_own_ticket_type(session: Session, event: Event, ticket_type_id: str) -> TicketType:
    ticket_type = session.get(TicketType, parse_uuid(ticket_type_id, _("No such ticket type.")))
    if ticket_type is None or ticket_type.event_id != event.id:
        raise NotFound(_("No such ticket type."))
    return ticket_type


def update_ticket_type(
    session: Session, event: Event, ticket_type: TicketType, payload: Mapping[str, Any], now: dt.datetime
) -> TicketType:
    """Prices may change (orders keep what they were shown); capacity never drops below
    what is already sold or held."""
    with _writing(session):
        session.refresh(event)
        session.refresh(ticket_type)
        if event.status == "cancelled":
            raise Conflict(_("A cancelled event cannot be changed."), code="event_cancelled")
        values = _parse_ticket_type(payload, event, ticket_type, now)
        capacity = values.pop("capacity", None)
        if capacity is not None:
            # Conditional, like a hold: the write lock keeps purchases out until the commit,
            # and the WHERE holds on PostgreSQL, where a purchase may commit meanwhile.
            changed = session.execute(
                update(TicketType)
                .where(TicketType.id == ticket_type.id, TicketType.reserved + TicketType.sold <= capacity)
                .values(capacity=capacity)
            ).rowcount
            if changed == 0:
                session.rollback()
                session.refresh(ticket_type)
                taken = ticket_type.reserved + ticket_type.sold
                raise Conflict(
                    ngettext(
                        "Capacity cannot go below the %(num)d ticket already sold or held.",
                        "Capacity cannot go below the %(num)d tickets already sold or held.",
                        taken,
                    ),
                    code="capacity_below_sold",
                )
        for name, value in values.items():
            setattr(ticket_type, name, value)
        event.updated_at = now
        session.commit()
    session.refresh(ticket_type)
    return ticket_type
