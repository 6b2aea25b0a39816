"""Shared fixtures: ``app`` (a fresh app per test, on SQLite and on PostgreSQL), ``client``,
``runner``, and factories for the objects most tests need.

Every database test runs on SQLite and, when ``TICKETING_TEST_DATABASE_URL`` names a
PostgreSQL server, on PostgreSQL too. With ``CI=true`` that server is required: the run
fails rather than skips when it is missing or down.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from config import TestingConfig
from ticketing import create_app
from ticketing.catalog.models import Event, Organizer, TicketType
from ticketing.crypto import new_key_values
from ticketing.extensions import db as _db
from ticketing.models import utcnow

PG_URL = os.environ.get("TICKETING_TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEST_KEYS = new_key_values()
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not PG_URL:
        raise pytest.UsageError("CI=true needs TICKETING_TEST_DATABASE_URL: PostgreSQL tests must run in CI")


def _environ(instance: Path, database_url: str) -> dict[str, str]:
    return {
        "TICKETING_INSTANCE_PATH": str(instance),
        "TICKETING_DATABASE_URL": database_url,
        "TICKETING_SECRET_KEY": TEST_KEYS["secret_key"],
        "TICKETING_MASTER_KEYS": TEST_KEYS["master_keys"],
        "TICKETING_BLIND_INDEX_KEY": TEST_KEYS["blind_index_key"],
        "TICKETING_SIGNING_KEY": TEST_KEYS["signing_key"],
        "TICKETING_LOG_LEVEL": "DEBUG",
    }


def make_app(instance: Path, database_url: str, **overrides: str) -> Flask:
    environ = _environ(instance, database_url)
    environ.update(overrides)
    return create_app(TestingConfig(environ))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (migrating every time is slow)."""
    folder = tmp_path_factory.mktemp("sqlite-template")
    path = folder / "template.sqlite3"
    app = make_app(folder, f"sqlite:///{path}")
    with app.app_context():
        upgrade()
        _db.engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The test PostgreSQL database, emptied and migrated once per run."""
    if not PG_URL:
        pytest.skip("TICKETING_TEST_DATABASE_URL is not set (set in CI, where this never skips)")
    engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
    except sa.exc.OperationalError as error:
        pytest.fail(f"PostgreSQL at TICKETING_TEST_DATABASE_URL is unreachable: {error}")
    finally:
        engine.dispose()
    folder = tmp_path_factory.mktemp("pg-migrate")
    app = make_app(folder, PG_URL)
    with app.app_context():
        upgrade()
        _db.engine.dispose()
    return PG_URL


def _truncate_all(app: Flask) -> None:
    with app.app_context():
        tables = ", ".join(f'"{t.name}"' for t in _db.metadata.sorted_tables)
        _db.session.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        _db.session.commit()


DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database URL this test runs on: a fresh SQLite copy, or the emptied PostgreSQL."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "guichet.sqlite3"
        shutil.copy(template, path)
        return f"sqlite:///{path}"
    return request.getfixturevalue("postgres_url")


def dispose(application: Flask) -> None:
    """Close every connection an app opened: its engine's pool."""
    with application.app_context():
        _db.session.remove()
        _db.engine.dispose()


def app_on(database: str, instance: Path, **overrides: str) -> Iterator[Flask]:
    """A fresh app on an empty database, disposed of afterwards (the body of ``app``-like fixtures)."""
    application = make_app(instance, database, **overrides)
    if database.startswith("postgresql"):
        _truncate_all(application)
    yield application
    dispose(application)


@pytest.fixture
def app_environ() -> dict[str, str]:
    """Extra environment for ``app`` (and ``stripe_app``); a test sets it by parametrizing
    this fixture, as ``MAIL_WORKER`` does, and keeps ``client`` and ``runner`` as usual."""
    return {}


# Requests only queue their mails; ``flask send-mail`` (the ``runner``) sends them.
MAIL_WORKER = pytest.mark.parametrize("app_environ", [{"TICKETING_MAIL_DELIVERY": "worker"}], ids=["mail-worker"])


@pytest.fixture
def app(database: str, tmp_path: Path, app_environ: dict[str, str]) -> Iterator[Flask]:
    yield from app_on(database, tmp_path / "instance", **app_environ)


