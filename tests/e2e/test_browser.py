"""A buyer in a real Chromium, on a phone-sized screen and with the keyboard only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 10_000


@dataclass
class PageWatch:
    """What a page did behind the buyer's back: requests, console errors, script errors."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[tuple[str, str]] = field(default_factory=list)
    documents: dict[str, set[int]] = field(default_factory=dict)

    def attach(self, page: Any) -> None:
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("response", self._on_response)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console_errors.append((f"page error: {error}", page.url)))

    def _on_response(self, response: Any) -> None:
        if response.request.resource_type == "document":
            self.documents.setdefault(response.url, set()).add(response.status)

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append((message.text, message.location.get("url", "")))

    def assert_clean(self, expected_page_statuses: frozenset[int] = frozenset()) -> None:
        """Pages answered with an expected status (a 422 form) may log "Failed to load
        resource"; nothing else may, and a stylesheet or script failing always counts."""
        outside = [
            url for url in self.requests if not url.startswith("data:") and urlsplit(url).hostname != "127.0.0.1"
        ]
        assert not outside, f"requests left the machine: {outside}"
        errors = [
            text
            for text, url in self.console_errors
            if not (
                text.startswith("Failed to load resource") and self.documents.get(url, set()) & expected_page_statuses
            )
        ]
        csp = [text for text in errors if "Content Security Policy" in text]
        assert not csp, f"CSP violations: {csp}"
        assert not errors, f"console errors: {errors}"


@pytest.fixture
def phone(browser: Any) -> Iterator[tuple[Any, PageWatch]]:
    """An iPhone 13-sized screen (touch, mobile viewport) on the Chromium engine."""
    context = browser.new_context(
        viewport={"width": 390, "height": 664},
        screen={"width": 390, "height": 844},
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    watch = PageWatch()
    watch.attach(page)
    yield page, watch
    context.close()


@pytest.fixture
def desktop(browser: Any) -> Iterator[tuple[Any, PageWatch]]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    watch = PageWatch()
    watch.attach(page)
    yield page, watch
    context.close()


def assert_fits_width(page: Any) -> None:
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width, f"{page.url} scrolls sideways: {scroll_width}px > {inner_width}px"


def test_buyer_on_a_phone_buys_two_tickets(live_server: LiveServer, phone: tuple[Any, PageWatch]) -> None:
    page, watch = phone
    quantity = f"#qty-{live_server.ticket_type_id}"

    page.goto(live_server.url + "/")
    assert_fits_width(page)
    page.get_by_role("link", name=re.compile("Concert test")).click()
    page.wait_for_url(f"**/events/{live_server.event_id}")
    assert_fits_width(page)

    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state()
    summary = page.locator(".error-summary")
    assert summary.is_visible()
    assert summary.get_attribute("role") == "alert"
    assert page.locator("#email-error").is_visible()
    assert page.locator("#email").get_attribute("aria-invalid") == "true"
    assert "email-error" in (page.locator("#email").get_attribute("aria-describedby") or "")
    assert_fits_width(page)

    page.select_option(quantity, "2")
    page.get_by_label("Email").fill("phone-buyer@example.org")
    page.get_by_label("Postcode").fill("31000")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/pay/demo/**")
    banner = page.locator(".test-banner")
    assert banner.is_visible()
    assert "Test mode" in banner.inner_text()
    assert "€32.00" in page.locator("main").inner_text()  # 2 × (15.00 + 1.00 fee)
    assert_fits_width(page)

    page.get_by_role("button", name=re.compile("^Pay")).click()
    page.wait_for_url("**/orders/**")

    main = page.locator("main")
    assert "Paid" in main.inner_text()
    assert page.locator("ol.tickets > li").count() == 2
    assert page.get_by_role("heading", name="Your 2 tickets").is_visible()
    assert_fits_width(page)
    watch.assert_clean(expected_page_statuses=frozenset({422}))


def _tab_until(page: Any, selector: str, presses: int = 40) -> None:
    """Press Tab until the element matching ``selector`` has the focus."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("selector => document.activeElement?.matches(selector) ?? false", selector):
            return
    pytest.fail(f"{selector} cannot be reached with Tab in {presses} presses")


def test_buy_form_works_with_the_keyboard_only(live_server: LiveServer, desktop: tuple[Any, PageWatch]) -> None:
    page, watch = desktop
    page.goto(f"{live_server.url}/events/{live_server.event_id}")

    _tab_until(page, f"#qty-{live_server.ticket_type_id}")
    page.keyboard.press("ArrowDown")
    _tab_until(page, "#email")
    page.keyboard.type("keyboard-buyer@example.org")
    _tab_until(page, "#postcode")
    page.keyboard.type("75011")
    _tab_until(page, "button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/pay/demo/**")
    _tab_until(page, "button[value=pay]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/orders/**")

    assert "Paid" in page.locator("main").inner_text()
    assert page.locator("ol.tickets > li").count() == 1
    watch.assert_clean()


def test_language_switch_turns_the_site_french(live_server: LiveServer, phone: tuple[Any, PageWatch]) -> None:
    page, watch = phone
    page.goto(live_server.url + "/")
    assert page.locator("html").get_attribute("lang") == "en"

    page.get_by_role("link", name="Français").click()
    page.wait_for_selector("html[lang=fr]")

    assert urlsplit(page.url).path == "/"
    assert page.get_by_role("heading", level=1).inner_text() == "Prochains événements"
    assert page.get_by_role("link", name="English").is_visible()
    assert page.locator("nav.languages [aria-current]").inner_text() == "Français"
    assert_fits_width(page)
    watch.assert_clean()
