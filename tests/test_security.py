"""Web security of every response, secrets kept out of logs and error pages, and the
configuration refusing to run unsafely."""

from __future__ import annotations

import json
import logging
import re
import stat
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select

import config
from tests.conftest import make_app, make_event, make_organizer, post_form
from ticketing import create_app
from ticketing.catalog.models import Organizer
from ticketing.crypto import new_key_values
from ticketing.extensions import db, keyring
from ticketing.log_redaction import RedactSecretPaths

MARKER = "secret-marker@example.org"


# --- Helpers --------------------------------------------------------------------------


def place_order(client, event_id: str, type_id: str, email: str = "buyer@example.org") -> dict[str, Any]:
    response = client.post(
        "/api/v1/orders",
        json={"event_id": event_id, "email": email, "items": [{"ticket_type_id": type_id, "quantity": 1}]},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def local(url: str) -> str:
    return url.replace("http://localhost", "")


@pytest.fixture
def shop(app) -> dict[str, str]:
    with app.app_context():
        paid = make_event(ask_name=True, ask_postcode=True)
        free = make_event(price_cents=0, fee_cents=0)
        plain = make_event()
        return {
            "event": str(paid.id),
            "type": str(paid.ticket_types[0].id),
            "plain_event": str(plain.id),
            "plain_type": str(plain.ticket_types[0].id),
            "free_event": str(free.id),
            "free_type": str(free.ticket_types[0].id),
        }


@pytest.fixture
def pages(app, client, shop) -> dict[str, Any]:
    """One response of every kind a person can see, GET and POST, success and failure."""
    pending = client.post(
        "/api/v1/orders",
        json={
            "event_id": shop["event"],
            "email": "buyer@example.org",
            "name": "Ana",
            "postcode": "31000",
            "items": [{"ticket_type_id": shop["type"], "quantity": 1}],
        },
    ).get_json()
    paid = place_order(client, shop["free_event"], shop["free_type"])
    order_url = f"/orders/{pending['code']}/{pending['access_token']}"
    return {
        "index": client.get("/"),
        "event": client.get(f"/events/{shop['event']}"),
        "event with errors": post_form(
            client, f"/events/{shop['event']}", f"/events/{shop['event']}/orders", {"email": "nope"}
        ),
        "find": client.get("/orders/find"),
        "find with errors": post_form(client, "/orders/find", "/orders/find", {"email": "nope"}),
        "find sent": post_form(client, "/orders/find", "/orders/find", {"email": "someone@example.org"}),
        "order pending": client.get(order_url),
        "order paid": client.get(local(paid["payment"]["url"])),
        "order wrong token": client.get(f"/orders/{pending['code']}/wrong"),
        "demo payment": client.get(local(pending["payment"]["url"])),
        "not found": client.get("/no/such/page"),
        "csrf missing": client.post("/orders/find", data={"email": "a@example.org"}),
        "method not allowed": client.delete("/orders/find"),
    }


@pytest.fixture
def api_responses(client, shop) -> dict[str, Any]:
    placed = place_order(client, shop["free_event"], shop["free_type"])
    return {
        "events": client.get("/api/v1/events"),
        "event": client.get(f"/api/v1/events/{shop['event']}"),
        "openapi": client.get("/api/v1/openapi.json"),
        "order read": client.get(
            f"/api/v1/orders/{placed['code']}", headers={"Authorization": f"Bearer {placed['access_token']}"}
        ),
        "order 401": client.get(f"/api/v1/orders/{placed['code']}"),
        "order 422": client.post("/api/v1/orders", json={}),
        "order 400": client.post("/api/v1/orders", data="x", content_type="text/plain"),
        "organizer 401": client.get("/api/v1/organizer/events"),
        "api 404": client.get("/api/v1/nothing"),
        "healthz": client.get("/healthz"),
        "static": client.get("/static/css/guichet.css"),
    }


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def assert_strict_headers(name: str, response) -> None:  # type: ignore[no-untyped-def]
    csp = response.headers.get("Content-Security-Policy")
    assert csp, f"{name}: no Content-Security-Policy"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, f"{name}: {csp}"
    directives = csp_directives(csp)
    assert directives.get("frame-ancestors") == ["'none'"], f"{name}: {csp}"
    assert directives.get("default-src") == ["'self'"], f"{name}: {csp}"
    assert directives.get("script-src", ["'self'"]) == ["'self'"], f"{name}: {csp}"
    assert directives.get("object-src") == ["'none'"], f"{name}: {csp}"
    for directive, sources in directives.items():
        for source in sources:
            assert source in ("'self'", "'none'", "data:", "blob:"), f"{name}: {directive} allows {source}"
    assert response.headers.get("X-Content-Type-Options") == "nosniff", name
    assert response.headers.get("Referrer-Policy") == "no-referrer", name


# --- Headers ---------------------------------------------------------------------------


def test_every_page_carries_the_strict_security_headers(pages):
    for name, response in pages.items():
        assert_strict_headers(name, response)


def test_every_api_response_carries_the_strict_security_headers(api_responses):
    for name, response in api_responses.items():
        assert_strict_headers(name, response)


def test_the_pages_fixture_covers_success_and_failure(pages):
    statuses = {name: response.status_code for name, response in pages.items()}

    assert statuses["index"] == statuses["event"] == statuses["order pending"] == statuses["demo payment"] == 200
    assert statuses["event with errors"] == statuses["find with errors"] == 422
    assert statuses["csrf missing"] == 400
    assert statuses["not found"] == statuses["order wrong token"] == 404
    assert statuses["method not allowed"] == 405


@pytest.mark.parametrize("name", ["order pending", "order paid", "order wrong token", "demo payment"])
def test_order_and_payment_pages_are_never_stored(pages, name):
    response = pages[name]

    assert "no-store" in response.headers.get("Cache-Control", "")


def test_api_answers_carrying_an_order_token_are_never_stored(client, shop):
    placed = client.post(
        "/api/v1/orders",
        json={
            "event_id": shop["free_event"],
            "email": "buyer@example.org",
            "items": [{"ticket_type_id": shop["free_type"], "quantity": 1}],
        },
    )

    read = client.get(
        f"/api/v1/orders/{placed.get_json()['code']}",
        headers={"Authorization": f"Bearer {placed.get_json()['access_token']}"},
    )

    assert "no-store" in placed.headers.get("Cache-Control", "")
    assert "no-store" in read.headers.get("Cache-Control", "")


# --- Page content ----------------------------------------------------------------------


def test_pages_hold_no_inline_script_and_no_inline_style(pages):
    """Pages work without JavaScript; the one script they load (countdowns, the running
    total, the focus on errors) is the site's own file, deferred, never inline."""
    for name, response in pages.items():
        html = response.get_data(as_text=True)
        assert response.mimetype == "text/html", name
        scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.IGNORECASE | re.DOTALL)
        assert scripts == [""], name
        assert re.search(r'<script src="/static/js/pages\.js" defer></script>', html), name
        assert not re.search(r"<[^>]+\sstyle\s*=", html, re.IGNORECASE), name
        assert "<style" not in html.lower(), name
        assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE), f"{name}: inline event handler"


