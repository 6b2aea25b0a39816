"""Issue 18's "done when" (the door aside): the whole buyer journey and the watch page, at
320, 390 and 1280 px, in English and French, in a real Chromium.

Every page and every mail the journey meets is screenshotted into the artefacts folder
(the run's summary prints it), fits its screen's width, and passes axe-core with no
critical or serious violation; every QR code is decoded back from the screenshots with
zbar and verified with the public key.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from tests.e2e.audit import assert_accessible, assert_fits_width
from tests.e2e.scanning import decode_qr_codes, mail_as_page
from tests.e2e.shop import Shop, browser_context
from tests.e2e.test_browser import PageWatch
from ticketing.catalog.models import TicketType
from ticketing.extensions import db, keyring
from ticketing.tickets.payload import verify_ticket_code

pytestmark = pytest.mark.e2e

# What the journey clicks, in each language.
WORDS = {
    "en": {
        "continue": "Continue",
        "email": "Email",
        "postcode": "Postcode",
        "pay": r"^Pay",
        "print": "Printable tickets",
        "my data": "See my data",
        "refund": "Ask for a refund",
        "refund button": "Refund this order",
        "watch": "Watch",
        "find": "Find my orders",
        "send links": "Send my links",
    },
    "fr": {
        "continue": "Continuer",
        "email": "Adresse e-mail",
        "postcode": "Code postal",
        "pay": r"^Payer",
        "print": "Billets à imprimer",
        "my data": "Voir mes données",
        "refund": "Demander un remboursement",
        "refund button": "Rembourser cette commande",
        "watch": "Regarder",
        "find": "Retrouver mes commandes",
        "send links": "Recevoir mes liens",
    },
}


class Journey:
    """Checks and keeps each screen the buyer sees."""

    def __init__(self, folder: Path, width: int, language: str, public_key: bytes) -> None:
        self.folder, self.width, self.language, self.public_key = folder, width, language, public_key
        self.screens: list[str] = []
        self.codes: set[uuid.UUID] = set()

    def check(self, page: Any, name: str, *, codes: int = 0) -> None:
        page.wait_for_load_state("load")
        assert_fits_width(page, f"{name} at {self.width} px ({self.language})")
        assert_accessible(page, f"{name} at {self.width} px ({self.language})")
        shot = self.folder / f"{self.width}-{self.language}-{len(self.screens):02d}-{name}.png"
        page.screenshot(path=str(shot), full_page=True)
        self.screens.append(shot.name)
        decoded = decode_qr_codes(shot)
        assert len(decoded) == codes, f"{name} at {self.width} px: {len(decoded)} codes decoded, {codes} shown"
        for payload in decoded:
            claims = verify_ticket_code(payload, self.public_key)
            assert claims is not None, f"{name}: a decoded code does not verify"
            self.codes.add(claims.ticket_id)


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("width", [320, 390, 1280])
def test_buyer_journey_and_watch_page_pass_axe_fit_the_screen_and_scan(
    browser: Any, shop: Shop, artefacts: Path, width: int, language: str
) -> None:
    words = WORDS[language]
    event_id, type_id = shop.event(price_cents=1500, fee_cents=100, ask_postcode=True)
    live_id, live_type = shop.event(price_cents=0, fee_cents=0, mode="livestream", starts_in=dt.timedelta(days=2))
    with shop.app.app_context():
        db.session.execute(
            update(TicketType).where(TicketType.id == uuid.UUID(type_id)).values(refundable_until_hours=2)
        )
        db.session.commit()
        public_key = keyring().signing_public_key
    journey = Journey(artefacts, width, language, public_key)
    print(f"journey screenshots at {width} px ({language}): {artefacts}")
    context = browser_context(browser, width, language=language)
    page = context.new_page()
    watch = PageWatch()
    watch.attach(page)

    page.goto(shop.url + "/")
    journey.check(page, "events")
    page.locator(f"a[href='/events/{event_id}']").click()
    journey.check(page, "event")
    page.get_by_role("button", name=words["continue"]).click()
    page.wait_for_url(f"**/events/{event_id}/orders")
    journey.check(page, "event-errors")
    page.select_option(f"#qty-{type_id}", "2")
    page.get_by_label(words["email"], exact=True).fill("journey@example.org")
    page.get_by_label(words["postcode"]).fill("31000")
    page.get_by_role("button", name=words["continue"]).click()
    page.wait_for_url("**/pay/demo/**")
    journey.check(page, "payment")
    page.get_by_role("button", name=re.compile(words["pay"])).click()
    page.wait_for_url("**/orders/**")
    order_url = page.url
    journey.check(page, "order", codes=2)
    page.get_by_role("link", name=words["print"]).click()
    journey.check(page, "print", codes=2)
    page.goto(order_url)
    page.get_by_role("link", name=words["my data"]).click()
    journey.check(page, "my-data")
    page.goto(shop.url + "/privacy")
    journey.check(page, "privacy")
    page.goto(shop.url + "/")
    page.get_by_role("link", name=words["find"]).click()
    journey.check(page, "find")
    page.get_by_label(words["email"], exact=True).fill("journey@example.org")
    page.get_by_role("button", name=words["send links"]).click()
    journey.check(page, "find-sent")
    page.goto(order_url)
    page.get_by_role("link", name=words["refund"]).click()
    journey.check(page, "refund")
    page.get_by_role("button", name=words["refund button"]).click()
    page.wait_for_url(order_url)
    journey.check(page, "refunded")

    live = shop.free_order(live_id, live_type, language=language)
    page.goto(shop.url + live["path"])
    journey.check(page, "livestream-order")
    page.get_by_role("link", name=words["watch"], exact=True).click()
    page.wait_for_url("**/watch/**")
    journey.check(page, "watch")

    mails = shop.mails()
    assert len(mails) == 4  # tickets, find my orders, refund, livestream tickets
    mail_page = context.new_page()  # never loaded the site: its CSP would refuse the mails' inline styles
    for number, mail in enumerate(mails):
        mail_page.set_content(mail_as_page(mail))
        assert mail_page.locator("html").get_attribute("lang") == language
        tickets = sum(1 for part in mail.walk() if part.get_content_type() == "image/png")
        journey.check(mail_page, f"mail-{number}", codes=tickets)
    assert len(journey.codes) == 2  # the two paid tickets, found on the page, the print view and the mail
    watch.assert_clean(expected_page_statuses=frozenset({422}))
    context.close()


def test_the_audit_itself_finds_a_serious_violation(browser: Any) -> None:
    """The harness must be able to fail: an image without text and an unnamed button."""
    context = browser_context(browser, 320)
    page = context.new_page()
    page.set_content('<html lang="en"><body><main><img src="data:,"><button></button></main></body></html>')

    with pytest.raises(AssertionError, match="image-alt|button-name"):
        assert_accessible(page, "a bad page")
    context.close()
