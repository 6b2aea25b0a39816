"""The events API's bodies: what an organiser sends to create or change an event or a
ticket type, and the events everyone reads. PATCH loads the same schemas ``partial``: a
field not sent is not changed; a null or blank one reads as its default, or is refused
when the field is required."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from ticketing.catalog.models import EVENT_MODES, STREAM_ACCESS_MODES, STREAM_SCREEN_POLICIES
from ticketing.catalog.services import (
    CURRENCIES,
    MAX_CAPACITY,
    MAX_PER_ORDER,
    MAX_PRICE_CENTS,
    STREAM_NAME,
)
from ticketing.catalog.stream_url import stream_url_problem
from ticketing.schema import Body, Choice, Field, Flag, Instant, Out, Pattern, Text, Time, TimeZone, Whole

GRANTS = ("entry", "stream")
SALE_STATES = ("open", "not_yet", "ended", "sold_out", "unavailable")


class StreamUrl(Text):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=500, blank="", load_default="", **kwargs)

    def check(self, text: str) -> str:
        problem = stream_url_problem(text)
        if problem:
            raise ma.ValidationError(problem)
        return text

    def value_schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            "maxLength": 500,
            "pattern": r"^https?://[^\s\"'<>]*\{credential\}[^\s\"'<>]*$",
            "description": "HLS playlist URL with `{credential}` once in its path, where the viewer credential goes",
            "examples": ["https://video.example.org/hls/{credential}/gala/index.m3u8"],
        }


class Grants(Field):
    """What a ticket type gives: a non-empty list of "entry" and "stream"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        if not isinstance(value, list) or not value or any(grant not in GRANTS for grant in value):
            raise ma.ValidationError(_('Must be a list holding "entry", "stream" or both.'))
        return value

    def deserialize(self, value: Any, attr: str | None = None, data: Any = None, **kwargs: Any) -> Any:
        if value is None:  # not "missing": a null list is refused like any other non-list
            raise ma.ValidationError(_('Must be a list holding "entry", "stream" or both.'))
        return super().deserialize(value, attr, data, **kwargs)

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "enum": list(GRANTS)},
            "description": 'Default: ["stream"] for a livestream event, ["entry"] otherwise',
        }


class EventInput(Body):
    """Times in ISO 8601; without an offset they are read in the event's time zone."""

    partial_name = "EventChanges"

    title = Text(max_length=200, required=True)
    description = Text(max_length=10_000, multiline=True, blank="", load_default="")
    venue_name = Text(max_length=200, blank="", load_default="")
    venue_address = Text(max_length=500, multiline=True, blank="", load_default="")
    venue_city = Text(max_length=100, blank="", load_default="", metadata={"description": "shown on the events list"})
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    doors_at = Instant(load_default=None)
    timezone = TimeZone()
    mode = Choice(EVENT_MODES, blank="in_person", load_default="in_person")
    currency = Choice(CURRENCIES, blank="EUR", load_default="EUR")
    ask_name = Flag(blank=False, load_default=False)
    ask_postcode = Flag(blank=False, load_default=False)
    retention_days = Whole(
        minimum=0,
        metadata={
            "description": "Days after the event ends before its buyers' personal data is erased; "
            "at most TICKETING_MAX_RETENTION_DAYS (365 by default), 30 (or that maximum) when not sent."
        },
    )
    stream_url = StreamUrl()
    stream_name = Pattern(
        STREAM_NAME,
        lazy_gettext("Use 1 to 64 letters, digits, '-' or '_'."),
        max_length=64,
        load_default=None,
        metadata={"description": "unique among the organiser's events"},
    )
    stream_access = Choice(STREAM_ACCESS_MODES, blank="gate", load_default="gate")
    stream_max_screens = Whole(minimum=1, maximum=100, blank=1, load_default=1)
    stream_screen_policy = Choice(STREAM_SCREEN_POLICIES, blank="newest_wins", load_default="newest_wins")
    stream_replay_until = Instant(load_default=None)


