"""Catalogue rules: who may see and change an event, and what is on sale when."""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from ticketing.catalog.models import (
    DEFAULT_RETENTION_DAYS,
    ApiToken,
    Event,
    Organizer,
    TicketType,
)
from ticketing.crypto import hash_token, new_token
from ticketing.errors import Conflict, Invalid, NotFound, Unauthorized
from ticketing.forms import timezone_or_none
from ticketing.models import begin_write, utcnow
from ticketing.schema import Body, Email, Text, read

log = logging.getLogger(__name__)

CURRENCIES = ("EUR", "CHF", "GBP", "USD", "CAD", "JPY", "SEK", "NOK", "DKK", "PLN", "CZK")
MAX_CAPACITY = 1_000_000
MAX_PRICE_CENTS = 10_000_000
MAX_PER_ORDER = 50
DEFAULT_MAX_RETENTION_DAYS = 365
STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Every instant an organiser sets (event times, sale windows, replay) lies within ten years
# of now, either side: far beyond any real sale, and far from the calendar's edge, where
# adding a retention period or a time zone overflows.
DATE_RANGE = dt.timedelta(days=3653)
FIRST_TOKEN_LABEL = "First token"  # noqa: S105 - a label, not a secret
# How finely an API token's last use is kept: marking it costs a write, so at most one an hour.
LAST_USED_PRECISION = dt.timedelta(hours=1)
TOKENS_TO_MARK = "guichet_api_tokens_used"


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
    """Return the organiser and their first API token; the token is shown once, only its
    hash kept."""
    name = name.strip()
    if not name or len(name) > 200:
        raise Invalid(
            _("An organiser needs a name of 1 to 200 characters."),
            errors={"name": _("An organiser needs a name of 1 to 200 characters.")},
        )
    token = new_token()
    with _writing(session):
        organizer = Organizer(name=name, created_at=now)
        session.add(organizer)
        session.flush()
        session.add(
            ApiToken(organizer_id=organizer.id, label=FIRST_TOKEN_LABEL, token_hash=hash_token(token), created_at=now)
        )
        session.commit()
    return organizer, token


def authenticate_organizer(session: Session, token: str | None, now: dt.datetime | None = None) -> Organizer:
    """The organiser whose live API token this is (any of them); 401 otherwise.

    A token whose last use is older than ``LAST_USED_PRECISION`` is noted in the session
    and marked once the request is over (``mark_api_tokens_used``), in a transaction of its
    own: the mark never joins, or counts as, the request's unit of work, and most calls
    cost the one SELECT.
    """
    if not token:
        raise Unauthorized(_("Send the organiser API token as 'Authorization: Bearer <token>'."))
    row = session.execute(
        select(Organizer, ApiToken.id, ApiToken.last_used_at)
        .join(ApiToken, ApiToken.organizer_id == Organizer.id)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
    ).first()
    if row is None:
        raise Unauthorized(_("This API token is not valid."), code="invalid_token")
    organizer, token_id, last_used_at = row
    now = now or utcnow()
    if last_used_at is None or now - last_used_at >= LAST_USED_PRECISION:
        session.info.setdefault(TOKENS_TO_MARK, {})[token_id] = now
    return organizer


def mark_api_tokens_used(session: Session) -> None:
    """After a request: record when its API token was used, on a connection of its own.
    A failure (the database gone) only loses the mark, never the request's answer."""
    pending = session.info.pop(TOKENS_TO_MARK, None)
    if not pending:
        return
    try:
        with session.get_bind().begin() as connection:
            for token_id, now in pending.items():
                connection.execute(
                    update(ApiToken)
                    .where(ApiToken.id == token_id)
                    .where(ApiToken.last_used_at.is_(None) | (ApiToken.last_used_at <= now - LAST_USED_PRECISION))
                    .values(last_used_at=now)
                )
    except SQLAlchemyError as error:
        log.warning("API token last use not recorded: %s", type(error).__name__)


def organizer_id_for_token(session: Session, token_hash: str) -> uuid.UUID | None:
    """The organiser of a live API token, by the token's hash (for routes that also accept
    other kinds of token, like check-in stats)."""
    return session.execute(
        select(ApiToken.organizer_id).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
    ).scalar()


def list_api_tokens(session: Session, organizer_id: uuid.UUID) -> list[ApiToken]:
    """Live tokens first, newest first; revoked ones stay listed (when, and their label)."""
    return list(
        session.execute(
            select(ApiToken)
            .where(ApiToken.organizer_id == organizer_id)
            .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc())
        ).scalars()
    )


class _TokenLabel(Body):
    label = Text(max_length=100, required=True)


class OrganizerSettings(Body):
    """The organiser's public details (forms and commands alike)."""

    name = Text(max_length=200, required=True)
    contact_email = Email(blank="", load_default="")
    legal_name = Text(max_length=200, blank="", load_default="")
    postal_address = Text(max_length=500, multiline=True, blank="", load_default="")
    support_text = Text(max_length=2000, multiline=True, blank="", load_default="")