def test_pages_reference_no_other_origin(pages):
    for name, response in pages.items():
        html = response.get_data(as_text=True)
        for url in re.findall(r"https?://[^\s\"'<>]*", html, re.IGNORECASE):
            assert url.startswith("http://localhost/"), f"{name} refers to {url}"
        assert not re.search(r"""(?:src|href|action)\s*=\s*["']//""", html, re.IGNORECASE), name


def test_stylesheet_is_served_from_our_own_origin(pages):
    html = pages["index"].get_data(as_text=True)

    sheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)

    assert sheets and all(sheet.startswith("/static/") for sheet in sheets)


# --- Cookies ---------------------------------------------------------------------------


def session_cookie(response) -> str:  # type: ignore[no-untyped-def]
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("guichet_session=")]
    assert len(cookies) == 1, response.headers.getlist("Set-Cookie")
    return cookies[0]


def cookie_flags(cookie: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}


def test_session_cookie_is_httponly_and_samesite(client, shop):
    response = client.get(f"/events/{shop['event']}")

    cookie = session_cookie(response)
    assert {"httponly", "samesite"} <= cookie_flags(cookie)
    assert re.search(r"SameSite=(Lax|Strict)", cookie)
    assert "secure" not in cookie_flags(cookie)


def test_pages_without_a_form_set_no_cookie(client, shop):
    responses = [client.get("/"), client.get("/api/v1/events"), client.get(f"/api/v1/events/{shop['event']}")]

    for response in responses:
        assert response.headers.getlist("Set-Cookie") == []


