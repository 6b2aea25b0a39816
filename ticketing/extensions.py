"""Shared extension objects, created unbound and initialised by ``create_app``.

Imports no domain.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from flask import current_app, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from ticketing.crypto import KeyRing, blind_index
from ticketing.forms import EMAIL_PATTERN
from ticketing.models import Base


def _email_in_request() -> str:
    """The ``email`` field of a form or of a JSON body, for limits keyed on the address."""
    if request.is_json:
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # "[[[[...": the view answers it with a 400
            body = None
        value = body.get("email") if isinstance(body, dict) else None
    else:
        value = request.form.get("email")
    return value.strip() if isinstance(value, str) else ""


def email_fingerprint() -> str:
    """Rate-limit key of an address (a keyed hash: the storage never holds the address), so
    that nobody can flood a stranger's inbox from many clients."""
    return blind_index(keyring().blind_index_key, _email_in_request()).hex()[:32]


def not_an_email() -> bool:
    """A malformed address mails nobody and gets its field error: it skips address limits."""
    value = _email_in_request()
    return EMAIL_PATTERN.match(value) is None or not value.isprintable()


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

# The blueprints that carry a rate limit (``@limiter.limit``): orders, the email forms,
# door pairing, and the back office's login and password forms. Every other request skips
# the limiter at its first test instead of resolving limits it does not have. A limit
# added to another blueprint must add that blueprint here (a test checks it).
LIMITED_BLUEPRINTS = frozenset({"checkout", "checkout_api", "privacy", "checkin_api", "backoffice"})


@limiter.request_filter
def _has_no_limits() -> bool:
    return request.blueprint not in LIMITED_BLUEPRINTS


def keyring() -> KeyRing:
    """The keys of the running app, loaded by ``create_app``.

    Keys from the development key file are loaded again when the file changes: the daily
    ``rotate-master-key`` of another process adds and destroys master keys there, and a
    process still wrapping new data keys with a destroyed key would lose those persons.
    """
    extensions = current_app.extensions
    key_file = extensions.get("guichet.key_file")
    if key_file is not None and key_file_stamp(key_file) != extensions["guichet.key_file_stamp"]:
        extensions["guichet.reload_keyring"]()
    return extensions["guichet.keyring"]


def key_file_stamp(path: Path) -> tuple[int, int, int]:
    """Changes whenever the key file is replaced (``update_key_file`` renames a new one in)."""
    status = os.stat(path)
    return status.st_ino, status.st_mtime_ns, status.st_size
