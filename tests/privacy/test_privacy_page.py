"""The privacy page is generated from the real configuration of the events on sale."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import published_event
from ticketing.catalog.models import Event
from ticketing.extensions import db


def test_privacy_page_says_per_event_what_is_asked_and_how_long_it_is_kept(app, client):
    asks = published_event(app, ask_name=True, ask_postcode=False)
    with app.app_context():
        db.session.execute(sa.update(Event).where(Event.id == asks.id).values(title="Asks names", retention_days=7))
        db.session.commit()

    page = client.get("/privacy").get_data(as_text=True)

    row = page[page.index("Asks names") :].split("</tr>")[0]
    assert "<td>Email and name</td>" in row
    assert "7 days after the event" in row
    assert 'action="/privacy/request"' in page
    assert f"{app.config['MAX_RETENTION_DAYS']} days" in page


def test_privacy_page_is_in_french_too(app, client):
    published_event(app)

    page = client.get("/privacy", headers={"Accept-Language": "fr"}).get_data(as_text=True)

    assert "Confidentialité" in page


def test_order_page_offers_export_and_erasure(app, client):
    from tests.privacy.helpers import buy, order_path

    order = buy(client, published_event(app), "someone@example.org")

    page = client.get(order_path(order)).get_data(as_text=True)

    assert f'action="{order_path(order)}/erase"' in page
    assert f"{order_path(order)}/my-data.json" in page