def test_session_cookie_is_secure_when_asked(database, tmp_path):
    app = make_app(tmp_path / "secure", database, TICKETING_SECURE_COOKIES="true")

    response = app.test_client().get("/orders/find")

    assert "secure" in cookie_flags(session_cookie(response))
    assert "httponly" in cookie_flags(session_cookie(response))


def production_environ(tmp_path: Path, **changes: str) -> dict[str, str]:
    keys = new_key_values()
    environ = {
        "TICKETING_ENV": "production",
        "TICKETING_INSTANCE_PATH": str(tmp_path / "prod-instance"),
        "TICKETING_DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "TICKETING_BASE_URL": "https://tickets.example.org",
        "STRIPE_SECRET_KEY": "sk_test_production_mode",
        "STRIPE_WEBHOOK_SECRET": "whsec_production_mode",
        "TICKETING_SECRET_KEY": keys["secret_key"],
        "TICKETING_MASTER_KEYS": keys["master_keys"],
        "TICKETING_BLIND_INDEX_KEY": keys["blind_index_key"],
        "TICKETING_SIGNING_KEY": keys["signing_key"],
        "TICKETING_STREAM_SECRETS": keys["stream_secrets"],
    }
    environ.update(changes)
    return environ


def test_session_cookie_is_secure_by_default_in_production(tmp_path):
    app = create_app(config.ProductionConfig(production_environ(tmp_path)))

    response = app.test_client().get("/orders/find")

    assert "secure" in cookie_flags(session_cookie(response))
    assert "httponly" in cookie_flags(session_cookie(response))


def test_production_can_turn_secure_cookies_off_explicitly(tmp_path):
    settings = config.ProductionConfig(production_environ(tmp_path, TICKETING_SECURE_COOKIES="false"))

    assert settings.SESSION_COOKIE_SECURE is False


def test_development_cookies_are_not_secure_by_default(tmp_path):
    settings = config.DevelopmentConfig({"TICKETING_INSTANCE_PATH": str(tmp_path)})

    assert settings.SESSION_COOKIE_SECURE is False
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_SAMESITE in ("Lax", "Strict")


# --- Secrets in logs -------------------------------------------------------------------


def logged_text(caplog) -> str:  # type: ignore[no-untyped-def]
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        parts.append(record.exc_text or "")
        parts.append(record.stack_info or "")
    return "\n".join(parts)


