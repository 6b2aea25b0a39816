"""Shared extension objects, created unbound and initialised by ``create_app``.

Imports no domain.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from ticketing.crypto import KeyRing
from ticketing.models import Base


def client_fingerprint() -> str:
    """Rate-limit key: a keyed hash of the client address, so that not even the limiter's
    storage (Redis, in production) holds an IP address. Behind a proxy the address is the
    one the trusted proxy saw (``TICKETING_TRUSTED_PROXIES``, werkzeug's ProxyFix)."""
    address = (request.remote_addr or "unknown").encode()
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, b"ratelimit|" + address, hashlib.sha256).hexdigest()[:32]


# Objects stay readable after a service commits: the route that called it renders them
# without a second round trip. Where freshness matters, services re-read with
# ``populate_existing`` or go through conditional UPDATEs, never through stale objects.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=client_fingerprint, headers_enabled=True)

# The blueprints that carry a rate limit (``@limiter.limit``): the email forms and door
# pairing. Every other request skips the limiter at its first test instead of resolving
# limits it does not have; on the order, scan and streaming-gate paths that is a tenth
# of the CPU. A limit added to another blueprint must add that blueprint here.
LIMITED_BLUEPRINTS = frozenset({"checkout", "privacy", "checkin_api"})


@limiter.request_filter
def _has_no_limits() -> bool:
    return request.blueprint not in LIMITED_BLUEPRINTS


def keyring() -> KeyRing:
    """The keys of the running app, loaded once by ``create_app``."""
    return current_app.extensions["guichet.keyring"]
