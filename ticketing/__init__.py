"""Guichet: ethical ticketing. ``create_app`` builds the Flask application."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, has_request_context, request, session
from flask_babel import get_locale
from sqlalchemy import Engine, text
from werkzeug.middleware.proxy_fix import ProxyFix

from config import BaseConfig, ConfigError, config_from_name
from ticketing.crypto import KeyRing, generate_key_file, load_keyring
from ticketing.crypto.keys import KeyConfigError
from ticketing.error_handlers import register_error_handlers
from ticketing.extensions import babel, csrf, db, key_file_stamp, limiter, migrate
from ticketing.log_redaction import configure_logging
from ticketing.models import configure_engine
from ticketing.security_headers import add_security_headers
from ticketing.web import refuse_unknown_host

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = PROJECT_ROOT / "migrations"
OLDEST_SQLITE = (3, 35, 0)


def create_app(config_name_or_object: str | BaseConfig | None = None) -> Flask:
    """The app, step by step; each step needs only those above it."""
    config = _load_config(config_name_or_object)
    app = _flask_app(config)
    app.extensions["guichet.keyring"] = _keyring(app, config)
    app.extensions["guichet.reload_keyring"] = lambda: reload_keyring(app)
    configure_logging(app)
    _init_database(app)
    _init_extensions(app)
    _register_blueprints(app)
    _trust_proxies(app)
    register_error_handlers(app)
    _register_template_helpers(app)
    app.after_request(add_security_headers)
    _answer_allowed_hosts_only(app)

    from ticketing.cli import register_commands

    register_commands(app)
    return app


def _flask_app(config: BaseConfig) -> Flask:
    """The bare app: folders, and the configuration as ``app.config``."""
    instance_path = config.INSTANCE_PATH or str(PROJECT_ROOT / "instance")
    app = Flask(
        __name__,
        instance_path=os.path.abspath(instance_path),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.from_mapping(config.as_mapping())
    app.config["ENV_NAME"] = config.ENV_NAME
    Path(app.instance_path).mkdir(parents=True, exist_ok=True, mode=0o700)
    app.config["SQLALCHEMY_DATABASE_URI"] = config.DATABASE_URL or (
        "sqlite:///" + str(Path(app.instance_path) / "guichet.sqlite3")
    )
    app.extensions["guichet.config"] = config
    return app


def _load_config(config_name_or_object: str | BaseConfig | None) -> BaseConfig:
    if config_name_or_object is None or isinstance(config_name_or_object, str):
        return config_from_name(config_name_or_object)
    return config_name_or_object


def _keyring(app: Flask, config: BaseConfig) -> KeyRing:
    """Keys from the environment, or (outside production) a key file made once."""
    values = {
        "secret_key": config.SECRET_KEY,
        "master_keys": config.MASTER_KEYS,
        "blind_index_key": config.BLIND_INDEX_KEY,
        "signing_key": config.SIGNING_KEY,
        "stream_secrets": config.STREAM_SECRETS,
    }
    previous_index_keys = config.PREVIOUS_BLIND_INDEX_KEYS
    if not all(values.values()):
        if config.REQUIRE_KEYS_FROM_ENV:
            raise ConfigError("production mode needs every key in the environment")
        key_file = Path(app.instance_path) / "keys.json"
        # Stamped before reading: a change in between only costs one more reload.
        app.extensions["guichet.key_file_stamp"] = key_file_stamp(key_file) if key_file.exists() else None
        app.extensions["guichet.key_file"] = key_file
        generated = generate_key_file(key_file)
        values = {name: value or generated[name] for name, value in values.items()}
        if not config.BLIND_INDEX_KEY:
            previous_index_keys = previous_index_keys or generated.get("previous_blind_index_keys")
    try:
        ring = load_keyring(**values, previous_blind_index_keys=previous_index_keys)  # type: ignore[arg-type]
    except KeyConfigError as error:
        raise ConfigError(str(error)) from None
    app.config["SECRET_KEY"] = values["secret_key"]
    return ring


def reload_keyring(app: Flask) -> KeyRing:
    """Load the keys again after a rotation command changed the development key file."""
    ring = _keyring(app, app.extensions["guichet.config"])
    app.extensions["guichet.keyring"] = ring
    return ring


def _init_database(app: Flask) -> None:
    db.init_app(app)
    with app.app_context():
        _refuse_old_sqlite(db.engine)
        configure_engine(db.engine)
    migrate.init_app(app, db, directory=str(MIGRATIONS))


def _refuse_old_sqlite(engine: Engine) -> None:
    """The same statements run on both databases, and SQLite learnt ``RETURNING`` and
    ``UPDATE ... FROM`` in 3.35: an older library would fail in the middle of a sale."""
    if engine.dialect.name != "sqlite":
        return
    library = engine.dialect.dbapi
    if library is not None and library.sqlite_version_info < OLDEST_SQLITE:
        raise ConfigError(
            f"SQLite {library.sqlite_version} is too old: Guichet needs 3.35 or newer (RETURNING, UPDATE ... FROM); "
            "run it with a Python linked against a newer SQLite, or on PostgreSQL (TICKETING_DATABASE_URL)"
        )


def _init_extensions(app: Flask) -> None:
    babel.init_app(app, locale_selector=_select_locale)
    csrf.init_app(app)
    limiter.init_app(app)


def _select_locale() -> str:
    if not has_request_context():
        return "en"
    chosen = session.get("lang")
    if chosen in ("en", "fr"):
        return chosen
    return request.accept_languages.best_match(["en", "fr"]) or "en"


def _register_blueprints(app: Flask) -> None:
    from ticketing import backoffice, stream
    from ticketing.catalog.api import bp as catalog_api
    from ticketing.catalog.poster_routes import api as poster_api
    from ticketing.catalog.poster_routes import pages as poster_pages
    from ticketing.catalog.routes import bp as catalog_pages
    from ticketing.checkin.api import bp as checkin_api
    from ticketing.checkin.routes import bp as checkin_pages
    from ticketing.checkout.api import bp as checkout_api
    from ticketing.checkout.notify import render_order_paid
    from ticketing.checkout.person_links import OrderLinks
    from ticketing.checkout.routes import bp as checkout_pages
    from ticketing.checkout.settlement import ORDER_PAID_MAIL
    from ticketing.mail.queue import MAIL_KINDS
    from ticketing.openapi import bp as openapi
    from ticketing.payments import provider_from_config
    from ticketing.payments.api import bp as payments_api
    from ticketing.payments.notify import (
        render_event_cancelled,
        render_late_payment_refunded,
        render_refund_confirmed,
    )
    from ticketing.payments.routes import bp as payment_pages
    from ticketing.payments.services import (
        EVENT_CANCELLED_MAIL,
        LATE_PAYMENT_REFUNDED_MAIL,
        REFUND_CONFIRMED_MAIL,
    )
    from ticketing.privacy.api import bp as privacy_api
    from ticketing.privacy.routes import bp as privacy_pages
    from ticketing.site import bp as site
    from ticketing.tickets.presenter import QrTicketPresenter
    from ticketing.tickets.routes import bp as ticket_pages

    app.extensions["guichet.payments"] = provider_from_config(app.config)
    # Domains after the vault add what they link to a person (see privacy/person_links.py).
    app.extensions["guichet.person_links"] = [OrderLinks()]
    app.extensions["guichet.ticket_presenter"] = QrTicketPresenter()
    # The outbox holds a kind and a subject id; these render them (see mail/queue.py).
    app.extensions[MAIL_KINDS] = {
        ORDER_PAID_MAIL: render_order_paid,
        LATE_PAYMENT_REFUNDED_MAIL: render_late_payment_refunded,
        EVENT_CANCELLED_MAIL: render_event_cancelled,
        REFUND_CONFIRMED_MAIL: render_refund_confirmed,
    }
    for blueprint in (catalog_api, poster_api, checkout_api, payments_api, openapi, privacy_api, checkin_api):
        csrf.exempt(blueprint)  # bearer tokens, no ambient cookie to forge with
        app.register_blueprint(blueprint)
    for blueprint in (
        site,
        catalog_pages,
        poster_pages,
        checkout_pages,
        payment_pages,
        privacy_pages,
        ticket_pages,
        checkin_pages,
    ):
        app.register_blueprint(blueprint)
    stream.init_app(app)
    backoffice.init_app(app)
    app.teardown_request(_mark_api_tokens_used)


def _mark_api_tokens_used(_error: BaseException | None) -> None:
    """An API token's last use is written after its request, apart from its work."""
    from ticketing.catalog.services import mark_api_tokens_used

    if db.session.registry.has():
        mark_api_tokens_used(db.session())


def _trust_proxies(app: Flask) -> None:
    """Behind nginx every request comes from nginx: the client address (rate limits) and
    the scheme come from the headers of the ``TICKETING_TRUSTED_PROXIES`` proxies in front,
    read from the right, so a client cannot pick its own address by sending the header.
    Wraps the whole WSGI app, after anything else that wraps it."""
    count = app.config["TRUSTED_PROXIES"]
    if count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)  # type: ignore[method-assign]


def _answer_allowed_hosts_only(app: Flask) -> None:
    """Without ``TICKETING_BASE_URL`` links follow the request's host (``web.external_url``),
    so only the hosts of ``TICKETING_ALLOWED_HOSTS`` are answered."""
    if not app.config["BASE_URL"]:
        app.before_request(refuse_unknown_host)


def _register_template_helpers(app: Flask) -> None:
    from ticketing.display import register_filters

    register_filters(app)

    @app.context_processor
    def globals_for_templates() -> dict[str, Any]:
        return {
            "test_mode": app.extensions["guichet.payments"].is_test_mode,
            "current_locale": str(get_locale() or "en"),
        }


def check_database() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        db.session.rollback()
        return False
