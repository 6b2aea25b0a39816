"""Public catalogue pages: the list of upcoming events and an event with its buy form."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from sqlalchemy import update

from tests.conftest import make_event
from ticketing.catalog.models import TicketType
from ticketing.extensions import db
from ticketing.models import utcnow


def titled(title: str, **options):  # type: ignore[no-untyped-def]
    event = make_event(**options)
    event.title = title
    db.session.commit()
    return event


def page_text(client, url: str) -> str:
    response = client.get(url, headers={"Accept-Language": "en"})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_index_lists_upcoming_published_events_only(app, client):
    with app.app_context():
        titled("Upcoming Gig")
        titled("Draft Gig", status="draft")
        titled("Past Gig", starts_in=dt.timedelta(days=-3))
        titled("Cancelled Gig", status="cancelled")

    html = page_text(client, "/")

    assert "Upcoming Gig" in html
    assert "Draft Gig" not in html
    assert "Past Gig" not in html
    assert "Cancelled Gig" not in html


def test_index_links_each_event_to_its_page(app, client):
    with app.app_context():
        event_id = titled("Upcoming Gig").id

    html = page_text(client, "/")

    assert f'href="/events/{event_id}"' in html


def test_index_says_when_nothing_is_on_sale(app, client):
    with app.app_context():
        titled("Draft Gig", status="draft")

    html = page_text(client, "/")

    assert "Draft Gig" not in html
    assert 'class="event-list"' not in html


def test_event_page_shows_how_many_tickets_are_left(app, client):
    with app.app_context():
        event = make_event(capacity=20)
        db.session.execute(update(TicketType).where(TicketType.event_id == event.id).values(sold=5, reserved=3))
        db.session.commit()
        event_id = event.id

    html = page_text(client, f"/events/{event_id}")

    assert "12 left" in html


def test_event_page_shows_sold_out_and_offers_no_quantity(app, client):
    with app.app_context():
        event = make_event(capacity=4)
        db.session.execute(update(TicketType).where(TicketType.event_id == event.id).values(sold=4))
        db.session.commit()
        event_id, type_id = event.id, event.ticket_types[0].id

    html = page_text(client, f"/events/{event_id}")

    assert "Sold out" in html
    assert f'name="qty-{type_id}"' not in html
    assert 'name="email"' not in html


def test_event_page_says_when_sales_open(app, client):
    opens = (utcnow() + dt.timedelta(days=3)).replace(hour=8, minute=0, second=0, microsecond=0)
    with app.app_context():
        event_id = make_event(sale_starts_at=opens).id

    html = page_text(client, f"/events/{event_id}")

    on_the_poster = format_datetime(opens.astimezone(ZoneInfo("Europe/Paris")).replace(tzinfo=None), "d MMM y, HH:mm")
    assert f"Sales open on {on_the_poster}" in html
    assert " left" not in html


def test_event_page_shows_price_and_service_fee_separately(app, client):
    with app.app_context():
        event_id = make_event(price_cents=1500, fee_cents=125).id

    html = page_text(client, f"/events/{event_id}")

    assert "€15.00" in html
    assert "€1.25 service fee" in html
    assert "€16.25" not in html


def test_event_page_without_fee_names_no_fee(app, client):
    with app.app_context():
        event_id = make_event(price_cents=1500, fee_cents=0).id

    html = page_text(client, f"/events/{event_id}")

    assert "€15.00" in html
    assert "service fee</span>" not in html


def test_event_page_asks_only_for_email_by_default(app, client):
    with app.app_context():
        event_id = make_event().id

    html = page_text(client, f"/events/{event_id}")

    assert 'name="email"' in html
    assert 'name="name"' not in html
    assert 'name="postcode"' not in html


def test_event_page_asks_for_name_with_the_reason_when_the_event_does(app, client):
    with app.app_context():
        event_id = make_event(ask_name=True).id

    html = page_text(client, f"/events/{event_id}")

    assert 'name="name"' in html
    assert 'name="postcode"' not in html
    reason = re.search(r'<p class="hint" id="name-hint">([^<]+)</p>', html)
    assert reason and "door" in reason.group(1)
    assert re.search(r'<input[^>]*name="name"[^>]*aria-describedby="name-hint"', html)


def test_event_page_asks_for_postcode_with_the_reason_when_the_event_does(app, client):
    with app.app_context():
        event_id = make_event(ask_postcode=True).id

    html = page_text(client, f"/events/{event_id}")

    assert 'name="postcode"' in html
    assert 'name="name"' not in html
    reason = re.search(r'<p class="hint" id="postcode-hint">([^<]+)</p>', html)
    assert reason and "funders" in reason.group(1)
    assert re.search(r'<input[^>]*name="postcode"[^>]*aria-describedby="postcode-hint"', html)


def test_every_form_field_has_a_label(app, client):
    with app.app_context():
        event_id = make_event(ask_name=True, ask_postcode=True).id

    html = page_text(client, f"/events/{event_id}")

    fields = re.findall(r'<(?:input|select)[^>]*\bid="([^"]+)"', html)
    assert len(fields) == 4
    for field in fields:
        assert f'<label for="{field}"' in html


def test_draft_event_page_is_404(app, client):
    with app.app_context():
        event_id = make_event(status="draft").id

    response = client.get(f"/events/{event_id}")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Concert test" not in response.get_data(as_text=True)


def test_event_page_with_an_id_that_is_not_a_uuid_is_404(client):
    response = client.get("/events/not-an-id")

    assert response.status_code == 404


def test_cancelled_event_page_says_so_and_sells_nothing(app, client):
    with app.app_context():
        event = make_event(status="cancelled")
        event_id, type_id = event.id, event.ticket_types[0].id

    html = page_text(client, f"/events/{event_id}")

    assert "This event is cancelled." in html
    assert f'name="qty-{type_id}"' not in html
