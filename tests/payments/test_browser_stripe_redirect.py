"""A real Chromium follows "Buy" to Stripe Checkout: the CSP's form-action must allow it.

Chromium applies ``form-action`` to every redirect after a form POST, so the 303 chain
(event page form -> /pay/stripe/... -> checkout.stripe.com) is blocked unless the policy
names Stripe's origin. Chromium resolves checkout.stripe.com to a local HTTPS server
(``--host-resolver-rules``, a self-signed certificate): nothing leaves the machine.
"""

from __future__ import annotations

import http.server
import shutil
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import IN_CI, make_app, make_event, self_signed_certificate
from tests.payments.conftest import WEBHOOK_SECRET
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


def _chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    if IN_CI:
        pytest.fail(f"CI=true: browser tests must run, but {reason}", pytrace=False)
    pytest.skip(reason)


@contextmanager
def _local_stripe_checkout(folder: Path) -> Iterator[tuple[int, list[str]]]:
    """An HTTPS server standing in for checkout.stripe.com; yields its port and the paths asked."""
    cert_path, key_path = self_signed_certificate(folder, "checkout.stripe.com")
    paths: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            paths.append(self.path)
            body = b"<!doctype html><title>Stripe Checkout</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], paths
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def _buy_in_chromium(
    driver, app, event_id: str, type_id: str, folder: Path, *, blocked: bool = False
) -> tuple[list[str], list[str]]:
    """Submit the buy form in Chromium; returns Stripe URLs requested and CSP complaints."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    complaints: list[str] = []
    try:
        stripe_requests = _drive(driver, server.server_port, event_id, type_id, folder, complaints, blocked=blocked)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
    return stripe_requests, [c for c in complaints if "Content Security Policy" in c]


def _drive(
    driver, app_port: int, event_id: str, type_id: str, folder: Path, complaints: list[str], *, blocked: bool
) -> list[str]:
    with _local_stripe_checkout(folder) as (port, stripe_requests):
        args = [
            *CHROMIUM_ARGS,
            f"--host-resolver-rules=MAP checkout.stripe.com 127.0.0.1:{port}",
            "--ignore-certificate-errors",
        ]
        browser = driver.chromium.launch(executable_path=str(_chromium()), headless=True, args=args)
        try:
            page = browser.new_page()
            page.on("console", lambda message: complaints.append(message.text))
            page.goto(f"http://127.0.0.1:{app_port}/events/{event_id}")
            page.fill("input[name=email]", "browser@example.org")
            page.select_option(f"select[name='qty-{type_id}']", "1")
            if blocked:
                # Chromium reports the violation on the console and stays put.
                with page.expect_console_message(lambda message: "form-action" in message.text, timeout=15000):
                    page.click("form[action$='/orders'] button[type=submit]")
            else:
                page.click("form[action$='/orders'] button[type=submit]")
                page.wait_for_url("https://checkout.stripe.com/**", wait_until="commit", timeout=15000)
        finally:
            browser.close()
        return list(stripe_requests)


def _app(tmp_path: Path, sqlite_template: Path, base: str, **stripe: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "guichet.sqlite3"
    shutil.copy(sqlite_template, path)
    app = make_app(tmp_path / "instance", f"sqlite:///{path}", STRIPE_API_BASE=base, **stripe)
    with app.app_context():
        event = make_event(capacity=5)
        ids = str(event.id), str(event.ticket_types[0].id)
        db.session.remove()
    return app, ids


@pytest.mark.e2e
def test_chromium_follows_buy_to_stripe_checkout(sqlite_template, tmp_path, fake_stripe, playwright_driver):
    _chromium()
    app, (event_id, type_id) = _app(
        tmp_path,
        sqlite_template,
        fake_stripe.base,
        STRIPE_SECRET_KEY="sk_test_e2e",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )

    stripe_requests, complaints = _buy_in_chromium(playwright_driver, app, event_id, type_id, tmp_path)

    assert complaints == []
    pages = [path for path in stripe_requests if path != "/favicon.ico"]
    assert len(pages) == 1 and pages[0].startswith("/c/pay/cs_test_")
    assert len(fake_stripe.sent("POST", "/v1/checkout/sessions")) == 1


@pytest.mark.e2e
def test_chromium_blocks_the_redirect_when_form_action_omits_stripe(
    sqlite_template, tmp_path, fake_stripe, monkeypatch, playwright_driver
):
    """Why the policy names Stripe: without it the buyer never reaches the payment page."""
    from ticketing import security_headers

    _chromium()
    monkeypatch.setattr(
        security_headers, "content_security_policy", lambda _app: security_headers.CONTENT_SECURITY_POLICY
    )
    app, (event_id, type_id) = _app(
        tmp_path,
        sqlite_template,
        fake_stripe.base,
        STRIPE_SECRET_KEY="sk_test_e2e",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )

    stripe_requests, complaints = _buy_in_chromium(playwright_driver, app, event_id, type_id, tmp_path, blocked=True)

    assert stripe_requests == []
    assert any("form-action" in complaint for complaint in complaints)
