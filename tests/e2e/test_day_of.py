"""Issue 18 in a real Chromium: the order page, tickets and mails; checkout and after-sale;
the privacy pages and the watch page; the events list. One property per test."""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select, update

from tests.catalog.test_posters import photo
from tests.e2e.audit import assert_accessible, assert_fits_width
from tests.e2e.conftest import wait_for_js
from tests.e2e.scanning import mail_as_page
from tests.e2e.shop import Shop, browser_context
from tests.e2e.test_browser import PageWatch
from ticketing.catalog.models import TicketType
from ticketing.checkout.models import Order, Ticket
from ticketing.extensions import db
from ticketing.models import utcnow

pytestmark = pytest.mark.e2e

DANGER_RED = "rgb(163, 38, 27)"


def _page(context: Any) -> tuple[Any, PageWatch]:
    page = context.new_page()
    watch = PageWatch()
    watch.attach(page)
    return page, watch


def _text(page: Any) -> str:
    return page.locator("main").inner_text()


# --- Order page, tickets and mails -------------------------------------------------------


def test_order_page_is_headed_by_the_event_with_its_times_place_and_calendar_file(browser: Any, shop: Shop) -> None:
    event_id, type_id = shop.event(price_cents=0, fee_cents=0)
    order = shop.free_order(event_id, type_id)
    context = browser_context(browser, 320)
    page, watch = _page(context)

    page.goto(shop.url + order["path"])

    assert page.get_by_role("heading", level=1).inner_text() == "Concert test"
    facts = page.locator(".facts").inner_text()
    assert "Salle Test" in facts and "1 rue du Test, 31000 Toulouse" in facts
    assert re.search(r"DOORS OPEN\s+\d\d:\d\d, Paris time", facts)
    assert re.search(r"STARTS\s+\w+day \d+ \w+ \d{4}, \d\d:\d\d, Paris time", facts)
    assert "Europe/Paris" not in _text(page) and order["code"] in _text(page)
    calendar = page.get_by_role("link", name="Add to my calendar (.ics)")
    ics = context.request.get(shop.url + calendar.get_attribute("href"))
    assert ics.headers["content-type"].startswith("text/calendar")
    assert re.search(r"DTSTART;TZID=Europe/Paris:\d{8}T\d{6}\r\n", ics.text())
    assert_fits_width(page)
    assert_accessible(page, "order page")
    watch.assert_clean()
    context.close()


def test_livestream_tickets_show_watch_and_no_code_and_their_mail_says_nothing_of_a_door(
    browser: Any, shop: Shop
) -> None:
    live_id, live_type = shop.event(price_cents=0, fee_cents=0, mode="livestream")
    hybrid_id, hybrid_type = shop.event(price_cents=0, fee_cents=0, mode="hybrid")
    live = shop.free_order(live_id, live_type)
    live_mail = shop.mails()[-1]
    hybrid = shop.free_order(hybrid_id, hybrid_type)
    context = browser_context(browser, 390)
    page, watch = _page(context)

    page.goto(shop.url + live["path"])
    assert page.locator("svg.qr").count() == 0
    watch_button = page.get_by_role("link", name="Watch")
    assert watch_button.is_visible() and "/watch/" in watch_button.get_attribute("href")
    assert re.search(r"The link opens on .+, Paris time\.", _text(page))
    assert "Printable tickets" not in _text(page) and "door" not in _text(page).lower()

    page.goto(shop.url + hybrid["path"])
    assert page.locator("svg.qr").count() == 1
    assert page.get_by_role("link", name="Watch").is_visible()

    mail_text = live_mail.get_body(preferencelist=("plain",)).get_content()
    mail_html = live_mail.get_body(preferencelist=("html",)).get_content()
    for part in (mail_text, mail_html):
        assert "door" not in part.lower() and "/watch/" in part
    assert not [p for p in live_mail.walk() if p.get_content_maintype() == "image"]
    watch.assert_clean()
    context.close()


