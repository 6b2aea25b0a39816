"""Configuration classes, read from ``TICKETING_*`` environment variables.

This is the only module that reads the environment. ``create_app`` picks a class by name
(``development``, ``testing``, ``production``) or takes a ready object. Every variable is
listed, with its default, in README.md under "Configuration".
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

MAIL_DELIVERY_MODES = ("inline", "worker")
# Hosts a development or test app answers when TICKETING_BASE_URL is unset.
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "[::1]")
HOST_NAME = re.compile(r"[a-z0-9.-]+|\[[0-9a-f:.]+\]")


class ConfigError(RuntimeError):
    """Raised when the configuration cannot run; the message names the variable."""


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _host_names(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return DEFAULT_ALLOWED_HOSTS
    hosts = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    for host in hosts:
        if not HOST_NAME.fullmatch(host):
            raise ConfigError(
                f"{name}: {host!r} is not a host name (no scheme, no port: localhost, [::1], guichet.lan)"
            )
    return hosts or DEFAULT_ALLOWED_HOSTS


def normalise_database_url(url: str) -> str:
    """Let operators write ``postgresql://``; we always drive PostgreSQL with psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class BaseConfig:
    """Values shared by every mode. Attributes in UPPER case become ``app.config`` keys."""

    ENV_NAME = "base"
    REQUIRE_KEYS_FROM_ENV = False
    TESTING = False
    DEBUG = False

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.INSTANCE_PATH: str | None = env.get("TICKETING_INSTANCE_PATH") or None
        self.DATABASE_URL: str | None = env.get("TICKETING_DATABASE_URL") or None
        self.SECRET_KEY: str | None = env.get("TICKETING_SECRET_KEY") or None
        self.MASTER_KEYS: str | None = env.get("TICKETING_MASTER_KEYS") or None
        self.BLIND_INDEX_KEY: str | None = env.get("TICKETING_BLIND_INDEX_KEY") or None
        self.SIGNING_KEY: str | None = env.get("TICKETING_SIGNING_KEY") or None
        self.PREVIOUS_BLIND_INDEX_KEYS: str | None = env.get("TICKETING_PREVIOUS_BLIND_INDEX_KEYS") or None
        self.MAX_RETENTION_DAYS = _int(env, "TICKETING_MAX_RETENTION_DAYS", 365)
        self.STREAM_SECRETS: str | None = env.get("TICKETING_STREAM_SECRETS") or None
        self.STREAM_OPENS_MINUTES = _int(env, "TICKETING_STREAM_OPENS_MINUTES", 30)
        self.STREAM_GRACE_MINUTES = _int(env, "TICKETING_STREAM_GRACE_MINUTES", 30)
        self.STREAM_SECURE_LINK_SECRET: str | None = env.get("TICKETING_STREAM_SECURE_LINK_SECRET") or None
        self.STREAM_SIGNED_URL_SECONDS = _int(env, "TICKETING_STREAM_SIGNED_URL_SECONDS", 600)
        self.STREAM_HEARTBEAT_SECONDS = _int(env, "TICKETING_STREAM_HEARTBEAT_SECONDS", 30)
        # Links in mails and redirects: TICKETING_BASE_URL, or else (never in production)
        # the request's host, and then only one of ALLOWED_HOSTS (see ticketing/web.py).
        self.BASE_URL: str | None = (env.get("TICKETING_BASE_URL") or "").rstrip("/") or None
        self.ALLOWED_HOSTS = _host_names(env, "TICKETING_ALLOWED_HOSTS")
        self.HOLD_MINUTES = _int(env, "TICKETING_HOLD_MINUTES", 10)
        self.STRIPE_SECRET_KEY: str | None = env.get("STRIPE_SECRET_KEY") or None
        self.STRIPE_WEBHOOK_SECRET: str | None = env.get("STRIPE_WEBHOOK_SECRET") or None
        self.STRIPE_API_BASE: str | None = (env.get("STRIPE_API_BASE") or "").rstrip("/") or None
        self.STRIPE_WEBHOOK_TOLERANCE = _int(env, "STRIPE_WEBHOOK_TOLERANCE", 300)
        self.REFUND_CHOICE_DAYS = _int(env, "TICKETING_REFUND_CHOICE_DAYS", 14)
        self.PAYMENT_PROVIDER: str = env.get("TICKETING_PAYMENT_PROVIDER") or (
            "stripe" if self.STRIPE_SECRET_KEY else "demo"
        )
        # Production only: the demo provider "pays" without money, so production takes it
        # only on an instance stated to be a test one (its pages show the test banner).
        self.ALLOW_DEMO_PAYMENTS = _flag(env.get("TICKETING_ALLOW_DEMO_PAYMENTS"), False)
        self.MAIL_FROM = env.get("TICKETING_MAIL_FROM") or "Guichet <tickets@localhost>"
        self.SMTP_HOST: str | None = env.get("TICKETING_SMTP_HOST") or None
        self.SMTP_PORT = _int(env, "TICKETING_SMTP_PORT", 587)
        self.SMTP_USERNAME: str | None = env.get("TICKETING_SMTP_USERNAME") or None
        self.SMTP_PASSWORD: str | None = env.get("TICKETING_SMTP_PASSWORD") or None
        self.SMTP_STARTTLS = _flag(env.get("TICKETING_SMTP_STARTTLS"), True)
        self.SMTP_TIMEOUT = _int(env, "TICKETING_SMTP_TIMEOUT", 10)
        # inline: the request that queued a mail sends it after its commit; worker: only
        # `flask send-mail --follow` sends (see ticketing/mail/queue.py).
        self.MAIL_DELIVERY = (env.get("TICKETING_MAIL_DELIVERY") or "inline").strip().lower()
        self.RATELIMIT_STORAGE_URI = env.get("TICKETING_RATELIMIT_STORAGE_URL") or "memory://"
        # How many proxies stand in front (nginx: 1). Their X-Forwarded-For and -Proto are
        # believed, that many hops deep; with 0 a client's X-Forwarded-For is ignored.
        self.TRUSTED_PROXIES = _int(env, "TICKETING_TRUSTED_PROXIES", 0)
        self.RATELIMIT_ENABLED = _flag(env.get("TICKETING_RATELIMIT_ENABLED"), True)
        # A back-office login ends after this long without a request (and 12 hours after it began).
        self.STAFF_IDLE_MINUTES = _int(env, "TICKETING_STAFF_IDLE_MINUTES", 60)
        self.LOG_LEVEL = (env.get("TICKETING_LOG_LEVEL") or "INFO").upper()
        self.SESSION_COOKIE_SECURE = _flag(env.get("TICKETING_SECURE_COOKIES"), self.REQUIRE_KEYS_FROM_ENV)
        # No pre-ping: it costs a round trip per request. A connection that died with the
        # database fails its one request with a 503 (see create_app) and the pool renews.
        self.SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {"pool_recycle": 1800}
        if self.DATABASE_URL:
            self.DATABASE_URL = normalise_database_url(self.DATABASE_URL)
        self._check()

    # Fixed settings, the same in every mode.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_NAME = "guichet_session"
    MAX_CONTENT_LENGTH = 64 * 1024
    WTF_CSRF_TIME_LIMIT = None
    # Flask-WTF's HTTPS check wants a Referer from the same host, and every page sends
    # "Referrer-Policy: no-referrer" (order pages carry their token in the URL): browsers
    # send none, so over HTTPS every form would be refused. The session-bound token and
    # the SameSite=Lax cookie still guard every form.
    WTF_CSRF_SSL_STRICT = False
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_DEFAULT_TIMEZONE = "UTC"
    LANGUAGES = ("en", "fr")
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    def _check(self) -> None:
        if self.BASE_URL:
            parts = urlsplit(self.BASE_URL)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
                raise ConfigError(
                    f"TICKETING_BASE_URL={self.BASE_URL!r} is not a site address; use scheme and host only, "
                    "like https://tickets.example.org"
                )
        if not 0 <= self.TRUSTED_PROXIES <= 5:
            raise ConfigError("TICKETING_TRUSTED_PROXIES must be between 0 and 5 (the proxies in front of the app)")
        if self.HOLD_MINUTES < 1 or self.HOLD_MINUTES > 24 * 60:
            raise ConfigError("TICKETING_HOLD_MINUTES must be between 1 and 1440")
        if not 5 <= self.STAFF_IDLE_MINUTES <= 720:
            raise ConfigError("TICKETING_STAFF_IDLE_MINUTES must be between 5 and 720")
        if self.MAX_RETENTION_DAYS < 1 or self.MAX_RETENTION_DAYS > 3650:
            raise ConfigError("TICKETING_MAX_RETENTION_DAYS must be between 1 and 3650")
        for name in ("STREAM_OPENS_MINUTES", "STREAM_GRACE_MINUTES"):
            if not 0 <= getattr(self, name) <= 7 * 24 * 60:
                raise ConfigError(f"TICKETING_{name} must be between 0 and 10080")
        if not 60 <= self.STREAM_SIGNED_URL_SECONDS <= 24 * 3600:
            raise ConfigError("TICKETING_STREAM_SIGNED_URL_SECONDS must be between 60 and 86400")
        if not 1 <= self.STREAM_HEARTBEAT_SECONDS <= 300:
            raise ConfigError("TICKETING_STREAM_HEARTBEAT_SECONDS must be between 1 and 300")
        if self.PAYMENT_PROVIDER not in {"demo", "stripe"}:
            raise ConfigError(
                f"TICKETING_PAYMENT_PROVIDER={self.PAYMENT_PROVIDER!r} is not available; "
                "use 'stripe' (with STRIPE_SECRET_KEY) or 'demo'"
            )
        if self.PAYMENT_PROVIDER == "stripe":
            if not self.STRIPE_SECRET_KEY:
                raise ConfigError("the stripe payment provider needs STRIPE_SECRET_KEY; it is not set")
            if not self.STRIPE_WEBHOOK_SECRET:
                raise ConfigError("the stripe payment provider needs STRIPE_WEBHOOK_SECRET; it is not set")
        if self.REFUND_CHOICE_DAYS < 1 or self.REFUND_CHOICE_DAYS > 365:
            raise ConfigError("TICKETING_REFUND_CHOICE_DAYS must be between 1 and 365")
        if self.MAIL_DELIVERY not in MAIL_DELIVERY_MODES:
            raise ConfigError(
                f"TICKETING_MAIL_DELIVERY={self.MAIL_DELIVERY!r} is unknown; use 'inline' (the request sends "
                "its mail after committing) or 'worker' (run `flask send-mail --follow` beside the app)"
            )

    def as_mapping(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in dir(self) if name.isupper()}


