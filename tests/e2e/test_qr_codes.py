"""Every ticket's QR code scans from the screen, at every width from 280 px, in each place
a buyer sees it: the order page, the printable tickets and the tickets mail."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_event, outbox
from tests.e2e.conftest import LiveServer
from tests.e2e.scanning import decode_qr_codes, mail_as_page, read_mail
from tests.e2e.test_browser import TIMEOUT_MS, assert_fits_width
from tests.e2e.test_door import door_setup, scan
from ticketing.extensions import keyring
from ticketing.tickets.payload import base32_text, verify_ticket_code

pytestmark = pytest.mark.e2e

WIDTHS = (280, 320, 390, 1280)


def _free_order(live_server: LiveServer, mode: str, quantity: int) -> dict[str, Any]:
    with live_server.app.app_context():
        event = make_event(price_cents=0, fee_cents=0, mode=mode)
        event_id, type_id = str(event.id), str(event.ticket_types[0].id)
    body = {
        "event_id": event_id,
        "items": [{"ticket_type_id": type_id, "quantity": quantity}],
        "email": "qr@example.org",
    }
    client = live_server.app.test_client()
    placed = client.post("/api/v1/orders", json=body, environ_base={"REMOTE_ADDR": f"10.9.0.{quantity}"}).get_json()
    order = client.get(
        f"/api/v1/orders/{placed['code']}", headers={"Authorization": f"Bearer {placed['access_token']}"}
    ).get_json()
    return {"url": f"/orders/{placed['code']}/{placed['access_token']}", "tickets": order["tickets"]}


def _verified_ticket_ids(payloads: list[str], public_key: bytes) -> list[uuid.UUID]:
    ids = []
    for payload in payloads:
        claims = verify_ticket_code(payload, public_key)
        assert claims is not None, f"a decoded code does not verify: {payload[:40]}..."
        ids.append(claims.ticket_id)
    return ids


@pytest.mark.parametrize("width", WIDTHS)
def test_every_code_decodes_from_a_screenshot_and_verifies(
    browser: Any, live_server: LiveServer, tmp_path: Path, width: int
) -> None:
    in_person = _free_order(live_server, "in_person", 2)
    hybrid = _free_order(live_server, "hybrid", 1)
    with live_server.app.app_context():
        public_key = keyring().signing_public_key
    mails = [read_mail(path) for path in outbox(live_server.app)]
    context = browser.new_context(viewport={"width": width, "height": 800}, device_scale_factor=1)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()

    for order in (in_person, hybrid):
        expected = sorted(uuid.UUID(ticket["id"]) for ticket in order["tickets"])
        for name, path in (("order", order["url"]), ("print", order["url"] + "/print")):
            page.goto(live_server.url + path)
            assert_fits_width(page)
            shot = tmp_path / f"{name}-{expected[0]}-{width}.png"
            page.screenshot(path=str(shot), full_page=True)

            found = _verified_ticket_ids(decode_qr_codes(shot), public_key)

            assert sorted(found) == expected, f"{name} page at {width} px: decoded {len(found)} of {len(expected)}"
    # A page that never loaded the site: the site's CSP would refuse the mail's inline styles.
    mail_page = context.new_page()
    decoded_from_mails = []
    assert len(mails) == 2
    for number, message in enumerate(mails):
        mail_page.set_content(mail_as_page(message))
        assert_fits_width(mail_page)
        shot = tmp_path / f"mail-{number}-{width}.png"
        mail_page.screenshot(path=str(shot), full_page=True)

        decoded_from_mails.append(sorted(_verified_ticket_ids(decode_qr_codes(shot), public_key)))

    expected = [sorted(uuid.UUID(ticket["id"]) for ticket in order["tickets"]) for order in (in_person, hybrid)]
    assert sorted(decoded_from_mails) == sorted(expected), f"mails at {width} px"
    context.close()


def test_the_door_reads_decimal_codes_and_older_base32_codes_offline(browser: Any, live_server: LiveServer) -> None:
    ticket_codes, _ticket_ids, token = door_setup(live_server)
    old_code = base32_text(int(ticket_codes[1]).to_bytes(121, "big"))
    forged = ticket_codes[2][:-12] + ("1" if ticket_codes[2][-12] != "1" else "2") + ticket_codes[2][-11:]
    context = browser.new_context(viewport={"width": 390, "height": 664})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{live_server.url}/door#token={token}")
    page.wait_for_selector("#door[data-bundle='ready']")
    context.set_offline(True)
    page.wait_for_selector("#network.is-offline")

    assert ticket_codes[0].isdigit() and old_code.startswith("A")
    assert scan(page, ticket_codes[0]) == "admitted"
    assert scan(page, old_code) == "admitted"
    assert scan(page, old_code) == "already_used"
    assert scan(page, forged) == "invalid"
    context.close()
