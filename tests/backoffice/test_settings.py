"""Organiser settings: saved by an owner, shown to buyers wherever they meet the seller."""

from __future__ import annotations

import email
import email.policy
import uuid

from tests.backoffice.helpers import log_in, make_venue
from tests.conftest import make_event, outbox, post_form
from ticketing.catalog.models import Organizer
from ticketing.extensions import db

SETTINGS = {
    "name": "Les Ondes du Canal",
    "contact_email": "billetterie@ondes.example",
    "legal_name": "Association Les Ondes du Canal",
    "postal_address": "12 quai de la Daurade\n31000 Toulouse",
    "support_text": "We answer within two days.",
}


def test_an_owner_saves_settings_and_buyers_see_who_sells_and_who_holds_their_data(app, client):
    venue = make_venue(app)
    with app.app_context():
        event = make_event(organizer=db.session.get(Organizer, venue.organizer_id), price_cents=0, fee_cents=0)
        event_id, type_id = event.id, event.ticket_types[0].id
    log_in(client, venue.owner.email)

    saved = post_form(client, "/manage/settings", "/manage/settings", SETTINGS)
    buyer = app.test_client()
    event_page = buyer.get(f"/events/{event_id}").get_data(as_text=True)
    ordered = post_form(
        buyer,
        f"/events/{event_id}",
        f"/events/{event_id}/orders",
        {"email": "fan@buyer.example", f"qty-{type_id}": "1"},
    )
    order_page = buyer.get(ordered.headers["Location"]).get_data(as_text=True)
    privacy_page = buyer.get("/privacy").get_data(as_text=True)
    [mail_file] = outbox(app)
    mail = email.message_from_bytes(mail_file.read_bytes(), policy=email.policy.default)

    assert saved.status_code == 302
    for page in (event_page, order_page, privacy_page):
        assert "Sold by Les Ondes du Canal." in page
        assert "held by Association Les Ondes du Canal, the data controller" in page
        assert "billetterie@ondes.example" in page and "31000 Toulouse" in page
    assert "We answer within two days." in order_page
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for body in (text, html):
        assert "Association Les Ondes du Canal" in body and "billetterie@ondes.example" in body


def test_settings_are_checked_field_by_field(app, client):
    venue = make_venue(app)
    log_in(client, venue.owner.email)

    refused = post_form(
        client, "/manage/settings", "/manage/settings", {**SETTINGS, "name": "", "contact_email": "not an address"}
    )

    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "This field is required." in page and "Enter a valid email address" in page
    with app.app_context():
        assert db.session.get(Organizer, uuid.UUID(str(venue.organizer_id))).name == "Salle Test"


def test_without_a_legal_name_the_public_name_is_the_data_controller(app, client):
    venue = make_venue(app)
    with app.app_context():
        event_id = make_event(organizer=db.session.get(Organizer, venue.organizer_id)).id

    page = client.get(f"/events/{event_id}").get_data(as_text=True)

    assert "held by Salle Test, the data controller" in page
