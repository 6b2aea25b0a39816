"""The add-to-calendar file: RFC 5545, in the event's time zone and the reader's language."""

from __future__ import annotations

import datetime as dt
import email
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from tests.conftest import outbox, published_event
from ticketing.catalog.calendar import fold
from ticketing.catalog.models import Event
from ticketing.extensions import db

PARIS = ZoneInfo("Europe/Paris")
SUMMER_START = dt.datetime(2027, 7, 14, 18, 30, tzinfo=dt.UTC)  # 20:30 in Paris (UTC+2)


def unfold(text: str) -> list[str]:
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    return text.replace("\r\n ", "").split("\r\n")[:-1]


def properties(lines: list[str], name: str) -> list[str]:
    return [line for line in lines if re.match(rf"{name}[;:]", line)]


@pytest.fixture
def summer_event(app):
    event = published_event(app)
    with app.app_context():
        db.session.execute(
            update(Event)
            .where(Event.id == event.id)
            .values(
                title="Nuit d'été, jazz; et invités",
                starts_at=SUMMER_START,
                ends_at=SUMMER_START + dt.timedelta(hours=3),
                doors_at=SUMMER_START - dt.timedelta(minutes=30),
            )
        )
        db.session.commit()
    return event


def test_calendar_file_is_rfc_5545_in_the_events_time_zone(client, summer_event):
    response = client.get(f"/events/{summer_event.id}/calendar.ics")

    text = response.get_data(as_text=True)
    lines = unfold(text)
    assert response.mimetype == "text/calendar"
    assert "attachment" in response.headers["Content-Disposition"]
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert "VERSION:2.0" in lines and any(line.startswith("PRODID:") for line in lines)
    assert properties(lines, "DTSTART")[-1] == "DTSTART;TZID=Europe/Paris:20270714T203000"
    assert properties(lines, "DTEND")[-1] == "DTEND;TZID=Europe/Paris:20270714T233000"
    assert properties(lines, "SUMMARY") == ["SUMMARY;LANGUAGE=en:Nuit d'été\\, jazz\\; et invités"]
    assert "LOCATION;LANGUAGE=en:Salle Test\\, 1 rue du Test\\, 31000 Toulouse" in lines
    assert len(properties(lines, "UID")) == 1 and len(properties(lines, "DTSTAMP")) == 1


def test_its_time_zone_says_summer_time_for_a_summer_event(client, summer_event):
    lines = unfold(client.get(f"/events/{summer_event.id}/calendar.ics").get_data(as_text=True))

    zone = lines[lines.index("BEGIN:VTIMEZONE") : lines.index("END:VTIMEZONE") + 1]
    assert "TZID:Europe/Paris" in zone
    # The observance in force on 14 July 2027: summer time from 28 March 2027 at 02:00.
    summer = zone.index("DTSTART:20270328T020000")
    assert zone[summer - 1] == "BEGIN:DAYLIGHT"
    assert zone[summer + 1 : summer + 3] == ["TZOFFSETFROM:+0100", "TZOFFSETTO:+0200"]
    assert "DTSTART:20271031T030000" in zone  # and back to winter time after it


def test_calendar_file_speaks_the_readers_language(client, summer_event):
    lines = unfold(
        client.get(f"/events/{summer_event.id}/calendar.ics", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    )

    [description] = properties(lines, "DESCRIPTION")
    doors = "Ouverture des portes\u00a0: 20:00\\, heure locale à Paris\\n"
    assert description.startswith(f"DESCRIPTION;LANGUAGE=fr:{doors}")
    assert properties(lines, "SUMMARY")[0].startswith("SUMMARY;LANGUAGE=fr:")


def test_long_lines_fold_between_characters_never_inside_one():
    line = "DESCRIPTION:" + "é" * 100

    folded = fold(line)

    assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))
    assert folded.replace("\r\n ", "") == line


def test_tickets_mail_attaches_the_calendar_file_in_the_buyers_language(app, client, summer_event):
    event = published_event(app, price_cents=0, fee_cents=0)
    body = {
        "event_id": str(event.id),
        "items": [{"ticket_type_id": str(event.type_id), "quantity": 1}],
        "email": "cal@example.org",
    }

    client.post("/api/v1/orders", json=body, headers={"Accept-Language": "fr"})

    [path] = outbox(app)
    message = email.message_from_bytes(path.read_bytes())
    [attachment] = [part for part in message.walk() if part.get_content_type() == "text/calendar"]
    assert attachment.get_filename() == "event.ics"
    lines = unfold(attachment.get_payload(decode=True).decode().replace("\r\n", "\n").replace("\n", "\r\n"))
    assert properties(lines, "SUMMARY") == ["SUMMARY;LANGUAGE=fr:Concert test"]
    assert properties(lines, "DTSTART")[-1].startswith("DTSTART;TZID=Europe/Paris:")
