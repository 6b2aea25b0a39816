"""Guichet: ethical ticketing. ``create_app`` builds the Flask application."""

from __future__ import annotations

import logging
import os
import re
import traceback
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, has_request_context, make_response, render_template, request, session
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from config import BaseConfig, ConfigError, config_from_name
from ticketing.crypto import KeyRing, generate_key_file, load_keyring
from ticketing.crypto.keys import KeyConfigError
from ticketing.errors import GuichetError
from ticketing.extensions import babel, csrf, db, limiter, migrate
from ticketing.models import configure_engine
from ticketing.web import problem, problem_from_error, wants_json

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = PROJECT_ROOT / "migrations"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; media-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

# Secret parts of URLs (order links, payment pages) are cut out of request logs.
SECRET_PATH = re.compile(r"(/(?:(?:orders|pay/demo|pay/stripe)/[^/\s?\"]{1,48}|refunds/choose)/)[^\s?\"]+")
# The emailed "my data" links carry their token right after the prefix.
PRIVACY_LINK = re.compile(r"(/privacy/my-data/)[^\s?\"/]+")
# Stream links carry their token first: /watch/<token>/...
WATCH_PATH = re.compile(r"(/watch/)[^/\s?\"]+")


# Request log lines (werkzeug's, gunicorn's default format) begin with the client address.
CLIENT_ADDRESS = re.compile(r"^[0-9A-Fa-f:.%\[\]]+ - ")


def _redact(text: str) -> str:
    for pattern in (SECRET_PATH, PRIVACY_LINK, WATCH_PATH):
        text = pattern.sub(r"\1[token]", text)
    return text


