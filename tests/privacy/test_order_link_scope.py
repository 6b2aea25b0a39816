"""Knowing someone's email address opens nothing of theirs.

The attack of the hostile review, step by step: a stranger places an unpaid order with the
victim's address (another letter case, nothing paid, nothing confirmed) and uses that
order's access token on every privacy route. An order's token proves only that its holder
placed that order; everything held about an address needs the mail sent to it.
"""

from __future__ import annotations

import re

from tests.conftest import csrf_token, outbox, post_form, published_event
from tests.privacy.helpers import buy, erase_by_api, export_by_api, held_records, order_path
from ticketing.extensions import db, keyring
from ticketing.privacy.vault import read_person

VICTIM = "Vi7ctim.Real@Example.org"
ATTACKER_SPELLING = "vi7ctim.real@EXAMPLE.ORG"
VICTIM_NAME, VICTIM_POSTCODE = "Violette Tremblay", "31400"
LINK = re.compile(r"http://localhost(/privacy/my-data/[A-Za-z0-9_.\-]+)")


def _victim_and_attacker(app, client):
    asks = published_event(app, ask_name=True, ask_postcode=True, price_cents=0, fee_cents=0)
    victim = buy(client, asks, VICTIM, name=VICTIM_NAME, postcode=VICTIM_POSTCODE)
    priced = published_event(app, ask_name=True, ask_postcode=True, price_cents=2500)
    attacker = buy(client, priced, ATTACKER_SPELLING, name="Mallory", postcode="99999")
    assert attacker["status"] == "pending"  # nothing paid
    return victim, attacker


def _victims_traces(text: str, victim: dict) -> list[str]:
    return [marker for marker in (VICTIM_NAME, VICTIM_POSTCODE, victim["code"]) if marker in text]


def test_a_strangers_order_with_the_victims_address_exports_nothing_of_the_victims(app, client):
    victim, attacker = _victim_and_attacker(app, client)

    export = export_by_api(client, attacker)
    page = client.get(f"{order_path(attacker)}/my-data")
    download = client.get(f"{order_path(attacker)}/my-data.json")

    assert export.status_code == page.status_code == download.status_code == 200
    body = export.get_json()
    assert [o["code"] for o in body["orders"]] == [attacker["code"]]
    assert {t["order_code"] for t in body["tickets"]} <= {attacker["code"]}
    assert [(p["name"], p["postcode"]) for p in body["persons"]] == [("Mallory", "99999")]
    for text in (export.get_data(as_text=True), page.get_data(as_text=True), download.get_data(as_text=True)):
        assert _victims_traces(text, victim) == []


def test_a_strangers_order_token_erases_only_the_strangers_order(app, client):
    victim, attacker = _victim_and_attacker(app, client)
    [victim_record, attacker_record] = held_records(app, VICTIM)

    erased = erase_by_api(client, attacker)

    assert erased.status_code == 200 and erased.get_json()["orders_affected"] == 1
    assert held_records(app, VICTIM) == [victim_record] != [attacker_record]
    mine = export_by_api(client, victim).get_json()
    assert [(p["email"], p["name"], p["postcode"]) for p in mine["persons"]] == [(VICTIM, VICTIM_NAME, VICTIM_POSTCODE)]


def test_a_strangers_order_changes_nothing_the_victims_order_holds(app, client):
    victim, _attacker = _victim_and_attacker(app, client)
    [victim_record, _] = held_records(app, VICTIM)

    with app.app_context():
        record = read_person(db.session, keyring(), victim_record)

    assert (record.email, record.name, record.postcode) == (VICTIM, VICTIM_NAME, VICTIM_POSTCODE)


def test_the_mailbox_owner_sees_and_erases_everything_held_about_the_address(app, client):
    victim, attacker = _victim_and_attacker(app, client)

    post_form(client, "/privacy", "/privacy/request", {"email": VICTIM})
    mail = outbox(app)[-1].read_text().replace("=\n", "")
    link = LINK.search(mail).group(1)
    export = client.get(f"{link}/export.json").get_json()
    erased = client.post(f"{link}/erase", data={"csrf_token": csrf_token(client, link), "confirm": "yes"})

    # Both orders placed with this address are the mailbox owner's to see, the stranger's too.
    assert sorted(o["code"] for o in export["orders"]) == sorted([victim["code"], attacker["code"]])
    assert {(p["name"], p["postcode"]) for p in export["persons"]} == {
        (VICTIM_NAME, VICTIM_POSTCODE),
        ("Mallory", "99999"),
    }
    assert erased.status_code == 200
    assert held_records(app, VICTIM) == []
    assert export_by_api(client, victim).get_json()["personal_data_held"] is False


def test_find_my_orders_mails_the_links_to_the_address_only(app, client):
    victim, attacker = _victim_and_attacker(app, client)
    before = len(outbox(app))

    page = post_form(client, "/orders/find", "/orders/find", {"email": ATTACKER_SPELLING})

    assert page.status_code == 200
    assert victim["access_token"] not in page.get_data(as_text=True)
    [mail] = outbox(app)[before:]
    text = mail.read_text()
    assert "To: " + ATTACKER_SPELLING in text or "To: " + VICTIM in text
    assert victim["code"] in text and attacker["code"] in text