class DevelopmentConfig(BaseConfig):
    """The embedded default: SQLite, keys and mail outbox in the instance folder."""

    ENV_NAME = "development"


class TestingConfig(BaseConfig):
    ENV_NAME = "testing"
    TESTING = True

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(environ)
        self.WTF_CSRF_ENABLED = True
        self.HOLD_MINUTES = 10


class ProductionConfig(BaseConfig):
    """Refuses to start without the keys and database an operator must provide."""

    ENV_NAME = "production"
    REQUIRE_KEYS_FROM_ENV = True

    REQUIRED = (
        ("DATABASE_URL", "TICKETING_DATABASE_URL"),
        # Links in mails must never follow the Host header a client sent.
        ("BASE_URL", "TICKETING_BASE_URL"),
        ("SECRET_KEY", "TICKETING_SECRET_KEY"),
        ("MASTER_KEYS", "TICKETING_MASTER_KEYS"),
        ("BLIND_INDEX_KEY", "TICKETING_BLIND_INDEX_KEY"),
        ("SIGNING_KEY", "TICKETING_SIGNING_KEY"),
        ("STREAM_SECRETS", "TICKETING_STREAM_SECRETS"),
    )

    def _check(self) -> None:
        super()._check()
        for attribute, variable in self.REQUIRED:
            if not getattr(self, attribute):
                raise ConfigError(f"production mode needs {variable}; it is not set")
        if self.PAYMENT_PROVIDER == "demo" and not self.ALLOW_DEMO_PAYMENTS:
            raise ConfigError(
                "production mode needs STRIPE_SECRET_KEY: the demo payment provider gives tickets away; "
                "only a test instance may set TICKETING_ALLOW_DEMO_PAYMENTS=true"
            )


CONFIGS: dict[str, type[BaseConfig]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_from_name(name: str | None = None) -> BaseConfig:
    """Build the config named, or the one ``TICKETING_ENV`` names (development by default)."""
    chosen = name or os.environ.get("TICKETING_ENV") or "development"
    try:
        return CONFIGS[chosen]()
    except KeyError:
        raise ConfigError(f"TICKETING_ENV={chosen!r} is unknown; use one of {', '.join(CONFIGS)}") from None