class RedactSecretPaths(logging.Filter):
    """Cuts secrets and client addresses out of request log lines before they are written."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = CLIENT_ADDRESS.sub("[client] - ", _redact(record.msg))
        return True


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
        generated = generate_key_file(Path(app.instance_path) / "keys.json")
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


def create_app(config_name_or_object: str | BaseConfig | None = None) -> Flask:
    config = _load_config(config_name_or_object)
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
    app.extensions["guichet.keyring"] = _keyring(app, config)

    _configure_logging(app)
    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    babel.init_app(app, locale_selector=_select_locale)
    csrf.init_app(app)
    limiter.init_app(app)

    _register_blueprints(app)
    _register_error_handlers(app)
    _register_template_helpers(app)
    app.after_request(_security_headers)

    from ticketing.cli import register_commands

    register_commands(app)
    return app


def _configure_logging(app: Flask) -> None:
    logging.getLogger("ticketing").setLevel(app.config["LOG_LEVEL"])
    redact = RedactSecretPaths()
    logging.getLogger("werkzeug").addFilter(redact)
    logging.getLogger("gunicorn.access").addFilter(redact)
    # The stripe SDK logs request bodies at INFO/DEBUG, and they hold the order links
    # (success_url): never below WARNING, whatever the root level.
    logging.getLogger("stripe").setLevel(logging.WARNING)


def _select_locale() -> str:
    if not has_request_context():
        return "en"
    chosen = session.get("lang")
    if chosen in ("en", "fr"):
        return chosen
    return request.accept_languages.best_match(["en", "fr"]) or "en"


def _register_blueprints(app: Flask) -> None:
    from ticketing import stream
    from ticketing.catalog.api import bp as catalog_api
    from ticketing.catalog.routes import bp as catalog_pages
    from ticketing.checkin.api import bp as checkin_api
    from ticketing.checkin.routes import bp as checkin_pages
    from ticketing.checkout.api import bp as checkout_api
    from ticketing.checkout.notify import render_order_paid
    from ticketing.checkout.privacy_links import OrderLinks
    from ticketing.checkout.routes import bp as checkout_pages
    from ticketing.checkout.services import ORDER_PAID_MAIL
    from ticketing.mail.queue import MAIL_KINDS
    from ticketing.openapi import bp as openapi
    from ticketing.payments import provider_from_config
    from ticketing.payments.api import bp as payments_api
    from ticketing.payments.notify import render_event_cancelled, render_late_payment_refunded
    from ticketing.payments.routes import bp as payment_pages
    from ticketing.payments.services import EVENT_CANCELLED_MAIL, LATE_PAYMENT_REFUNDED_MAIL
    from ticketing.privacy.api import bp as privacy_api
    from ticketing.privacy.routes import bp as privacy_pages
    from ticketing.site import bp as site
    from ticketing.tickets.presenter import QrTicketPresenter
    from ticketing.tickets.routes import bp as ticket_pages

    app.extensions["guichet.payments"] = provider_from_config(app.config)
    # Domains after the vault add what they link to a person (see privacy/links.py).
    app.extensions["guichet.person_links"] = [OrderLinks()]
    app.extensions["guichet.ticket_presenter"] = QrTicketPresenter()
    # The outbox holds a kind and a subject id; these render them (see mail/queue.py).
    app.extensions[MAIL_KINDS] = {
        ORDER_PAID_MAIL: render_order_paid,
        LATE_PAYMENT_REFUNDED_MAIL: render_late_payment_refunded,
        EVENT_CANCELLED_MAIL: render_event_cancelled,
    }
    for blueprint in (catalog_api, checkout_api, payments_api, openapi, privacy_api, checkin_api):
        csrf.exempt(blueprint)  # bearer tokens, no ambient cookie to forge with
        app.register_blueprint(blueprint)
    for blueprint in (site, catalog_pages, checkout_pages, payment_pages, privacy_pages, ticket_pages, checkin_pages):
        app.register_blueprint(blueprint)
    stream.init_app(app)


def _register_error_handlers(app: Flask) -> None:
    log = logging.getLogger("ticketing")

    def page(status: int, title: str, detail: str) -> tuple[str, int]:
        return render_template("errors/error.html", status=status, title=title, detail=detail), status

    @app.errorhandler(GuichetError)
    def guichet_error(error: GuichetError) -> Any:
        if wants_json():
            return problem_from_error(error)
        return page(error.status, error.title if error.status >= 500 else _(error.title), error.message)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        status = error.code or 500
        title = error.name
        detail = _http_detail(status)
        if isinstance(error, CSRFError):
            detail = _("This form expired or was sent from elsewhere. Reload the page and try again.")
        if wants_json():
            code = title.lower().replace(" ", "_")
            response = problem(status, code, title, detail)
            valid_methods = getattr(error, "valid_methods", None)
            if status == 405 and valid_methods:
                response.headers["Allow"] = ", ".join(valid_methods)
            return response
        return page(status, _http_title(status, title), detail)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def database_unavailable(error: Exception) -> Any:
        """The database is down or restarted: say so and invite a retry; nothing was written."""
        db.session.rollback()
        log.warning("database unavailable at %s %s: %s", request.method, request.url_rule, type(error).__name__)
        detail = _("The service is briefly unavailable. Nothing was recorded; please try again in a moment.")
        if wants_json():
            response = problem(503, "database_unavailable", "Service unavailable", detail)
        else:
            response = make_response(page(503, _("Service unavailable"), detail))
        response.headers["Retry-After"] = "2"
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Any:
        # The type and the stack, never the message: it could quote personal input.
        stack = "".join(traceback.format_tb(error.__traceback__))
        log.error("unexpected %s at %s %s\n%s", type(error).__name__, request.method, request.url_rule, stack)
        detail = _("Something went wrong on our side. Nothing was charged twice; please try again.")
        if wants_json():
            return problem(500, "internal_error", "Internal error", detail)
        return page(500, _("Internal error"), detail)


def _http_title(status: int, english: str) -> str:
    titles = {
        400: _("Bad request"),
        401: _("Authentication required"),
        403: _("Not allowed"),
        404: _("Page not found"),
        405: _("Method not allowed"),
        413: _("Request too large"),
        415: _("Unsupported content type"),
        429: _("Too many requests"),
    }
    return titles.get(status, english)


def _http_detail(status: int) -> str:
    details = {
        400: _("The request could not be understood. If you sent a form, reload the page and try again."),
        401: _("Authentication is required."),
        403: _("You are not allowed to do this."),
        404: _("There is nothing at this address."),
        405: _("This address does not accept this method."),
        413: _("The request is too large."),
        415: _("This content type is not accepted."),
        429: _("Too many requests. Wait a minute and try again."),
    }
    return details.get(status, _("The request could not be completed."))


def _register_template_helpers(app: Flask) -> None:
    from ticketing.display import register_filters

    register_filters(app)

    @app.context_processor
    def globals_for_templates() -> dict[str, Any]:
        return {
            "test_mode": app.extensions["guichet.payments"].is_test_mode,
            "current_locale": str(get_locale() or "en"),
        }


def content_security_policy(app: Flask) -> str:
    """The strict policy; with Stripe, form-action also allows Stripe's checkout origin.

    Chromium applies form-action to every redirect that follows a form POST, so the 303
    from "Buy" (via /pay/stripe/...) to checkout.stripe.com is blocked without it.
    """
    if app.config.get("PAYMENT_PROVIDER") == "stripe":
        return CONTENT_SECURITY_POLICY.replace("form-action 'self'", "form-action 'self' https://checkout.stripe.com")
    return CONTENT_SECURITY_POLICY


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy(current_app))
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
    if request.path == "/door":
        # The scanner page reads QR codes from the camera; every other page keeps it off.
        headers["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=(), interest-cohort=()"
    if request.path.startswith(
        ("/orders/", "/pay/", "/refunds/", "/api/v1/orders", "/privacy/my-data", "/api/v1/privacy")
    ):
        headers["Cache-Control"] = "no-store"
    return response


def check_database() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        db.session.rollback()
        return False
