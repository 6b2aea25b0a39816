"""Staff rules: accounts, one-time links, passwords, the second factor, roles, removal.

A staff member's email and display name live in the vault as a ``staff`` record (their
own blind-index purpose: no buyer's lookup finds them). Every change here is one write
transaction; links store only the token's hash, expire, and are spent by one conditional
``UPDATE``.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pyotp
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ticketing.backoffice.models import LINK_PURPOSES, ROLES, StaffLink, StaffMember
from ticketing.backoffice.passwords import MAX_LENGTH, MIN_LENGTH, hash_password, needs_rehash, password_matches
from ticketing.catalog.models import Organizer
from ticketing.catalog.services import parse_uuid
from ticketing.crypto import KeyRing, hash_token, new_token
from ticketing.errors import Conflict, Forbidden, Invalid, NotFound
from ticketing.models import begin_write
from ticketing.privacy.errors import InvalidLink, LinkExpired, LinkUsed
from ticketing.privacy.person_links import PersonLinks
from ticketing.privacy.scrub import scrub_vault
from ticketing.privacy.services import erase_records_in_transaction
from ticketing.privacy.vault import (
    change_person_name,
    email_indexes,
    find_person_ids,
    open_for_person,
    read_person,
    seal_for_person,
    store_person,
)
from ticketing.schema import Body, Choice, Email, Text, read

log = logging.getLogger(__name__)

LINK_LIFETIMES = {"invite": dt.timedelta(days=7), "reset": dt.timedelta(hours=1)}
# The first owner's link (create-organizer, the demo) is printed, not mailed: a day.
FIRST_LOGIN_LIFETIME = dt.timedelta(hours=24)
TOTP_FIELD = "totp_secret"
TOTP_ISSUER = "Guichet"


@dataclass(frozen=True)
class StaffView:
    """A staff member as the owners' staff page shows them (decrypted, in memory only)."""

    id: uuid.UUID
    role: str
    status: str
    email: str | None
    display_name: str | None
    has_totp: bool
    created_at: dt.datetime
    activated_at: dt.datetime | None


def _writing(session: Session) -> None:
    begin_write(session)


def _invalid_link() -> InvalidLink:
    return InvalidLink(_("This link is not valid. Check that you copied the whole link."))


class _Role(Body):
    role = Choice(ROLES, required=True)


class _Invitation(Body):
    email = Email(required=True)
    role = Choice(ROLES, required=True)


class _DisplayName(Body):
    display_name = Text(max_length=100)


ROLE = _Role()
INVITATION = _Invitation()
DISPLAY_NAME = _DisplayName()


def parse_role(value: str | None) -> str:
    return read(ROLE, {"role": value})["role"]


def parse_new_password(password: str | None, confirmation: str | None) -> str:
    """The rules of a new password: long enough, not absurdly long, typed twice alike."""
    errors: dict[str, str] = {}
    if not password or len(password) < MIN_LENGTH:
        errors["password"] = _("Use at least %(n)d characters.", n=MIN_LENGTH)
    elif len(password) > MAX_LENGTH:
        errors["password"] = _("Must be at most %(n)d characters.", n=MAX_LENGTH)
    elif password != confirmation:
        errors["password_again"] = _("The two passwords differ.")
    if errors:
        raise Invalid(_("Some fields need attention."), errors=errors)
    return password or ""


# --- finding staff ---------------------------------------------------------------------


def find_staff_by_email(session: Session, keyring: KeyRing, email: str) -> StaffMember | None:
    """The invited or active staff account of this address (one per address)."""
    person_ids = find_person_ids(session, email_indexes(keyring, email, kind="staff"), kind="staff")
    if not person_ids:
        return None
    return session.execute(
        select(StaffMember).where(StaffMember.person_id.in_(person_ids), StaffMember.status != "removed")
    ).scalar()


def get_staff(session: Session, organizer_id: uuid.UUID, staff_id: str) -> StaffMember:
    """One of the organiser's staff; another organiser's answers 404, like a missing one."""
    staff = session.get(StaffMember, parse_uuid(staff_id, _("No such staff member.")))
    if staff is None or staff.organizer_id != organizer_id or staff.status == "removed":
        raise NotFound(_("No such staff member."))
    return staff