def test_tickets_mail_names_organiser_event_venue_and_doors_in_both_parts_and_passes_axe(
    browser: Any, shop: Shop
) -> None:
    event_id, type_id = shop.event(price_cents=0, fee_cents=0, title="Nuit du jazz")
    shop.free_order(event_id, type_id, quantity=2, language="fr")
    [mail] = shop.mails()
    text = mail.get_body(preferencelist=("plain",)).get_content()
    context = browser_context(browser, 320, language="fr")
    page = context.new_page()

    page.set_content(mail_as_page(mail))

    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.get_by_role("heading", level=1).inner_text() == "Nuit du jazz"
    shown = page.locator("body").inner_text()
    for part in (shown, text):
        assert "organisé par Salle Test" in part
        assert "Lieu\u00a0: Salle Test, 1 rue du Test, 31000 Toulouse" in part
        assert re.search(r"Ouverture des portes\u00a0: \d\d:\d\d, heure locale à Paris", part)
        assert re.search(r"Début\u00a0: \w+ \d+ \w+ \d{4}, \d\d:\d\d, heure locale à Paris", part)
    assert [p.get_filename() for p in mail.walk() if p.get_content_type() == "text/calendar"] == ["event.ics"]
    assert_fits_width(page, "mail")
    assert_accessible(page, "tickets mail")
    context.close()


def test_printable_tickets_have_a_print_button_and_the_doors_time(browser: Any, shop: Shop) -> None:
    event_id, type_id = shop.event(price_cents=0, fee_cents=0)
    order = shop.free_order(event_id, type_id, quantity=2)
    context = browser_context(browser, 390)
    context.add_init_script("window.print = () => { document.documentElement.dataset.printed = 'yes'; };")
    page, watch = _page(context)
    page.goto(shop.url + order["path"])

    page.get_by_role("link", name="Printable tickets").click()
    page.get_by_role("button", name="Print the tickets").click()

    assert page.locator("html").get_attribute("data-printed") == "yes"
    tickets = page.locator("article.printed-ticket")
    assert tickets.count() == 2
    for index in range(2):
        assert re.search(r"Doors open\s+\d\d:\d\d, Paris time", tickets.nth(index).inner_text())
    assert_accessible(page, "printable tickets")
    watch.assert_clean()
    context.close()


# --- Checkout and after-sale -------------------------------------------------------------


def _held(shop: Shop, type_id: str) -> tuple[int, int]:
    with shop.app.app_context():
        reserved = db.session.get(TicketType, uuid.UUID(type_id)).reserved
        orders = db.session.execute(select(func.count()).select_from(Order)).scalar_one()
        return reserved, orders


def test_running_total_is_computed_by_the_server_without_javascript_and_holds_nothing(browser: Any, shop: Shop) -> None:
    event_id, type_id = shop.event(price_cents=1500, fee_cents=100)
    context = browser_context(browser, 320, javascript=False)
    page, _watch = _page(context)
    page.goto(f"{shop.url}/events/{event_id}")
    total = page.locator("#running-total")
    assert "€0.00" in total.locator("[data-part=total]").inner_text()

    page.select_option(f"#qty-{type_id}", "2")
    page.get_by_label("Email").fill("total@example.org")
    page.get_by_role("button", name="Update the total").click()
    page.wait_for_load_state()

    assert total.locator("[data-part=tickets]").inner_text() == "€30.00"
    assert total.locator("[data-part=fee]").inner_text() == "€2.00"
    assert total.locator("[data-part=total]").inner_text() == "€32.00"
    assert page.locator(f"#qty-{type_id}").input_value() == "2"
    assert page.get_by_label("Email").input_value() == "total@example.org"
    assert _held(shop, type_id) == (0, 0)
    assert_fits_width(page)
    context.close()


def test_running_total_follows_the_choice_live_with_javascript(browser: Any, shop: Shop) -> None:
    event_id, type_id = shop.event(price_cents=1500, fee_cents=100)
    context = browser_context(browser, 390, language="fr")
    page, watch = _page(context)
    page.goto(f"{shop.url}/events/{event_id}")
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)

    page.select_option(f"#qty-{type_id}", "3")

    assert page.locator("#running-total [data-part=total]").inner_text().replace("\u202f", "\u00a0") == "48,00\u00a0€"
    assert not page.get_by_role("button", name="Mettre à jour le total").is_visible()
    assert posts == [] and _held(shop, type_id) == (0, 0)
    assert_accessible(page, "event page")
    watch.assert_clean()
    context.close()