def capture_everything(caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    for name in ("werkzeug", "ticketing", "sqlalchemy.engine", "flask_limiter"):
        caplog.set_level(logging.DEBUG, logger=name)


def serve_once(app, path: str) -> int:  # type: ignore[no-untyped-def]
    """One request through werkzeug's real server on loopback, so its request log runs."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=10) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_order_page_logs_no_token(app, client, shop, caplog):
    placed = place_order(client, shop["free_event"], shop["free_type"])
    capture_everything(caplog)

    page = client.get(f"/orders/{placed['code']}/{placed['access_token']}")

    assert page.status_code == 200
    assert placed["access_token"] not in logged_text(caplog)


def test_request_log_of_the_order_page_names_the_code_but_not_the_token(app, client, shop, caplog):
    placed = place_order(client, shop["free_event"], shop["free_type"])
    capture_everything(caplog)

    status = serve_once(app, f"/orders/{placed['code']}/{placed['access_token']}")

    assert status == 200
    request_lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any(f"/orders/{placed['code']}/[token]" in line for line in request_lines), request_lines
    assert placed["access_token"] not in logged_text(caplog)


def test_request_log_of_the_payment_page_logs_no_token(app, client, shop, caplog):
    placed = place_order(client, shop["plain_event"], shop["plain_type"])
    capture_everything(caplog)

    status = serve_once(app, local(placed["payment"]["url"]))

    assert status == 200
    assert any("/pay/demo/" in r.getMessage() for r in caplog.records if r.name == "werkzeug")
    assert placed["access_token"] not in logged_text(caplog)


def test_order_link_typed_in_lowercase_logs_no_token(app, client, shop, caplog):
    placed = place_order(client, shop["free_event"], shop["free_type"])
    capture_everything(caplog)

    status = serve_once(app, f"/orders/{placed['code'].lower()}/{placed['access_token']}")

    assert status == 200
    assert placed["access_token"] not in logged_text(caplog)


def test_request_log_lines_name_no_client_address(app, shop, caplog):
    capture_everything(caplog)

    status = serve_once(app, f"/events/{shop['event']}")

    assert status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert lines
    assert not any("127.0.0.1" in line for line in lines), lines


def werkzeug_record(request_line: str) -> logging.LogRecord:
    """A record shaped the way werkzeug's dev server logs a request."""
    return logging.LogRecord(
        "werkzeug",
        logging.INFO,
        __file__,
        1,
        '127.0.0.1 - - [01/Jan/2030 20:00:00] "%s" %s %s\n',
        (request_line, "200", "-"),
        None,
    )


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("GET /orders/K7Q2M-9XDAB/s3cr3t-T0ken_value HTTP/1.1", "/orders/K7Q2M-9XDAB/[token]"),
        ("POST /pay/demo/K7Q2M-9XDAB/s3cr3t-T0ken_value HTTP/1.1", "/pay/demo/K7Q2M-9XDAB/[token]"),
        ("GET /orders/K7Q2M-9XDAB/s3cr3t-T0ken_value?lang=fr HTTP/1.1", "/orders/K7Q2M-9XDAB/[token]"),
        ("GET /orders/k7q2m-9xdab/s3cr3t-T0ken_value HTTP/1.1", "/orders/k7q2m-9xdab/[token]"),
        ("GET /orders/K7Q2M-9XDAB/%73%33cr3t-T0ken_value HTTP/1.1", "/orders/K7Q2M-9XDAB/[token]"),
        ("POST /manage/link/s3cr3t-T0ken_value HTTP/1.1", "/manage/link/[token]"),
    ],
    ids=["order", "payment", "query", "lowercase-code", "percent-encoded-token", "staff-link"],
)
def test_redact_secret_paths_cuts_the_token_out_of_a_record(line, kept):
    record = werkzeug_record(line)

    RedactSecretPaths().filter(record)

    assert "cr3t-T0ken_value" not in record.getMessage()
    assert kept in record.getMessage()


def test_redact_secret_paths_redacts_a_preformatted_message():
    record = logging.LogRecord(
        "gunicorn.access", logging.INFO, __file__, 1, '"GET /orders/K7Q2M-9XDAB/s3cr3t HTTP/1.1" 200', None, None
    )

    keep = RedactSecretPaths().filter(record)

    assert keep is True
    assert record.getMessage() == '"GET /orders/K7Q2M-9XDAB/[token] HTTP/1.1" 200'


def test_redact_secret_paths_leaves_other_paths_alone():
    record = werkzeug_record("GET /orders/find HTTP/1.1")

    RedactSecretPaths().filter(record)

    assert '"GET /orders/find HTTP/1.1" 200 -' in record.getMessage()


def test_redaction_is_installed_on_the_request_loggers(app):
    for name in ("werkzeug", "gunicorn.access"):
        filters = logging.getLogger(name).filters

        assert any(isinstance(f, RedactSecretPaths) for f in filters), name


# --- Unexpected errors -----------------------------------------------------------------


def raise_with(message: str):  # type: ignore[no-untyped-def]
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise ValueError(message)

    return fail


def test_unexpected_error_on_a_page_is_a_500_page_without_the_message(app, client, monkeypatch, caplog):
    monkeypatch.setattr("ticketing.catalog.routes.list_upcoming_events", raise_with(MARKER))
    capture_everything(caplog)

    response = client.get("/")

    assert response.status_code == 500
    assert response.mimetype == "text/html"
    assert MARKER not in response.get_data(as_text=True)
    assert_strict_headers("500 page", response)
    assert any(r.levelno >= logging.ERROR and "ValueError" in r.getMessage() for r in caplog.records)
    assert MARKER not in logged_text(caplog)