TOKEN_LABEL = _TokenLabel()
ORGANIZER_SETTINGS = OrganizerSettings()


def _token_label(label: str | None) -> str:
    return read(TOKEN_LABEL, {"label": label})["label"]


def create_api_token(session: Session, organizer_id: uuid.UUID, label: str, now: dt.datetime) -> tuple[ApiToken, str]:
    """A new token for the organiser; the token itself is returned once, only its hash kept."""
    label = _token_label(label)
    token = new_token()
    with _writing(session):
        api_token = ApiToken(organizer_id=organizer_id, label=label, token_hash=hash_token(token), created_at=now)
        session.add(api_token)
        session.commit()
    return api_token, token


def revoke_api_token(session: Session, organizer_id: uuid.UUID, token_id: str, now: dt.datetime) -> ApiToken:
    """Revoke one of the organiser's tokens (another organiser's answers 404)."""
    wanted = parse_uuid(token_id, _("No such API token."))
    with _writing(session):
        api_token = session.get(ApiToken, wanted)
        if api_token is None or api_token.organizer_id != organizer_id:
            raise NotFound(_("No such API token."))
        if api_token.revoked_at is None:
            api_token.revoked_at = now
        session.commit()
    return api_token


def replace_api_tokens(session: Session, organizer_id: uuid.UUID, label: str, now: dt.datetime) -> tuple[int, str]:
    """For a lost token: revoke every live token of the organiser and issue one new one.
    Returns how many were revoked, and the new token (shown once)."""
    label = _token_label(label)
    token = new_token()
    with _writing(session):
        revoked = session.execute(
            update(ApiToken)
            .where(ApiToken.organizer_id == organizer_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        session.add(ApiToken(organizer_id=organizer_id, label=label, token_hash=hash_token(token), created_at=now))
        session.commit()
    return revoked, token


def find_organizer(session: Session, id_or_name: str) -> Organizer:
    """An organiser named on the command line: by id, or by its exact name when only one has it."""
    try:
        found = session.get(Organizer, uuid.UUID(id_or_name))
    except ValueError:
        found = None
    if found is not None:
        return found
    matches = list(session.execute(select(Organizer).where(Organizer.name == id_or_name.strip()).limit(2)).scalars())
    if len(matches) != 1:
        raise NotFound(
            _("No organiser has this id or name.")
            if not matches
            else _("Several organisers have this name; use the id.")
        )
    return matches[0]


SETTINGS_FIELDS = ("name", "contact_email", "legal_name", "postal_address", "support_text")


def parse_organizer_settings(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The organiser's public details, with every problem at once."""
    return dict(read(ORGANIZER_SETTINGS, {name: payload.get(name) for name in SETTINGS_FIELDS}))


def update_organizer_settings(
    session: Session, organizer_id: uuid.UUID, payload: Mapping[str, Any], now: dt.datetime
) -> Organizer:
    values = parse_organizer_settings(payload)
    with _writing(session):
        organizer = session.get(Organizer, organizer_id, populate_existing=True)
        if organizer is None:
            raise NotFound(_("No such organiser."))
        for name, value in values.items():
            setattr(organizer, name, value)
        session.commit()
    return organizer


def set_staff_totp_requirement(session: Session, organizer_id: uuid.UUID, required: bool) -> Organizer:
    with _writing(session):
        organizer = session.get(Organizer, organizer_id, populate_existing=True)
        if organizer is None:
            raise NotFound(_("No such organiser."))
        organizer.require_staff_totp = required
        session.commit()
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


EVENT_INSTANTS = ("starts_at", "ends_at", "doors_at", "stream_replay_until")
TICKET_TYPE_INSTANTS = ("sale_starts_at", "sale_ends_at")


def _in_zone(
    values: dict[str, Any], names: Sequence[str], zone: ZoneInfo, now: dt.datetime, errors: dict[str, str]
) -> None:
    """Times sent without an offset are read in the event's time zone; every time must lie
    within ``DATE_RANGE`` of now."""
    for name in names:
        value = values.get(name)
        if value is None:
            continue
        if value.tzinfo is None:
            try:
                value = values[name] = value.replace(tzinfo=zone).astimezone(dt.UTC)
            except OverflowError:  # year 1 or 9999 shifted past the calendar's edge
                errors[name] = _("Must be a date and time like 2026-12-31T20:30:00+01:00.")
                continue
        if not now - DATE_RANGE <= value <= now + DATE_RANGE:
            errors[name] = _("Must be within ten years of today.")


def _event_values(
    values: Mapping[str, Any],
    event: Event | None,
    now: dt.datetime,
    max_retention_days: int = DEFAULT_MAX_RETENTION_DAYS,
) -> dict[str, Any]:
    """What the API read (``catalog.schemas.EventInput``: every field when creating, the
    fields sent when changing), completed with what needs the event or the configuration:
    the time zone of times sent without an offset, the retention maximum, and the rules
    between fields."""
    creating = event is None
    changes = dict(values)
    errors: dict[str, str] = {}
    if creating or "timezone" in changes:
        changes["timezone"] = changes.get("timezone") or (event.timezone if event else "Europe/Paris")
    zone = timezone_or_none(changes.get("timezone") or (event.timezone if event else "UTC")) or ZoneInfo("UTC")
    _in_zone(changes, EVENT_INSTANTS, zone, now, errors)
    if creating or "retention_days" in changes:
        days = changes.get("retention_days")
        if days is None:
            changes["retention_days"] = min(DEFAULT_RETENTION_DAYS, max_retention_days)
        elif days > max_retention_days:
            errors["retention_days"] = _("Must be between %(low)d and %(high)d.", low=0, high=max_retention_days)
    if errors:
        raise Invalid(_("Some fields need attention."), errors=errors)
    starts = changes.get("starts_at") or (event.starts_at if event else None)
    ends = changes.get("ends_at") or (event.ends_at if event else None)
    doors = changes.get("doors_at") if "doors_at" in changes else (event.doors_at if event else None)
    if starts and ends and ends <= starts:
        errors["ends_at"] = _("The event must end after it starts.")
    if doors and starts and doors > starts:
        errors["doors_at"] = _("Doors must open before the event starts.")
    if errors:
        raise Invalid(_("Some fields need attention."), errors=errors)
    return changes


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
    values: Mapping[str, Any],
    now: dt.datetime,
    max_retention_days: int = DEFAULT_MAX_RETENTION_DAYS,
) -> Event:
    values = _event_values(values, None, now, max_retention_days)
    with _writing(session):
        _check_stream_name_free(session, values, organizer.id, None)
        event = Event(organizer_id=organizer.id, status="draft", created_at=now, updated_at=now, **values)
        session.add(event)
        _commit_event(session)
    return event


def update_event(
    session: Session,
    event: Event,
    values: Mapping[str, Any],
    now: dt.datetime,
    max_retention_days: int = DEFAULT_MAX_RETENTION_DAYS,
) -> Event:
    """Change an event. ``retention_days`` may go down or up, never past the operator's
    maximum (``TICKETING_MAX_RETENTION_DAYS``)."""
    with _writing(session):
        session.refresh(event)
        values = _event_values(values, event, now, max_retention_days)
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


def _ticket_type_values(
    values: Mapping[str, Any], event: Event, ticket_type: TicketType | None, now: dt.datetime
) -> dict[str, Any]:
    """What the API read (``catalog.schemas.TicketTypeInput``), completed with what needs
    the event: its time zone, the grants its mode implies, and the sale window's order."""
    creating = ticket_type is None
    changes = dict(values)
    errors: dict[str, str] = {}
    _in_zone(changes, TICKET_TYPE_INSTANTS, timezone_or_none(event.timezone) or ZoneInfo("UTC"), now, errors)
    price = changes.get("price_cents", ticket_type.price_cents if ticket_type else 0)
    fee = changes.get("fee_cents", ticket_type.fee_cents if ticket_type else 0)
    if price + fee > MAX_PRICE_CENTS:
        errors["fee_cents" if "fee_cents" in changes else "price_cents"] = _(
            "price_cents and fee_cents together must be at most %(n)d.", n=MAX_PRICE_CENTS
        )
    if creating or "grants" in changes:
        grants = changes.pop("grants", None) or (["stream"] if event.mode == "livestream" else ["entry"])
        changes["grants_entry"] = "entry" in grants
        changes["grants_stream"] = "stream" in grants
    if errors:
        raise Invalid(_("Some fields need attention."), errors=errors)
    starts = (
        changes.get("sale_starts_at") if "sale_starts_at" in changes else (ticket_type and ticket_type.sale_starts_at)
    )
    ends = changes.get("sale_ends_at") if "sale_ends_at" in changes else (ticket_type and ticket_type.sale_ends_at)
    if starts and ends and ends <= starts:
        raise Invalid(_("Some fields need attention."), errors={"sale_ends_at": _("Sales must end after they start.")})
    return changes


def add_ticket_type(session: Session, event: Event, values: Mapping[str, Any], now: dt.datetime) -> TicketType:
    with _writing(session):
        session.refresh(event)
        if event.status == "cancelled":
            raise Conflict(_("A cancelled event cannot be changed."), code="event_cancelled")
        values = _ticket_type_values(values, event, None, now)
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
    session: Session, event: Event, ticket_type: TicketType, values: Mapping[str, Any], now: dt.datetime
) -> TicketType:
    """Prices may change (orders keep what they were shown); capacity never drops below
    what is already sold or held."""
    with _writing(session):
        session.refresh(event)
        session.refresh(ticket_type)
        if event.status == "cancelled":
            raise Conflict(_("A cancelled event cannot be changed."), code="event_cancelled")
        values = _ticket_type_values(values, event, ticket_type, now)
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
