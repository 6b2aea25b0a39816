"""The back office in a real Chromium: the demo owner's link, on a phone and on a desktop
(dark), an invitation sent, and axe-core on every page.

Screenshots of each page at each width are kept in the folder the test prints
(``TICKETING_E2E_ARTIFACTS``, or pytest's temporary folder).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import make_app
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import dispose
from tests.e2e.test_browser import TIMEOUT_MS, PageWatch
from ticketing.backoffice.commands import DEMO_OWNER_EMAIL, owner_login_token
from ticketing.cli import seed_demo
from ticketing.models import utcnow

pytestmark = pytest.mark.e2e

PASSWORD = "demo owner's own password"
VIEWPORTS = {
    "phone": {"viewport": {"width": 390, "height": 664}, "is_mobile": True, "has_touch": True, "color_scheme": "light"},
    "desktop": {"viewport": {"width": 1280, "height": 800}, "color_scheme": "dark"},
}


@dataclass(frozen=True)
class DemoServer:
    app: Flask
    url: str
    first_link: str
    event_id: str


@pytest.fixture
def demo_server(sqlite_url: str, tmp_path: Path) -> Iterator[DemoServer]:
    """The demo's organiser, events and owner on a real HTTP server (127.0.0.1, random port)."""
    app = make_app(tmp_path / "instance", sqlite_url)
    with app.app_context():
        organizer, _token, events = seed_demo(utcnow())
        token = owner_login_token(organizer.id, DEMO_OWNER_EMAIL, utcnow())
        event_id = str(events[0].id)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="guichet-backoffice-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield DemoServer(app, url, f"{url}/manage/link/{token}", event_id)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        dispose(app)


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TICKETING_E2E_ARTIFACTS") or tmp_path) / "backoffice-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nback-office screenshots: {folder}")
    return folder


def visit(page: Any, url: str, name: str, width: str, folder: Path) -> None:
    """Open a page, check it with axe-core, keep a screenshot."""
    response = page.goto(url)
    assert response is not None and response.status == 200, f"{url}: {response and response.status}"
    assert_accessible(page, f"{name} ({width})")
    page.screenshot(path=str(folder / f"{width}-{name}.png"), full_page=True)


def test_the_demo_owner_logs_in_invites_a_manager_and_every_page_passes_axe(
    browser: Any, demo_server: DemoServer, artefacts: Path
) -> None:
    base = demo_server.url
    for width, options in VIEWPORTS.items():
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        watch = PageWatch()
        watch.attach(page)

        if width == "phone":
            # The demo's printed link: choose a password, and be logged in.
            visit(page, demo_server.first_link, "set-password", width, artefacts)
            page.fill("#password", PASSWORD)
            page.fill("#password_again", PASSWORD)
            page.click("button[type=submit]")
        else:
            visit(page, f"{base}/manage/login", "login", width, artefacts)
            visit(page, f"{base}/manage/password/forgot", "forgot-password", width, artefacts)
            page.goto(f"{base}/manage/login")
            page.fill("#email", DEMO_OWNER_EMAIL)
            page.fill("#password", PASSWORD)
            page.click("main button[type=submit]")
        page.wait_for_url(f"{base}/manage/")
        assert "Demo venue (Guichet)" in page.locator(".bo-organizer").inner_text()

        pages = {
            "home": "/manage/",
            "event": f"/manage/events/{demo_server.event_id}",
            "staff": "/manage/staff",
            "settings": "/manage/settings",
            "tokens": "/manage/tokens",
            "account": "/manage/account",
            "totp-setup": "/manage/account/totp",
        }
        for name, path in pages.items():
            visit(page, base + path, name, width, artefacts)

        if width == "phone":
            page.goto(f"{base}/manage/staff")
            page.fill("#email", "new.manager@guichet.invalid")
            page.select_option("#role", "manager")
            page.click("form[action$='/staff/invite'] button[type=submit]")
            page.wait_for_url(f"{base}/manage/staff")
            assert "Invitation sent" in page.locator("[role=status]").inner_text()
            assert "new.manager@guichet.invalid" in page.locator(".bo-list").inner_text()
            assert_accessible(page, f"staff after an invitation ({width})")
            page.screenshot(path=str(artefacts / f"{width}-staff-invited.png"), full_page=True)
            # A page with an error summary is checked too.
            page.fill("#email", "not an address")
            page.click("form[action$='/staff/invite'] button[type=submit]")
            page.wait_for_selector(".error-summary")
            assert_accessible(page, f"staff with an error ({width})")
            watch.assert_clean(expected_page_statuses=frozenset({422}))
        else:
            watch.assert_clean()
        page.click(".bo-logout button")
        page.wait_for_url(f"{base}/manage/login")
        context.close()

    assert sorted(p.name for p in artefacts.glob("*.png"))
