"""The back office's blueprint, its guard, its navigation, and what every page template gets.

Pages live in ``ticketing/backoffice/pages/``, one module per area, each adding its views
to ``bp`` with an access rule from ``access`` (a view without one is refused). A new area
adds its module to ``PAGE_MODULES`` and, if it has a menu entry, one line to ``NAV``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app, g, session
from flask_babel import lazy_gettext

from ticketing.backoffice.access import PENDING_KEY, can, guard, no_store

bp = Blueprint("backoffice", __name__, url_prefix="/manage")
bp.before_request(guard)
bp.after_request(no_store)

PAGE_MODULES = ("login", "home", "staff", "settings", "tokens", "account")


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: Any  # a lazy translation
    capability: str | None  # None: every signed-in member


NAV = (
    NavItem("backoffice.home", lazy_gettext("Events"), None),
    NavItem("backoffice.staff_page", lazy_gettext("Staff"), "staff"),
    NavItem("backoffice.tokens_page", lazy_gettext("API tokens"), "tokens"),
    NavItem("backoffice.settings_page", lazy_gettext("Settings"), "settings"),
    NavItem("backoffice.account_page", lazy_gettext("My account"), None),
)


@bp.context_processor
def page_context() -> dict[str, Any]:
    staff = g.get("staff")
    nav = [item for item in NAV if staff is not None and (item.capability is None or can(item.capability))]
    return {"staff": staff, "organizer": g.get("organizer"), "nav": nav, "can": can}


def pending_fingerprint() -> str:
    """Rate-limit key of the account halfway through its login (the TOTP step)."""
    pending = session.get(PENDING_KEY)
    staff_id = str(pending.get("id")) if isinstance(pending, dict) else "none"
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, b"staff-code|" + staff_id.encode(), hashlib.sha256).hexdigest()[:32]


def register_pages() -> None:
    """Import every page module once, so that its views join ``bp`` before it is registered."""
    import importlib

    for name in PAGE_MODULES:
        importlib.import_module(f"ticketing.backoffice.pages.{name}")
