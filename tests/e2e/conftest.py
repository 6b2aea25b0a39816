"""Fixtures for end-to-end tests: a SQLite copy per test, a live server, a real Chromium.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright; we never download a
browser. Outside CI a missing Chromium skips the browser tests with the reason; with
``CI=true`` it fails them, so CI cannot go green without having run them.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import IN_CI, make_app, make_event, make_organizer
from tests.e2e.shop import Shop, serve
from ticketing.extensions import db

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A private copy of the migrated SQLite template (e2e tests run on SQLite only)."""
    path = tmp_path / "guichet.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def dispose(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@dataclass(frozen=True)
class LiveServer:
    app: Flask
    url: str
    event_id: str
    ticket_type_id: str


@pytest.fixture
def live_server(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A real HTTP server on 127.0.0.1 (random port) with one published event."""
    app = make_app(tmp_path / "instance", sqlite_url)
    with app.app_context():
        event = make_event(capacity=10, price_cents=1500, fee_cents=100, ask_postcode=True)
        event_id, ticket_type_id = str(event.id), str(event.ticket_types[0].id)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="guichet-live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app, f"http://127.0.0.1:{server.server_port}", event_id, ticket_type_id)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        dispose(app)


def _chromium_or_skip() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    reason = f"{CHROMIUM} is missing (install Debian's chromium: apt-get install chromium)"
    if IN_CI:
        pytest.fail(f"CI=true: browser tests must run, but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser(playwright_driver: Any) -> Iterator[Any]:
    """One headless Chromium for the whole run; each test opens its own context."""
    executable = _chromium_or_skip()
    chromium = playwright_driver.chromium.launch(executable_path=str(executable), headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


def wait_for_js(page: Any, expression: str, timeout_ms: float = 15_000) -> Any:
    """Wait until a JavaScript expression is truthy on the page, and return its value.

    Playwright's ``wait_for_function`` compiles its predicate inside the page, which our
    Content-Security-Policy (no 'unsafe-eval') refuses whenever it has to poll; each
    ``evaluate`` here goes through the DevTools protocol instead, which the CSP allows.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_ms:.0f} ms: {expression}")
        page.wait_for_timeout(50)


ARTEFACTS_ENV = "GUICHET_E2E_ARTEFACTS"


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """Where browser tests keep their screenshots: ``$GUICHET_E2E_ARTEFACTS`` (CI can
    archive it), else a folder of pytest's temporary directory. The run's summary names it."""
    chosen = os.environ.get(ARTEFACTS_ENV)
    folder = Path(chosen) if chosen else tmp_path_factory.getbasetemp() / "e2e-artefacts"
    folder.mkdir(parents=True, exist_ok=True)
    pytestconfig.stash[ARTEFACTS_KEY] = folder
    return folder


ARTEFACTS_KEY = pytest.StashKey[Path]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    folder = config.stash.get(ARTEFACTS_KEY, None)
    if folder is not None:
        terminalreporter.write_line(f"browser screenshots kept in {folder}")


@pytest.fixture
def shop(sqlite_url: str, tmp_path: Path) -> Iterator[Shop]:
    """A live server with an organiser and no event yet (see ``tests/e2e/shop.py``)."""
    # Heartbeats every second, so that a screen learns within a second that another took over.
    app = make_app(tmp_path / "instance", sqlite_url, TICKETING_STREAM_HEARTBEAT_SECONDS="1")
    with app.app_context():
        organizer, token = make_organizer("Salle Test")
        organizer_id = organizer.id
    for url in serve(app):
        yield Shop(app, url, token, organizer_id)
