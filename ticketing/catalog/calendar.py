"""An event as an iCalendar file (RFC 5545): what "add to my calendar" downloads, and what the
tickets mail attaches.

Times are written in the event's own time zone (``DTSTART;TZID=Europe/Paris:...``), so the
entry reads as on the poster in any calendar, with the ``VTIMEZONE`` RFC 5545 requires for
each TZID: the zone's offsets and the transitions around the event, taken from the system's
zone database. The text is in the reader's language (``LANGUAGE`` parameters). The file
names no buyer and holds no secret link: it describes the event, for anyone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask_babel import gettext as _

from ticketing.catalog.models import Event
from ticketing.display import local_time
from ticketing.forms import timezone_or_none
from ticketing.web import external_url

PRODUCT = "-//Guichet//Tickets//EN"
LINE_OCTETS = 75
# Transitions this far either side of the event: the entry's whole life in a calendar
# rarely matters, but its own dates must be covered, and a year keeps the file small.
TRANSITION_WINDOW = dt.timedelta(days=366)


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545, 3.3.11): backslash, semicolon, comma and newlines escaped."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\r", "\\n")
        .replace("\n", "\\n")
    )


def fold(line: str) -> str:
    """Content lines are at most 75 octets; longer ones continue after CRLF and a space,
    never inside a UTF-8 sequence (RFC 5545, 3.1)."""
    out: list[str] = []
    current = ""
    limit = LINE_OCTETS
    for char in line:
        if len((current + char).encode("utf-8")) > limit:
            out.append(current)
            current = ""
            limit = LINE_OCTETS - 1  # the leading space of a continuation counts
        current += char
    out.append(current)
    return "\r\n ".join(out)


def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _local(value: dt.datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y%m%dT%H%M%S")


def _offset(delta: dt.timedelta | None) -> str:
    seconds = int((delta or dt.timedelta(0)).total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours:02d}{minutes:02d}" + (f"{seconds:02d}" if seconds else "")


def _transitions(zone: ZoneInfo, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The instants (UTC) between ``start`` and ``end`` at which the zone's offset changes."""
    found = []
    step = dt.timedelta(hours=6)
    before = start
    while before < end:
        after = min(before + step, end)
        if before.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            low, high = before, after
            while high - low > dt.timedelta(minutes=1):  # offsets change on the minute
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high.replace(second=0, microsecond=0))
        before = after
    return found


def _timezone_lines(zone_name: str, zone: ZoneInfo, event: Event) -> Iterator[str]:
    start = (event.starts_at - TRANSITION_WINDOW).replace(hour=0, minute=0, second=0, microsecond=0)
    end = event.ends_at + TRANSITION_WINDOW
    yield "BEGIN:VTIMEZONE"
    yield f"TZID:{zone_name}"
    transitions = _transitions(zone, start, end)
    # The offset in force from the window's start: the first observance's onset.
    onsets = [(start, start.astimezone(zone).utcoffset())] + [(t, t.astimezone(zone).utcoffset()) for t in transitions]
    previous = onsets[0][1]
    for instant, offset in onsets:
        local = instant.astimezone(zone)
        kind = "DAYLIGHT" if local.dst() else "STANDARD"
        yield f"BEGIN:{kind}"
        # DTSTART is the onset in the local time that was in force just before it.
        yield f"DTSTART:{(instant + (previous or dt.timedelta(0))).replace(tzinfo=None).strftime('%Y%m%dT%H%M%S')}"
        yield f"TZOFFSETFROM:{_offset(previous)}"
        yield f"TZOFFSETTO:{_offset(offset)}"
        name = local.tzname()
        if name:
            yield f"TZNAME:{escape_text(name)}"
        yield f"END:{kind}"
        previous = offset
    yield "END:VTIMEZONE"


def _description(event: Event, event_url: str) -> str:
    lines = []
    if event.doors_at and event.mode != "livestream":
        lines.append(_("Doors open: %(time)s", time=local_time(event.doors_at, event.timezone, "time")))
    if event.mode == "livestream":
        lines.append(_("Livestream: the link to watch is in your tickets email."))
    elif event.mode == "hybrid":
        lines.append(_("In person and livestream: the link to watch is in your tickets email."))
    lines.append(event_url)
    return "\n".join(lines)


def _location(event: Event) -> str:
    if event.mode == "livestream":
        return _("Livestream")
    return ", ".join(part for part in (event.venue_name, " ".join(event.venue_address.split())) if part)


def event_calendar(event: Event, *, language: str, event_url: str, now: dt.datetime, host: str) -> str:
    """The ``.ics`` text of one event, in ``language`` (call under that locale)."""
    zone = timezone_or_none(event.timezone) or ZoneInfo("UTC")
    zone_name = event.timezone if timezone_or_none(event.timezone) else "UTC"
    lang = f";LANGUAGE={language}"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODUCT}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        *_timezone_lines(zone_name, zone, event),
        "BEGIN:VEVENT",
        f"UID:event-{event.id}@{host}",
        f"DTSTAMP:{_utc(now)}",
        f"DTSTART;TZID={zone_name}:{_local(event.starts_at, zone)}",
        f"DTEND;TZID={zone_name}:{_local(event.ends_at, zone)}",
        f"SUMMARY{lang}:{escape_text(event.title)}",
        f"DESCRIPTION{lang}:{escape_text(_description(event, event_url))}",
        f"URL:{event_url}",
        f"STATUS:{'CANCELLED' if event.status == 'cancelled' else 'CONFIRMED'}",
        "TRANSP:OPAQUE",
    ]
    location = _location(event)
    if location:
        lines.append(f"LOCATION{lang}:{escape_text(location)}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "".join(fold(line) + "\r\n" for line in lines)


def calendar_file(event: Event, language: str, now: dt.datetime) -> str:
    """The event's ``.ics`` in ``language`` (call under that locale): for the page and the
    tickets mail alike."""
    event_url = external_url("catalog.event_page", event_id=event.id)
    host = urlsplit(event_url).hostname or "guichet"
    return event_calendar(event, language=language, event_url=event_url, now=now, host=host)