@pytest.mark.parametrize("javascript", [True, False])
def test_enter_in_a_field_continues_to_payment_not_to_the_total(browser: Any, shop: Shop, javascript: bool) -> None:
    event_id, type_id = shop.event(price_cents=1500, fee_cents=100)
    context = browser_context(browser, 390, javascript=javascript)
    page, _watch = _page(context)
    page.goto(f"{shop.url}/events/{event_id}")

    page.select_option(f"#qty-{type_id}", "1")
    page.get_by_label("Email").fill(f"enter-{javascript}@example.org")
    page.get_by_label("Email").press("Enter")

    page.wait_for_url("**/pay/demo/**")
    context.close()


@pytest.mark.parametrize("javascript", [True, False])
def test_after_a_form_error_the_page_opens_on_the_summary_and_each_message_is_under_its_field(
    browser: Any, shop: Shop, javascript: bool
) -> None:
    about = "A long evening of music, told at length as organisers do. " * 12
    event_id, type_id = shop.event(price_cents=1500, fee_cents=100, ask_postcode=True, description=about)
    context = browser_context(browser, 320, javascript=javascript)
    page, _watch = _page(context)
    page.goto(f"{shop.url}/events/{event_id}")

    page.select_option(f"#qty-{type_id}", "1")
    page.get_by_label("Email").fill("not an address")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # where the Continue button is
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"**/events/{event_id}/orders")
    page.wait_for_load_state("load")

    summary = page.locator(".error-summary")
    top, height = page.evaluate(
        "(() => [document.querySelector('.error-summary').getBoundingClientRect().top, window.innerHeight])()"
    )
    assert 0 <= top < height / 2, f"the summary is {top}px down a {height}px screen"
    if javascript:
        assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    assert summary.get_attribute("role") == "alert"
    for field in ("email", "postcode"):
        follows = page.evaluate(
            f"document.getElementById('{field}').nextElementSibling?.id",
        )
        assert follows == f"{field}-error", f"the {field} message is not right under its field"
    context.close()


def test_the_hold_reads_as_minutes_and_counts_down_with_javascript(browser: Any, shop: Shop) -> None:
    event_id, type_id = shop.event(price_cents=1500, fee_cents=100)
    for javascript in (False, True):
        context = browser_context(browser, 390, javascript=javascript)
        page, _watch = _page(context)
        page.goto(f"{shop.url}/events/{event_id}")
        page.select_option(f"#qty-{type_id}", "1")
        page.get_by_label("Email").fill(f"hold-{javascript}@example.org")
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url("**/pay/demo/**")
        hold = page.locator(".hold")

        if javascript:
            first = hold.inner_text()
            assert re.fullmatch(r"Awaiting payment\. Your tickets are held for another (9|10):\d\d\.", first)
            wait_for_js(page, f"document.querySelector('.hold').textContent !== {first!r}")
        else:
            assert hold.inner_text() == "Awaiting payment. Your tickets are held for another 10 minutes."
        assert "Europe/Paris" not in _text(page) and "until" not in hold.inner_text()
        context.close()


def test_a_cancelled_unpaid_order_says_nothing_was_charged_and_leads_back_to_the_event(
    browser: Any, shop: Shop
) -> None:
    event_id, type_id = shop.event(price_cents=1500, fee_cents=100)
    context = browser_context(browser, 390)
    page, watch = _page(context)
    page.goto(f"{shop.url}/events/{event_id}")
    page.select_option(f"#qty-{type_id}", "1")
    page.get_by_label("Email").fill("cancel@example.org")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/pay/demo/**")

    page.get_by_role("button", name="Cancel the order").click()
    page.wait_for_url("**/orders/**")

    assert "This order was cancelled before payment: nothing was charged." in _text(page)
    page.get_by_role("link", name="Back to the event").click()
    page.wait_for_url(f"**/events/{event_id}")
    assert_accessible(page, "event page after a cancelled order")
    watch.assert_clean()
    context.close()