def list_staff(session: Session, keyring: KeyRing, organizer_id: uuid.UUID) -> list[StaffView]:
    members = session.execute(
        select(StaffMember)
        .where(StaffMember.organizer_id == organizer_id, StaffMember.status != "removed")
        .order_by(StaffMember.created_at, StaffMember.id)
    ).scalars()
    views = []
    for member in members:
        record = read_person(session, keyring, member.person_id) if member.person_id else None
        views.append(
            StaffView(
                id=member.id,
                role=member.role,
                status=member.status,
                email=record.email if record else None,
                display_name=record.name if record else None,
                has_totp=member.has_totp,
                created_at=member.created_at,
                activated_at=member.activated_at,
            )
        )
    return views


def staff_identity(session: Session, keyring: KeyRing, staff: StaffMember) -> tuple[str | None, str | None]:
    """(email, display name) of a staff member, decrypted for their own pages."""
    record = read_person(session, keyring, staff.person_id) if staff.person_id else None
    return (record.email, record.name) if record else (None, None)


# --- accounts and links -----------------------------------------------------------------


def _add_link(session: Session, staff_id: uuid.UUID, purpose: str, now: dt.datetime, lifetime: dt.timedelta) -> str:
    if purpose not in LINK_PURPOSES:
        raise ValueError(f"unknown link purpose {purpose!r}")
    token = new_token()
    session.add(
        StaffLink(
            token_hash=hash_token(token), staff_id=staff_id, purpose=purpose, created_at=now, expires_at=now + lifetime
        )
    )
    return token


