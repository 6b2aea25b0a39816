"""Door staff in a real Chromium: scan online, go offline, come back and sync."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from tests.checkin.factories import codes, make_device, make_tickets
from tests.e2e.conftest import LiveServer, wait_for_js
from tests.e2e.test_browser import TIMEOUT_MS, PageWatch
from ticketing.catalog.models import Event, Organizer
from ticketing.checkin.devices import create_device
from ticketing.checkin.models import Scan
from ticketing.checkout.models import Ticket
from ticketing.extensions import db
from ticketing.models import utcnow

pytestmark = pytest.mark.e2e

GREEN = "rgb(11, 122, 59)"
RED = "rgb(179, 20, 12)"


def door_setup(live_server: LiveServer) -> tuple[list[str], list[uuid.UUID], str]:
    with live_server.app.app_context():
        event = db.session.get(Event, uuid.UUID(live_server.event_id))
        organizer = db.session.get(Organizer, event.organizer_id)
        tickets = make_tickets(event, 3)
        token = make_device(organizer, [event])
        return codes(tickets), [t.id for t in tickets], token


def scan(page: Any, code: str) -> str:
    """Type a code the way a keyboard-wedge scanner does (characters, then Enter)."""
    verdict = page.locator("#verdict")
    if verdict.is_visible():
        page.keyboard.press("Escape")
        verdict.wait_for(state="hidden")
    page.locator("#code").fill(code)
    page.locator("#code").press("Enter")
    verdict.wait_for(state="visible")
    wait_for_js(page, "document.getElementById('verdict').dataset.result !== undefined")
    result = verdict.get_attribute("data-result")
    page.evaluate("delete document.getElementById('verdict').dataset.result")
    return result


def background(page: Any) -> str:
    return page.evaluate("getComputedStyle(document.getElementById('verdict')).backgroundColor")


# A browser whose WebCrypto lacks Ed25519 (older Safari and Firefox): the page must fall
# back to the vendored @noble/ed25519.
WITHOUT_WEBCRYPTO_ED25519 = """
const importKey = crypto.subtle.importKey.bind(crypto.subtle);
crypto.subtle.importKey = (format, key, algorithm, ...rest) =>
  algorithm && algorithm.name === "Ed25519"
    ? Promise.reject(new DOMException("Ed25519 is not supported", "NotSupportedError"))
    : importKey(format, key, algorithm, ...rest);
"""


@pytest.mark.parametrize("verifier", ["webcrypto", "noble"])
def test_door_admits_once_refuses_forgeries_and_keeps_working_offline(
    browser: Any, live_server: LiveServer, verifier: str
) -> None:
    ticket_codes, ticket_ids, token = door_setup(live_server)
    context = browser.new_context(viewport={"width": 390, "height": 664}, is_mobile=True, has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    if verifier == "noble":
        context.add_init_script(WITHOUT_WEBCRYPTO_ED25519)
    page = context.new_page()
    watch = PageWatch()
    watch.attach(page)
    forged = ticket_codes[2][:-12] + ("A" if ticket_codes[2][-12] != "A" else "B") + ticket_codes[2][-11:]

    response = page.goto(f"{live_server.url}/door#token={token}")
    page.wait_for_selector("#door[data-bundle='ready']")

    assert "camera=(self)" in response.headers["permissions-policy"]
    assert "#token" not in page.url  # the token leaves the address bar for the device's storage
    assert page.locator("#network").inner_text() == "Online"
    assert page.locator("#counter").inner_text() == "0 / 3 admitted"

    assert scan(page, ticket_codes[0]) == "admitted"
    assert background(page) == GREEN
    assert page.locator("#verdict-type").inner_text() == "Standard"
    assert page.locator("#counter").inner_text() == "1 / 3 admitted"

    assert scan(page, ticket_codes[0]) == "already_used"
    assert background(page) == RED
    assert "Already used" in page.locator("#verdict-result").inner_text()

    assert scan(page, forged) == "invalid"
    assert background(page) == RED

    context.set_offline(True)
    page.wait_for_selector("#network.is-offline")
    assert scan(page, ticket_codes[1]) == "admitted"
    assert background(page) == GREEN
    assert "decided offline" in page.locator("#verdict-detail").inner_text()
    page.wait_for_selector("#queue[data-count='1']")
    assert page.locator("#door").get_attribute("data-verifier") == verifier
    assert scan(page, ticket_codes[1]) == "already_used"
    assert scan(page, forged) == "invalid"

    context.set_offline(False)
    page.wait_for_selector("#queue[data-count='0']")

    assert page.locator("#network").inner_text() == "Online"
    with live_server.app.app_context():
        ticket = db.session.get(Ticket, ticket_ids[1])
        offline_scans = db.session.execute(sa.select(Scan.result).where(Scan.offline.is_(True))).scalars().all()
    assert ticket.checked_in_at is not None
    assert offline_scans == ["admitted"]
    watch.assert_clean()
    context.close()


def test_door_without_token_asks_for_a_pairing_code_and_pairs(browser: Any, live_server: LiveServer) -> None:
    with live_server.app.app_context():
        event = db.session.get(Event, uuid.UUID(live_server.event_id))
        organizer = db.session.get(Organizer, event.organizer_id)
        _device, pairing_code = create_device(db.session, organizer, "Door", [event.id], utcnow())
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()

    page.goto(f"{live_server.url}/door")
    page.get_by_label("Pairing code").fill("WRONG-CODE")
    page.get_by_role("button", name="Pair").click()
    page.wait_for_selector("#pairing-error:not(:empty)")
    page.get_by_label("Pairing code").fill(pairing_code)
    page.get_by_role("button", name="Pair").click()

    page.wait_for_selector("#door[data-bundle='ready']")
    assert page.locator("#event-title").inner_text() == "Concert test"
    context.close()


def test_door_opens_again_without_network_after_one_visit(browser: Any, live_server: LiveServer) -> None:
    ticket_codes, _ticket_ids, token = door_setup(live_server)
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{live_server.url}/door#token={token}")
    page.wait_for_selector("#door[data-bundle='ready']")
    # Installing the worker fetches the page's files once more: slower on a busy machine.
    wait_for_js(page, "navigator.serviceWorker.controller !== null", timeout_ms=3 * TIMEOUT_MS)
    wait_for_js(
        page,
        """caches.open("guichet-door-v1").then((cache) => cache.keys()).then((keys) => keys.length === 5)""",
        timeout_ms=3 * TIMEOUT_MS,
    )
    cached = page.evaluate(
        """caches.open("guichet-door-v1").then((cache) => cache.keys())
            .then((keys) => keys.map((request) => new URL(request.url).pathname).sort())"""
    )

    context.set_offline(True)
    page.reload()
    page.wait_for_selector("#door[data-bundle='ready']")

    assert "/door" in cached and "/static/js/door.js" in cached
    assert page.locator("#network").inner_text().startswith("Offline")
    assert scan(page, ticket_codes[0]) == "admitted"
    page.wait_for_selector("#queue[data-count='1']")
    context.close()