def test_unexpected_error_in_the_api_is_a_500_problem_without_the_message(app, client, monkeypatch, caplog):
    monkeypatch.setattr("ticketing.catalog.services.list_upcoming_events", raise_with(MARKER))
    capture_everything(caplog)

    response = client.get("/api/v1/events")

    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "internal_error"
    assert MARKER not in response.get_data(as_text=True)
    assert_strict_headers("500 problem", response)
    assert MARKER not in logged_text(caplog)


def test_unexpected_error_quoting_the_buyers_email_leaks_it_nowhere(app, client, shop, monkeypatch, caplog):
    def place_order_quoting_input(session, keyring, event_id, request, **kwargs):  # type: ignore[no-untyped-def]
        raise ValueError(f"cannot place order for {request.email}")

    monkeypatch.setattr("ticketing.checkout.orders.place_order", place_order_quoting_input)
    capture_everything(caplog)
    body = {
        "event_id": shop["free_event"],
        "email": MARKER,
        "items": [{"ticket_type_id": shop["free_type"], "quantity": 1}],
    }

    api = client.post("/api/v1/orders", json=body)
    page = post_form(
        client,
        f"/events/{shop['free_event']}",
        f"/events/{shop['free_event']}/orders",
        {"email": MARKER, f"qty-{shop['free_type']}": "1"},
    )

    assert api.status_code == page.status_code == 500
    assert MARKER not in api.get_data(as_text=True)
    assert MARKER not in page.get_data(as_text=True)
    assert MARKER not in logged_text(caplog)


# --- Configuration ---------------------------------------------------------------------

REQUIRED_IN_PRODUCTION = [
    "TICKETING_DATABASE_URL",
    "TICKETING_BASE_URL",
    "TICKETING_SECRET_KEY",
    "TICKETING_MASTER_KEYS",
    "TICKETING_BLIND_INDEX_KEY",
    "TICKETING_SIGNING_KEY",
    "TICKETING_STREAM_SECRETS",
]


@pytest.mark.parametrize("variable", REQUIRED_IN_PRODUCTION)
def test_production_refuses_to_start_without_a_required_variable_and_names_it(tmp_path, variable):
    environ = production_environ(tmp_path)
    del environ[variable]

    with pytest.raises(config.ConfigError, match=variable):
        config.ProductionConfig(environ)


@pytest.mark.parametrize("variable", REQUIRED_IN_PRODUCTION)
def test_production_treats_an_empty_variable_as_missing(tmp_path, variable):
    environ = production_environ(tmp_path, **{variable: ""})

    with pytest.raises(config.ConfigError, match=variable):
        config.ProductionConfig(environ)


@pytest.mark.parametrize("variable", REQUIRED_IN_PRODUCTION)
def test_ticketing_env_production_refuses_to_start_without_a_variable(tmp_path, monkeypatch, variable):
    for name, value in production_environ(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(variable)

    with pytest.raises(config.ConfigError, match=variable):
        create_app()

    assert not (tmp_path / "prod-instance" / "keys.json").exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TICKETING_SECRET_KEY", "too-short"),
        ("TICKETING_MASTER_KEYS", "no-colon-here"),
        ("TICKETING_BLIND_INDEX_KEY", "c2hvcnQ"),
        ("TICKETING_SIGNING_KEY", "s1:not*base64"),
        ("TICKETING_STREAM_SECRETS", "too-short"),
    ],
)
def test_production_refuses_a_malformed_key_and_names_it(tmp_path, variable, value):
    environ = production_environ(tmp_path, **{variable: value})

    with pytest.raises(config.ConfigError, match=variable):
        create_app(config.ProductionConfig(environ))


def test_production_with_every_variable_starts(tmp_path):
    app = create_app(config.ProductionConfig(production_environ(tmp_path)))

    assert app.config["ENV_NAME"] == "production"
    assert not (tmp_path / "prod-instance" / "keys.json").exists()