@pytest.fixture
def pg_app(postgres_url: str, tmp_path: Path) -> Iterator[Flask]:
    """An app on PostgreSQL only, for races that SQLite's single writer rules out."""
    application = make_app(tmp_path / "pg-instance", postgres_url)
    _truncate_all(application)
    yield application
    dispose(application)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):  # type: ignore[no-untyped-def]
    return app.test_cli_runner()


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    """An app context, for tests that call services directly."""
    with app.app_context():
        yield


def outbox(app: Flask) -> list[Path]:
    folder = Path(app.instance_path) / "outbox"
    return sorted(folder.glob("*.eml")) if folder.is_dir() else []


def queued_mail(app: Flask) -> list[tuple[str, Any]]:
    """The mail outbox table as (kind, subject id) pairs, oldest first."""
    from ticketing.mail.models import QueuedMail

    with app.app_context():
        rows = _db.session.execute(
            sa.select(QueuedMail.kind, QueuedMail.subject_id).order_by(QueuedMail.created_at, QueuedMail.kind)
        ).all()
        return [(kind, subject_id) for kind, subject_id in rows]


def csrf_token(client: FlaskClient, url: str) -> str:
    page = client.get(url)
    match = CSRF_FIELD.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {url} ({page.status_code})"
    return match.group(1)


def post_form(client: FlaskClient, page_url: str, action_url: str, data: dict[str, Any], **kwargs: Any):  # type: ignore[no-untyped-def]
    """Submit a form the way a browser does: read the page for its CSRF token first."""
    return client.post(action_url, data={"csrf_token": csrf_token(client, page_url), **data}, **kwargs)


def make_organizer(name: str = "Salle Test") -> tuple[Organizer, str]:
    from ticketing.catalog.services import create_organizer

    return create_organizer(_db.session, name, utcnow())


def make_event(
    *,
    capacity: int = 10,
    price_cents: int = 1500,
    fee_cents: int = 100,
    max_per_order: int = 10,
    ask_name: bool = False,
    ask_postcode: bool = False,
    status: str = "published",
    starts_in: dt.timedelta = dt.timedelta(days=10),
    mode: str = "in_person",
    currency: str = "EUR",
    organizer: Organizer | None = None,
    sale_starts_at: dt.datetime | None = None,
) -> Event:
    """A published event with one ticket type; call inside an app context."""
    now = utcnow()
    organizer = organizer or make_organizer()[0]
    event = Event(
        organizer_id=organizer.id,
        title="Concert test",
        description="A test evening",
        venue_name="Salle Test",
        venue_address="1 rue du Test, 31000 Toulouse",
        starts_at=now + starts_in,
        ends_at=now + starts_in + dt.timedelta(hours=2),
        timezone="Europe/Paris",
        mode=mode,
        status=status,
        currency=currency,
        ask_name=ask_name,
        ask_postcode=ask_postcode,
    )
    _db.session.add(event)
    _db.session.flush()
    _db.session.add(
        TicketType(
            event_id=event.id,
            name="Standard",
            price_cents=price_cents,
            fee_cents=fee_cents,
            capacity=capacity,
            max_per_order=max_per_order,
            grants_entry=mode != "livestream",
            grants_stream=mode != "in_person",
            sale_starts_at=sale_starts_at,
        )
    )
    _db.session.commit()
    return event


def first_ticket_type(event: Event) -> TicketType:
    return event.ticket_types[0]


def published_event(app: Flask, **options: Any) -> Any:
    """``make_event`` from outside an app context: returns plain ids, safe after the context ends."""
    from types import SimpleNamespace

    with app.app_context():
        event = make_event(**options)
        return SimpleNamespace(id=event.id, type_id=event.ticket_types[0].id)


def run_together(count: int, work: Callable[[int], None], timeout: float = 120) -> None:
    """Run ``work(n)`` for n in range(count) in threads released at the same instant.

    Any exception in a thread fails the test, and so does a thread still running after
    ``timeout`` seconds: a race test that hangs must not pass.
    """
    barrier = threading.Barrier(count)
    failures: list[BaseException] = []

    def runner(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(n)
        except BaseException as error:  # noqa: BLE001 - reported to the test below
            failures.append(error)

    threads = [threading.Thread(target=runner, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread was still running at the timeout"
    if failures:
        raise failures[0]


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Any]:
    """The one Playwright driver of the run: its sync API allows a single live instance,
    so every browser test launches its Chromium from this one."""
    from playwright.sync_api import sync_playwright

    driver = sync_playwright().start()
    yield driver
    driver.stop()