def _pay_with_the_demo(page: Any, shop: Shop, event_id: str, type_id: str, email: str) -> str:
    page.goto(f"{shop.url}/events/{event_id}")
    page.select_option(f"#qty-{type_id}", "2")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/pay/demo/**")
    page.get_by_role("button", name=re.compile("^Pay")).click()
    page.wait_for_url("**/orders/**")
    return page.url


def test_a_refused_refund_is_not_offered_again_and_a_refund_mails_how_much_and_when(browser: Any, shop: Shop) -> None:
    event_id, type_id = shop.event(price_cents=1500, fee_cents=100)
    with shop.app.app_context():
        db.session.execute(update(TicketType).values(refundable_until_hours=24))
        db.session.commit()
    context = browser_context(browser, 390)
    page, watch = _page(context)
    used_order = _pay_with_the_demo(page, shop, event_id, type_id, "used@example.org")
    page.goto(used_order + "/refund")
    with shop.app.app_context():  # a ticket of it gets in at the door meanwhile
        db.session.execute(update(Ticket).values(checked_in_at=utcnow()))
        db.session.commit()

    page.get_by_role("button", name="Refund this order").click()

    assert page.get_by_role("alert").inner_text() == "A ticket of this order was already used."
    assert page.get_by_role("button", name="Refund this order").count() == 0
    page.goto(used_order)
    assert page.get_by_role("link", name="Ask for a refund").count() == 0

    refunded = _pay_with_the_demo(page, shop, event_id, type_id, "refund@example.org")
    page.get_by_role("link", name="Ask for a refund").click()
    page.get_by_role("button", name="Refund this order").click()
    page.wait_for_url(refunded)
    mail = shop.mails()[-1]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert mail["Subject"].startswith("Your refund for Concert test")
    assert "We are refunding €32.00 for order" in text
    assert "within 5 to 10 working days" in text
    mail_page = context.new_page()
    mail_page.set_content(mail_as_page(mail))
    assert_accessible(mail_page, "refund mail")
    watch.assert_clean(expected_page_statuses=frozenset({409}))
    context.close()


# --- Privacy pages and the watch page ----------------------------------------------------


@pytest.mark.parametrize("language", ["en", "fr"])
def test_privacy_pages_fit_a_320_px_screen_and_erasing_looks_like_danger(
    browser: Any, shop: Shop, language: str
) -> None:
    event_id, type_id = shop.event(price_cents=0, fee_cents=0, ask_name=True, ask_postcode=True)
    shop.event(price_cents=0, fee_cents=0, title="Une soirée au titre particulièrement long pour un écran")
    client = shop.app.test_client()  # the event asks for a name and a postcode: the API order gives them
    placed = client.post(
        "/api/v1/orders",
        json={
            "event_id": event_id,
            "items": [{"ticket_type_id": type_id, "quantity": 1}],
            "email": "a-rather-long-address-for-a-phone@example.org",
            "name": "Ana Martin",
            "postcode": "31000",
        },
    ).get_json()
    order = f"/orders/{placed['code']}/{placed['access_token']}"
    context = browser_context(browser, 320, language=language)
    page, watch = _page(context)

    page.goto(shop.url + "/privacy")
    assert_fits_width(page, "privacy page")
    assert_accessible(page, "privacy page")
    if language == "fr":
        assert "police de caractères" in _text(page)

    page.goto(shop.url + order + "/my-data")
    assert_fits_width(page, "my data page")
    labels = page.locator("dl.record dt")
    assert labels.count() == 4
    assert page.evaluate("getComputedStyle(document.querySelector('dl.record dt')).textTransform") == "uppercase"
    erase = page.locator("form.danger-zone button[type=submit]")
    assert "primary" not in (erase.get_attribute("class") or "")
    assert page.evaluate("getComputedStyle(document.querySelector('form.danger-zone button')).color") == DANGER_RED
    assert_accessible(page, "my data page")
    page.goto(shop.url + order)
    assert page.locator("form.danger-zone button.danger").count() == 1
    watch.assert_clean()
    context.close()


def test_watch_page_before_the_start_shows_one_countdown_and_no_empty_box(browser: Any, shop: Shop) -> None:
    event_id, type_id = shop.event(price_cents=0, fee_cents=0, mode="livestream", starts_in=dt.timedelta(days=2))
    order = shop.free_order(event_id, type_id)
    context = browser_context(browser, 320)
    page, watch = _page(context)
    page.goto(shop.url + order["path"])

    page.get_by_role("link", name="Watch").click()
    page.wait_for_url("**/watch/**")

    notices = [text for text in page.locator(".notice").all_inner_texts() if text.strip()]
    visible = page.locator(".notice:visible")
    assert len(notices) == 1 and visible.count() == 1
    assert page.locator("#watch-status").is_hidden()
    wait_for_js(page, "/opens in 1 day \\d\\d:\\d\\d:\\d\\d/.test(document.getElementById('countdown').textContent)")
    assert re.fullmatch(r"The stream opens in 1 day \d\d:\d\d:\d\d, at \d\d:\d\d, Paris time\.", visible.inner_text())
    assert_fits_width(page)
    assert_accessible(page, "watch page")
    watch.assert_clean()
    context.close()


def test_a_screen_another_took_over_can_watch_here_instead(browser: Any, shop: Shop) -> None:
    event_id, type_id = shop.event(price_cents=0, fee_cents=0, mode="livestream", starts_in=dt.timedelta(minutes=5))
    order = shop.free_order(event_id, type_id)
    first_context, second_context = browser_context(browser), browser_context(browser)
    first, _w1 = _page(first_context)
    second, _w2 = _page(second_context)
    first.goto(shop.url + order["path"])
    watch_url = first.get_by_role("link", name="Watch").get_attribute("href")
    first.goto(watch_url)
    wait_for_js(first, "document.getElementById('watch').dataset.state === 'playing'")
    second.goto(watch_url)
    wait_for_js(second, "document.getElementById('watch').dataset.state === 'playing'")

    wait_for_js(first, "document.getElementById('watch').dataset.state === 'stopped'")
    assert first.locator("#watch-status").inner_text() == "This ticket is now playing on another screen."
    first.get_by_role("button", name="Watch here instead").click()

    wait_for_js(first, "document.getElementById('watch').dataset.state === 'playing'")
    wait_for_js(second, "document.getElementById('watch').dataset.state === 'stopped'")
    assert second.get_by_role("button", name="Watch here instead").is_visible()
    assert first.get_by_role("button", name="Watch here instead").is_hidden()
    assert_accessible(second, "watch page taken over")
    first_context.close()
    second_context.close()


# --- Events list -------------------------------------------------------------------------


def test_events_list_shows_date_city_price_and_what_is_left_in_a_grid_on_desktop(browser: Any, shop: Shop) -> None:
    for days in (3, 4, 5, 6):
        event_id, _type_id = shop.event(
            price_cents=1000 * days, fee_cents=50, starts_in=dt.timedelta(days=days), capacity=40 + days
        )
        if days == 3:
            with shop.app.app_context():
                db.session.add(
                    TicketType(event_id=uuid.UUID(event_id), name="Reduced", price_cents=1500, fee_cents=50, capacity=5)
                )
                db.session.commit()
    context = browser_context(browser, 1280)
    page, watch = _page(context)

    page.goto(shop.url + "/")

    cards = page.locator(".event-card")
    assert cards.count() == 4
    first = cards.first.inner_text()
    assert re.search(r"\w{3} \d+ \w{3} · \d\d:\d\d, Paris time", first)
    assert "Toulouse" in first and "From €15.50, fee included" in first and "48 tickets left" in first
    assert "€40.50, fee included" in cards.nth(1).inner_text()
    tops = page.evaluate("[...document.querySelectorAll('.event-card')].map((card) => card.offsetTop)")
    assert tops.count(tops[0]) == 4, f"desktop does not use its width: {tops}"
    assert_accessible(page, "events list")
    page.set_viewport_size({"width": 320, "height": 740})
    assert_fits_width(page, "events list at 320 px")
    watch.assert_clean()
    context.close()


def test_a_poster_is_resized_served_by_the_app_and_offered_with_srcset(browser: Any, shop: Shop) -> None:
    event_id, _type_id = shop.event()
    response = shop.app.test_client().put(
        f"/api/v1/events/{event_id}/poster",
        data={"image": (io.BytesIO(photo(1600, 1000)), "poster.jpg"), "alt": "Le trio sur scène"},
        headers={"Authorization": f"Bearer {shop.organizer_token}"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.get_json()
    context = browser_context(browser, 390)
    page, watch = _page(context)

    page.goto(f"{shop.url}/events/{event_id}")

    poster = page.get_by_role("img", name="Le trio sur scène")
    wait_for_js(page, "document.querySelector('img.event-poster').complete")
    srcset = poster.get_attribute("srcset")
    assert [int(width) for width in re.findall(r" (\d+)w", srcset)] == [320, 640, 960, 1280]
    current = page.evaluate("document.querySelector('img.event-poster').currentSrc")
    assert current.startswith(f"{shop.url}/posters/{event_id}/")
    assert page.evaluate("document.querySelector('img.event-poster').naturalWidth") > 0
    served = context.request.get(current).body()
    assert not Image.open(io.BytesIO(served)).getexif() and b"Ana Martin" not in served
    assert_fits_width(page)
    assert_accessible(page, "event page with a poster")
    watch.assert_clean()
    context.close()