def _spend_other_links(session: Session, staff_id: uuid.UUID, now: dt.datetime) -> None:
    """A newer link, a password set or a removal makes every older link of the account useless."""
    session.execute(
        update(StaffLink)
        .where(StaffLink.staff_id == staff_id, StaffLink.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )


def create_staff(
    session: Session,
    keyring: KeyRing,
    organizer_id: uuid.UUID,
    email: str,
    role: str,
    now: dt.datetime,
    *,
    link_lifetime: dt.timedelta | None = None,
) -> tuple[StaffMember, str]:
    """A new, invited staff account and its invitation link (returned once: the caller mails
    or prints it). One address has one staff account across Guichet: login is by address."""
    invitation = read(INVITATION, {"email": email, "role": role})
    email_value, role_value = invitation["email"], invitation["role"]
    _writing(session)
    try:
        if session.get(Organizer, organizer_id) is None:
            raise NotFound(_("No such organiser."))
        if find_staff_by_email(session, keyring, email_value) is not None:
            message = _("This address already has a staff account.")
            raise Conflict(message, code="staff_exists", errors={"email": message})
        person_id = store_person(session, keyring, email=email_value, now=now, kind="staff")
        staff = StaffMember(
            organizer_id=organizer_id,
            person_id=person_id,
            role=role_value,
            status="invited",
            session_version=1,
            created_at=now,
        )
        session.add(staff)
        session.flush()
        token = _add_link(session, staff.id, "invite", now, link_lifetime or LINK_LIFETIMES["invite"])
        session.commit()
    except BaseException:
        session.rollback()
        raise
    log.info("staff %s invited (role %s) for organiser %s", staff.id, role_value, organizer_id)
    return staff, token


def issue_link(
    session: Session, staff_id: uuid.UUID, purpose: str, now: dt.datetime, lifetime: dt.timedelta | None = None
) -> str:
    """A fresh link for an account (a password reset, the invitation sent again, the demo's
    owner); every older link of the account stops working."""
    _writing(session)
    staff = session.get(StaffMember, staff_id, populate_existing=True)
    if staff is None or staff.status == "removed":
        session.rollback()
        raise NotFound(_("No such staff member."))
    _spend_other_links(session, staff.id, now)
    token = _add_link(session, staff.id, purpose, now, lifetime or LINK_LIFETIMES[purpose])
    session.commit()
    return token


def open_link(session: Session, token: str, now: dt.datetime) -> tuple[StaffMember, StaffLink]:
    """Check a link without spending it (the page that asks for the new password): mail
    scanners that follow links must not use them up."""
    link = session.get(StaffLink, hash_token(token)) if token and len(token) <= 128 else None
    if link is None:
        raise _invalid_link()
    if link.used_at is not None:
        raise LinkUsed(_("This link was already used. Ask for a new one if you need to."))
    if link.expires_at <= now:
        raise LinkExpired(_("This link has expired. Ask for a new one."))
    staff = session.get(StaffMember, link.staff_id)
    if staff is None or staff.status == "removed":
        raise _invalid_link()
    return staff, link


def use_link(
    session: Session,
    keyring: KeyRing,
    token: str,
    *,
    password: str,
    password_again: str,
    display_name: str | None,
    now: dt.datetime,
) -> StaffMember:
    """Spend a link: set the password (and, on an invitation, the display name), make the
    account active, and end every session opened before."""
    password = parse_new_password(password, password_again)
    name = None
    if display_name is not None:
        name = read(DISPLAY_NAME, {"display_name": display_name}).get("display_name")
    password_hash = hash_password(password)  # slow: before the write lock
    _writing(session)
    try:
        staff, link = open_link(session, token, now)
        spent = session.execute(
            update(StaffLink)
            .where(StaffLink.token_hash == link.token_hash, StaffLink.used_at.is_(None), StaffLink.expires_at > now)
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if spent != 1:
            raise LinkUsed(_("This link was already used. Ask for a new one if you need to."))
        _spend_other_links(session, staff.id, now)
        staff = session.get(StaffMember, staff.id, populate_existing=True)
        assert staff is not None
        staff.password_hash = password_hash
        staff.session_version += 1
        if staff.status == "invited":
            staff.status = "active"
            staff.activated_at = now
        if name is not None and staff.person_id is not None:
            change_person_name(session, keyring, staff.person_id, name)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    log.info("staff %s set a password (%s link)", staff.id, link.purpose)
    return staff


def reset_link_for(session: Session, keyring: KeyRing, email: str, now: dt.datetime) -> tuple[StaffMember, str] | None:
    """A reset link for an active account of this address, or None (the caller answers the
    same either way: nobody learns from the page whether an address has an account)."""
    staff = find_staff_by_email(session, keyring, email)
    session.rollback()
    if staff is None or not staff.is_active:
        return None
    return staff, issue_link(session, staff.id, "reset", now)


# --- logging in -------------------------------------------------------------------------


def check_password(session: Session, keyring: KeyRing, email: str, password: str) -> StaffMember | None:
    """The active account these credentials open, or None. An unknown address costs the
    same argon2 time as a wrong password."""
    staff = find_staff_by_email(session, keyring, email)
    active = staff if staff is not None and staff.is_active else None
    matched = password_matches(active.password_hash if active else None, password)
    session.rollback()
    if not matched or active is None:
        return None
    if active.password_hash and needs_rehash(active.password_hash):
        _writing(session)
        session.execute(
            update(StaffMember)
            .where(StaffMember.id == active.id, StaffMember.password_hash == active.password_hash)
            .values(password_hash=hash_password(password))
            .execution_options(synchronize_session=False)
        )
        session.commit()
    return active


def change_password(
    session: Session, staff_id: uuid.UUID, *, current: str, new: str, new_again: str, now: dt.datetime
) -> int:
    """Replace the password after checking the current one; returns the new session
    version (the caller keeps its own session; every other one ends)."""
    staff = session.get(StaffMember, staff_id, populate_existing=True)
    if staff is None or not staff.is_active:
        raise NotFound(_("No such staff member."))
    if not password_matches(staff.password_hash, current or ""):
        message = _("This is not your current password.")
        raise Invalid(message, errors={"current_password": message})
    password = parse_new_password(new, new_again)
    password_hash = hash_password(password)
    session.rollback()
    _writing(session)
    staff = session.get(StaffMember, staff_id, populate_existing=True)
    assert staff is not None
    staff.password_hash = password_hash
    staff.session_version += 1
    _spend_other_links(session, staff.id, now)
    version = staff.session_version
    session.commit()
    log.info("staff %s changed their password; older sessions end", staff_id)
    return version


def end_other_sessions(session: Session, staff_id: uuid.UUID) -> int:
    _writing(session)
    staff = session.get(StaffMember, staff_id, populate_existing=True)
    assert staff is not None
    staff.session_version += 1
    version = staff.session_version
    session.commit()
    return version


def change_display_name(session: Session, keyring: KeyRing, staff: StaffMember, display_name: str | None) -> None:
    name = read(DISPLAY_NAME, {"display_name": display_name}).get("display_name")
    if staff.person_id is None:
        raise NotFound(_("No such staff member."))
    _writing(session)
    change_person_name(session, keyring, staff.person_id, name)
    session.commit()


# --- the second factor ------------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, account: str, organizer_name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=f"{TOTP_ISSUER} ({organizer_name})")


def _matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The 30-second step this code belongs to (the current one or a neighbour, for clocks
    that drift), or None."""
    code = "".join(code.split())
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _claim_step(session: Session, staff_id: uuid.UUID, step: int) -> bool:
    """Record the step as used (one conditional UPDATE): a code is accepted once only."""
    claimed = session.execute(
        update(StaffMember)
        .where(StaffMember.id == staff_id)
        .where(StaffMember.totp_last_step.is_(None) | (StaffMember.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    ).rowcount
    return claimed == 1


def enable_totp(
    session: Session, keyring: KeyRing, staff_id: uuid.UUID, secret: str, code: str, now: dt.datetime
) -> None:
    """Turn the second factor on once the person proved their app shows the right code."""
    step = _matching_step(secret, code or "", now)
    if step is None:
        message = _("This code does not match. Check the time on your phone and type the newest code.")
        raise Invalid(message, errors={"code": message})
    _writing(session)
    try:
        staff = session.get(StaffMember, staff_id, populate_existing=True)
        if staff is None or staff.person_id is None or not staff.is_active:
            raise NotFound(_("No such staff member."))
        staff.totp_secret_ct = seal_for_person(session, keyring, staff.person_id, TOTP_FIELD, secret)
        staff.totp_last_step = None
        session.flush()
        _claim_step(session, staff.id, step)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    log.info("staff %s turned on the second factor", staff_id)


def verify_totp(session: Session, keyring: KeyRing, staff_id: uuid.UUID, code: str, now: dt.datetime) -> bool:
    """Whether this code, never used before, belongs to the account's seed right now."""
    staff = session.get(StaffMember, staff_id, populate_existing=True)
    if staff is None or staff.totp_secret_ct is None or staff.person_id is None:
        session.rollback()
        return False
    secret = open_for_person(session, keyring, staff.person_id, TOTP_FIELD, staff.totp_secret_ct)
    step = _matching_step(secret, code or "", now) if secret else None
    session.rollback()
    if step is None:
        return False
    _writing(session)
    claimed = _claim_step(session, staff_id, step)
    session.commit()
    return claimed


def disable_totp(session: Session, staff_id: uuid.UUID) -> None:
    _writing(session)
    session.execute(
        update(StaffMember)
        .where(StaffMember.id == staff_id)
        .values(totp_secret_ct=None, totp_last_step=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    log.info("staff %s: second factor turned off", staff_id)


# --- roles and removal ------------------------------------------------------------------


def _live_owner_ids(session: Session, organizer_id: uuid.UUID) -> list[uuid.UUID]:
    """The organiser's active owners, locked (PostgreSQL; SQLite holds the write lock
    already): two owners demoting each other at once cannot leave none."""
    return list(
        session.execute(
            select(StaffMember.id)
            .where(
                StaffMember.organizer_id == organizer_id,
                StaffMember.role == "owner",
                StaffMember.status == "active",
            )
            .with_for_update()
        ).scalars()
    )


def _refuse_last_owner(session: Session, staff: StaffMember) -> None:
    if staff.role == "owner" and staff.status == "active":
        owners = _live_owner_ids(session, staff.organizer_id)
        if owners == [staff.id]:
            raise Forbidden(
                _("An organiser keeps at least one owner: make someone else owner first."), code="last_owner"
            )


def change_role(session: Session, organizer_id: uuid.UUID, staff_id: str, role: str) -> StaffMember:
    """Another organiser's member is a 404 before anything about the role is said."""
    _writing(session)
    try:
        staff = get_staff(session, organizer_id, staff_id)
        session.refresh(staff)
        role = parse_role(role)
        if role != "owner":
            _refuse_last_owner(session, staff)
        staff.role = role
        session.commit()
    except BaseException:
        session.rollback()
        raise
    log.info("staff %s is now %s", staff.id, role)
    return staff


def remove_staff(
    session: Session, links: Sequence[PersonLinks], organizer_id: uuid.UUID, staff_id: str, now: dt.datetime
) -> None:
    """Remove an account and erase its email and name (crypto-shredding, as for buyers).

    The row stays, with no personal data, so that what it did can still be attributed.
    """
    _writing(session)
    try:
        staff = get_staff(session, organizer_id, staff_id)
        session.refresh(staff)
        _refuse_last_owner(session, staff)
        staff.status = "removed"
        staff.removed_at = now
        staff.password_hash = None
        staff.totp_secret_ct = None
        staff.session_version += 1
        _spend_other_links(session, staff.id, now)
        session.flush()
        if staff.person_id is not None:
            erase_records_in_transaction(session, links, [staff.person_id], route="staff_removed", now=now)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    log.info("staff %s removed; their email and name are erased", staff.id)
    scrub_vault(session.get_bind())
