"""Who may open which back-office page: the one place that decides.

Every view of the back-office blueprint declares its rule with one decorator:

- ``@public``: reachable logged out (login, the one-time link pages);
- ``@signed_in``: any staff member of the organiser (home, their own account);
- ``@requires("orders")``: staff whose role grants that capability (``CAPABILITIES``).

The blueprint's ``before_request`` (``guard``) applies the rule before the view runs, and
refuses a view that declares none (a forgotten decorator is a 403, never an open page;
``tests/backoffice/test_access.py`` walks every route to prove it). Views then find the
staff member and their organiser in ``g.staff`` and ``g.organizer``, and look objects up
within ``g.organizer`` only (another organiser's id is a 404).

The login lives in the session cookie (signed): the staff id, the account's session
version (raised by a password change: every older session ends), the time of the last
request (``TICKETING_STAFF_IDLE_MINUTES``) and of the login (``MAX_SESSION``).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Response, abort, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _

from ticketing.backoffice.models import StaffMember
from ticketing.catalog.models import Organizer
from ticketing.extensions import db
from ticketing.models import utcnow

log = logging.getLogger(__name__)

# What each role may do. "door": pair and use door devices, see check-in progress;
# "events": create and change events; "orders": see buyers and their orders; "money":
# amounts, refunds; "reports": exports; "staff", "tokens", "settings": the owner's pages.
CAPABILITIES: dict[str, frozenset[str]] = {
    "owner": frozenset({"door", "events", "orders", "money", "reports", "staff", "tokens", "settings"}),
    "manager": frozenset({"door", "events", "orders", "money", "reports"}),
    "door": frozenset({"door"}),
}
ALL_CAPABILITIES = frozenset().union(*CAPABILITIES.values())
SESSION_KEY = "staff"
PENDING_KEY = "staff_pending"
# A login ends this long after it began, however active (a lost phone stays logged in a day at most).
MAX_SESSION = dt.timedelta(hours=12)
# The second step (TOTP code) must follow the password within this time.
PENDING_LIFETIME = dt.timedelta(minutes=5)
# The last-request time is rewritten at most this often (each rewrite is a new cookie).
SEEN_PRECISION = dt.timedelta(seconds=60)
ACCESS_ATTRIBUTE = "backoffice_access"

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class AccessRule:
    public: bool = False
    capability: str | None = None  # None with public=False: any signed-in staff member
    # Reachable before the second factor is set up, when the organiser requires one.
    before_totp: bool = False


def _declare(view: View, rule: AccessRule) -> View:
    setattr(view, ACCESS_ATTRIBUTE, rule)
    return view


def public(view: View) -> View:
    return _declare(view, AccessRule(public=True))


def signed_in(view: View) -> View:
    return _declare(view, AccessRule())


def signed_in_before_totp(view: View) -> View:
    """The account pages a member needs to set up the second factor the organiser requires."""
    return _declare(view, AccessRule(before_totp=True))


def requires(capability: str) -> Callable[[View], View]:
    if capability not in ALL_CAPABILITIES:
        raise ValueError(f"unknown back-office capability {capability!r}")
    return lambda view: _declare(view, AccessRule(capability=capability))


def access_rule(view: Callable[..., Any] | None) -> AccessRule | None:
    return getattr(view, ACCESS_ATTRIBUTE, None)


def can(capability: str) -> bool:
    """For templates and views: may the signed-in member do this?"""
    staff = g.get("staff")
    return staff is not None and capability in CAPABILITIES[staff.role]


# --- the login session ------------------------------------------------------------------


def _stamp(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def start_session(staff: StaffMember, now: dt.datetime) -> None:
    """A new login: a fresh session (no fixation), the account's version, the time."""
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language
    session[SESSION_KEY] = {"id": str(staff.id), "v": staff.session_version, "since": _stamp(now), "seen": _stamp(now)}


def start_pending(staff: StaffMember, now: dt.datetime, next_url: str | None) -> None:
    """The password was right; the second factor is still to come."""
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language
    session[PENDING_KEY] = {"id": str(staff.id), "v": staff.session_version, "at": _stamp(now), "next": next_url}


def pending_staff_id(now: dt.datetime) -> tuple[uuid.UUID, int, str | None] | None:
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    try:
        staff_id = uuid.UUID(pending["id"])
        started = dt.datetime.fromtimestamp(int(pending["at"]), dt.UTC)
        version = int(pending["v"])
    except (KeyError, TypeError, ValueError):
        return None
    if not dt.timedelta(0) <= now - started <= PENDING_LIFETIME:
        session.pop(PENDING_KEY, None)
        return None
    return staff_id, version, pending.get("next")


def keep_session_version(version: int) -> None:
    """After this member's own password change: this session stays, the others end."""
    login = session.get(SESSION_KEY)
    if isinstance(login, dict):
        session[SESSION_KEY] = {**login, "v": version}


def end_session() -> None:
    session.pop(SESSION_KEY, None)
    session.pop(PENDING_KEY, None)
    session.pop("totp_candidate", None)


def _signed_in_staff(now: dt.datetime) -> tuple[StaffMember, Organizer] | None:
    """The session's staff member, or None when there is none or it has ended (idle too
    long, too old, an older session version, the account no longer active)."""
    login = session.get(SESSION_KEY)
    if not isinstance(login, dict):
        return None
    try:
        staff_id = uuid.UUID(login["id"])
        version = int(login["v"])
        since = dt.datetime.fromtimestamp(int(login["since"]), dt.UTC)
        seen = dt.datetime.fromtimestamp(int(login["seen"]), dt.UTC)
    except (KeyError, TypeError, ValueError):
        end_session()
        return None
    idle = dt.timedelta(minutes=current_app.config["STAFF_IDLE_MINUTES"])
    if now - seen > idle or now - since > MAX_SESSION or seen > now + SEEN_PRECISION:
        end_session()
        flash(_("Your session has ended. Please log in again."))
        return None
    staff = db.session.get(StaffMember, staff_id, populate_existing=True)
    if staff is None or not staff.is_active or staff.session_version != version:
        end_session()
        flash(_("Your session has ended. Please log in again."))
        return None
    organizer = db.session.get(Organizer, staff.organizer_id)
    if organizer is None:
        end_session()
        return None
    if now - seen >= SEEN_PRECISION:
        session[SESSION_KEY] = {**login, "seen": _stamp(now)}
    return staff, organizer


def safe_next(value: str | None) -> str | None:
    """Only a back-office path of this site: never an open redirect."""
    if not value or not value.startswith("/manage/") or value.startswith("//") or "\\" in value:
        return None
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else None


def guard() -> Response | None:
    """``before_request`` of the back-office blueprint: the rule of the view, applied."""
    view = current_app.view_functions.get(request.endpoint or "")
    rule = access_rule(view)
    if rule is None:
        log.error("back-office view %s declares no access rule: refused", request.endpoint)
        abort(403)
    if rule.public:
        return None
    found = _signed_in_staff(utcnow())
    if found is None:
        next_url = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("backoffice.login", next=safe_next(next_url)))
    staff, organizer = found
    g.staff, g.organizer = staff, organizer
    if organizer.require_staff_totp and not staff.has_totp and not rule.before_totp:
        flash(_("Your organiser requires a second factor: set it up to continue."))
        return redirect(url_for("backoffice.totp_setup"))
    if rule.capability is not None and rule.capability not in CAPABILITIES[staff.role]:
        abort(403)
    return None


def no_store(response: Response) -> Response:
    """Back-office pages show staff and, later, buyers' data: never kept in a cache."""
    response.headers["Cache-Control"] = "no-store"
    return response