def test_an_sqlite_older_than_3_35_is_refused_at_start_up_with_its_version(tmp_path, monkeypatch):
    from sqlite3 import dbapi2  # the module SQLAlchemy's pysqlite dialect drives

    monkeypatch.setattr(dbapi2, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(dbapi2, "sqlite_version", "3.34.1")

    with pytest.raises(config.ConfigError, match=r"SQLite 3\.34\.1 is too old: Guichet needs 3\.35 or newer"):
        development_app(tmp_path / "instance")


def test_sqlite_3_35_is_enough(tmp_path, monkeypatch):
    from sqlite3 import dbapi2

    monkeypatch.setattr(dbapi2, "sqlite_version_info", (3, 35, 0))

    assert development_app(tmp_path / "instance").config["ENV_NAME"] == "development"


def development_app(instance: Path):  # type: ignore[no-untyped-def]
    return create_app(config.DevelopmentConfig({"TICKETING_INSTANCE_PATH": str(instance)}))


def test_development_creates_a_private_key_file_in_the_instance_folder(tmp_path):
    instance = tmp_path / "instance"

    development_app(instance)

    key_file = instance / "keys.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    assert set(json.loads(key_file.read_text())) == {
        "secret_key",
        "master_keys",
        "blind_index_key",
        "signing_key",
        "stream_secrets",
    }


def test_development_reuses_its_key_file_on_the_next_start(tmp_path):
    instance = tmp_path / "instance"
    first = development_app(instance)
    written = (instance / "keys.json").read_bytes()

    second = development_app(instance)

    assert (instance / "keys.json").read_bytes() == written
    assert second.config["SECRET_KEY"] == first.config["SECRET_KEY"]
    with first.app_context():
        first_keys = keyring()
    with second.app_context():
        second_keys = keyring()
    assert second_keys.master_keys == first_keys.master_keys
    assert second_keys.blind_index_key == first_keys.blind_index_key
    assert second_keys.link_key == first_keys.link_key


def test_two_instance_folders_are_two_separate_installations(tmp_path):
    first = development_app(tmp_path / "a")
    second = development_app(tmp_path / "b")
    with first.app_context():
        upgrade()
        make_organizer("Only in A")
    with second.app_context():
        upgrade()

    with second.app_context():
        organizers_in_b = db.session.scalar(select(func.count()).select_from(Organizer))
        db.engine.dispose()
    with first.app_context():
        organizers_in_a = db.session.scalar(select(func.count()).select_from(Organizer))
        db.engine.dispose()

    assert (organizers_in_a, organizers_in_b) == (1, 0)
    assert (tmp_path / "a" / "guichet.sqlite3").exists()
    assert (tmp_path / "b" / "guichet.sqlite3").exists()
    assert first.config["SECRET_KEY"] != second.config["SECRET_KEY"]


def test_every_rate_limited_view_is_in_a_limited_blueprint(app):
    """The limiter skips blueprints outside LIMITED_BLUEPRINTS: a limit there would be void."""
    from flask_limiter.util import get_qualified_name

    from ticketing.extensions import LIMITED_BLUEPRINTS, limiter

    limited = [
        endpoint
        for endpoint, view in app.view_functions.items()
        if get_qualified_name(view) in limiter._marked_for_limiting
    ]

    assert limited, "no rate-limited view found: the check below would prove nothing"
    assert {endpoint.split(".")[0] for endpoint in limited} <= LIMITED_BLUEPRINTS


# --- Forms over HTTPS --------------------------------------------------------------------


def test_forms_over_https_work_without_a_referer_as_browsers_send_them(tmp_path, sqlite_template):
    """Every page sends 'Referrer-Policy: no-referrer', so a browser posts a form with no Referer."""
    import shutil

    database = tmp_path / "prod.sqlite3"
    shutil.copy(sqlite_template, database)
    app = create_app(
        config.ProductionConfig(production_environ(tmp_path, TICKETING_DATABASE_URL=f"sqlite:///{database}"))
    )
    client = app.test_client()
    site = "https://tickets.example.org"
    page = client.get("/orders/find", base_url=site)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)

    with_token = client.post("/orders/find", base_url=site, data={"csrf_token": token, "email": "a@example.org"})
    without_token = client.post("/orders/find", base_url=site, data={"email": "a@example.org"})

    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert with_token.status_code == 200
    assert without_token.status_code == 400
    with app.app_context():
        db.engine.dispose()
