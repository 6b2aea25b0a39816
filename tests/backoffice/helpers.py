"""Staff accounts for back-office tests, made through the same services the pages use."""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from dataclasses import dataclass
from typing import Any

import pyotp
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import csrf_token, make_organizer, outbox, post_form
from ticketing.backoffice import services
from ticketing.extensions import db, keyring
from ticketing.models import utcnow

PASSWORD = "correct horse battery"
LINK = re.compile(r"/manage/link/([A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class Member:
    id: uuid.UUID
    email: str
    role: str
    organizer_id: uuid.UUID


@dataclass(frozen=True)
class Venue:
    """An organiser with one member per role, and its API token."""

    organizer_id: uuid.UUID
    api_token: str
    owner: Member
    manager: Member
    door: Member

    def member(self, role: str) -> Member:
        return {"owner": self.owner, "manager": self.manager, "door": self.door}[role]


def make_member(organizer_id: uuid.UUID, email: str, role: str, password: str = PASSWORD) -> Member:
    """An active staff member (invited, then the invitation link used); in an app context."""
    staff, token = services.create_staff(db.session, keyring(), organizer_id, email, role, utcnow())
    services.use_link(
        db.session, keyring(), token, password=password, password_again=password, display_name=None, now=utcnow()
    )
    return Member(staff.id, email, role, organizer_id)


def make_venue(app: Flask, name: str = "Salle Test", domain: str = "venue.example") -> Venue:
    with app.app_context():
        organizer, api_token = make_organizer(name)
        members = {
            role: make_member(organizer.id, f"{role}.staff@{domain}", role) for role in ("owner", "manager", "door")
        }
        return Venue(organizer.id, api_token, **members)


def log_in(client: FlaskClient, email: str, password: str = PASSWORD, **kwargs: Any):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/manage/login")
    return client.post("/manage/login", data={"csrf_token": token, "email": email, "password": password}, **kwargs)


def last_mail(app: Flask) -> Any:
    messages = outbox(app)
    assert messages, "no mail in the outbox"
    return email.message_from_bytes(messages[-1].read_bytes(), policy=email.policy.default)


def link_in(message: Any) -> str:
    match = LINK.search(message.get_body(("plain",)).get_content())
    assert match, "no back-office link in the mail"
    return f"/manage/link/{match.group(1)}"


SECRET_ON_PAGE = re.compile(r'id="totp-secret">([A-Z2-7 ]+)<')


def turn_on_totp(client: FlaskClient) -> str:
    """Through the account page, as a person does: read the key, type the app's code."""
    page = client.get("/manage/account/totp").get_data(as_text=True)
    secret = SECRET_ON_PAGE.search(page).group(1).replace(" ", "")  # type: ignore[union-attr]
    assert 'src="data:image/svg+xml' in page  # the QR code, drawn by segno, inline
    enabled = post_form(client, "/manage/account/totp", "/manage/account/totp", {"code": pyotp.TOTP(secret).now()})
    assert enabled.status_code == 302, enabled.get_data(as_text=True)
    return secret