class TicketTypeInput(Body):
    partial_name = "TicketTypeChanges"

    name = Text(max_length=100, required=True)
    price_cents = Whole(maximum=MAX_PRICE_CENTS, required=True)
    fee_cents = Whole(maximum=MAX_PRICE_CENTS, blank=0, load_default=0, metadata={"description": "service fee"})
    capacity = Whole(maximum=MAX_CAPACITY, required=True)
    sale_starts_at = Instant(load_default=None)
    sale_ends_at = Instant(load_default=None)
    max_per_order = Whole(minimum=1, maximum=MAX_PER_ORDER, blank=10, load_default=10)
    position = Whole(maximum=1000, blank=0, load_default=0)
    refundable_until_hours = Whole(
        maximum=24 * 365,
        load_default=None,
        metadata={"description": "buyer refunds until this many hours before the event; null: none"},
    )
    grants = Grants()


class TicketType(Out):
    id = ma.fields.UUID(required=True)
    name = ma.fields.String(required=True)
    price_cents = ma.fields.Integer(required=True)
    fee_cents = ma.fields.Integer(required=True, metadata={"description": "service fee, shown separately"})
    currency = ma.fields.String(required=True)
    capacity = ma.fields.Integer(required=True)
    available = ma.fields.Integer(required=True)
    sale_state = ma.fields.String(required=True, validate=ma.validate.OneOf(SALE_STATES))
    sale_starts_at = Time(required=True, allow_none=True)
    sale_ends_at = Time(required=True, allow_none=True)
    max_per_order = ma.fields.Integer(required=True)
    grants = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(GRANTS)), required=True)
    refundable_until_hours = ma.fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "buyer refunds until this many hours before the event; null: none"},
    )


class Venue(Out):
    name = ma.fields.String(required=True)
    address = ma.fields.String(required=True)
    city = ma.fields.String(required=True)


class Event(Out):
    id = ma.fields.UUID(required=True)
    title = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    venue = ma.fields.Nested(Venue, required=True)
    starts_at = Time(required=True)
    ends_at = Time(required=True)
    doors_at = Time(required=True, allow_none=True)
    timezone = ma.fields.String(required=True, metadata={"examples": ["Europe/Paris"]})
    mode = ma.fields.String(required=True, validate=ma.validate.OneOf(EVENT_MODES))
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(("draft", "published", "cancelled")))
    currency = ma.fields.String(required=True)
    ask_name = ma.fields.Boolean(required=True)
    ask_postcode = ma.fields.Boolean(required=True)
    retention_days = ma.fields.Integer(required=True)
    ticket_types = ma.fields.List(ma.fields.Nested(TicketType), required=True)


class OrganizerEvent(Event):
    """An event as its organiser sees it: the stream settings, and counts per ticket type id."""

    stream_url = ma.fields.String(required=True)
    stream_name = ma.fields.String(required=True, allow_none=True)
    stream_access = ma.fields.String(required=True, validate=ma.validate.OneOf(STREAM_ACCESS_MODES))
    stream_max_screens = ma.fields.Integer(required=True)
    stream_screen_policy = ma.fields.String(required=True, validate=ma.validate.OneOf(STREAM_SCREEN_POLICIES))
    stream_replay_until = Time(required=True, allow_none=True)
    stream_publisher_key_set = ma.fields.Boolean(required=True)
    sold = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)
    held = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)


class Image(Field):
    """A file sent in a multipart body."""

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "contentMediaType": "application/octet-stream"}


class PosterUpload(ma.Schema):
    image = Image(required=True, metadata={"description": "JPEG, PNG or WebP, at most 10 MB"})
    alt = Text(max_length=300, metadata={"description": "what the poster shows, for readers who cannot see it"})


class PosterImage(Out):
    width = ma.fields.Integer(required=True)
    height = ma.fields.Integer(required=True)
    url = ma.fields.String(required=True)


class Poster(Out):
    version = ma.fields.String(required=True)
    alt = ma.fields.String(required=True)
    images = ma.fields.List(ma.fields.Nested(PosterImage), required=True)
    srcset = ma.fields.String(required=True)


class Events(Out):
    events = ma.fields.List(ma.fields.Nested(Event), required=True)


class OrganizerEvents(Out):
    events = ma.fields.List(ma.fields.Nested(OrganizerEvent), required=True)


NEW_EVENT = EventInput()
EVENT_CHANGES = EventInput(partial=True)
NEW_TICKET_TYPE = TicketTypeInput()
TICKET_TYPE_CHANGES = TicketTypeInput(partial=True)
EVENT = Event()
ORGANIZER_EVENT = OrganizerEvent()
EVENTS = Events()
ORGANIZER_EVENTS = OrganizerEvents()
TICKET_TYPE = TicketType()
POSTER_UPLOAD = PosterUpload()
POSTER = Poster()
