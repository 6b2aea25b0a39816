"""One-time links: invitations and password resets are mailed, work once, and expire."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.backoffice.helpers import PASSWORD, last_mail, link_in, log_in, make_venue
from tests.conftest import csrf_token, outbox, post_form
from tests.privacy.test_no_personal_data_outside_vault import raw_database_bytes
from ticketing.backoffice import services
from ticketing.backoffice.models import StaffMember
from ticketing.errors import Conflict
from ticketing.extensions import db, keyring
from ticketing.models import utcnow

NEW_PASSWORD = "the invitee's own password"


def set_password(client, link: str, password: str = NEW_PASSWORD, **extra: str):  # type: ignore[no-untyped-def]
    # The token comes from the login page: a spent link's page has no form to read it from.
    return post_form(client, "/manage/login", link, {"password": password, "password_again": password, **extra})


def test_an_owner_invites_a_manager_who_sets_a_password_once_through_the_mailed_link(app, client):
    venue = make_venue(app)
    log_in(client, venue.owner.email)

    invited = post_form(
        client, "/manage/staff", "/manage/staff/invite", {"email": "new.hand@venue.example", "role": "manager"}
    )
    mail = last_mail(app)
    link = link_in(mail)
    invitee = app.test_client()
    form = invitee.get(link)
    accepted = set_password(invitee, link, display_name="Nouvelle Recrue")
    again = app.test_client().get(link)
    staff_page = client.get("/manage/staff").get_data(as_text=True)

    assert invited.status_code == 302
    assert mail["To"] == "new.hand@venue.example" and "Salle Test" in mail["Subject"]
    assert form.status_code == 200 and "new.hand@venue.example" in form.get_data(as_text=True)
    assert accepted.status_code == 302 and accepted.headers["Location"] == "/manage/"
    assert invitee.get("/manage/").status_code == 200  # logged in by the link
    assert again.status_code == 410
    assert "Nouvelle Recrue" in staff_page and "Manager" in staff_page
    assert log_in(app.test_client(), "new.hand@venue.example", NEW_PASSWORD).status_code == 302


def test_following_a_link_without_sending_the_form_does_not_spend_it(app, client):
    venue = make_venue(app)
    with app.app_context():
        _staff, token = services.create_staff(
            db.session, keyring(), venue.organizer_id, "late@venue.example", "door", utcnow()
        )

    for _ in range(3):
        assert client.get(f"/manage/link/{token}").status_code == 200  # a mail scanner, the person, a reload
    assert set_password(client, f"/manage/link/{token}").status_code == 302


def test_an_invitation_expires_after_seven_days(app, client):
    venue = make_venue(app)
    with app.app_context():
        _staff, token = services.create_staff(
            db.session,
            keyring(),
            venue.organizer_id,
            "slow@venue.example",
            "door",
            utcnow() - dt.timedelta(days=7, minutes=1),
        )

    page = client.get(f"/manage/link/{token}")
    sent = post_form(
        client, "/manage/login", f"/manage/link/{token}", {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
    )

    assert page.status_code == 401 and "expired" in page.get_data(as_text=True)
    assert sent.status_code == 401
    assert log_in(client, "slow@venue.example", NEW_PASSWORD).status_code == 401


def test_a_password_reset_answers_the_same_for_any_address_and_mails_only_an_account(app, client):
    venue = make_venue(app)

    unknown = post_form(
        client, "/manage/password/forgot", "/manage/password/forgot", {"email": "stranger@venue.example"}
    )
    mails_after_unknown = len(outbox(app))
    known = post_form(client, "/manage/password/forgot", "/manage/password/forgot", {"email": venue.door.email})

    assert unknown.status_code == known.status_code == 200
    assert unknown.get_data(as_text=True) == known.get_data(as_text=True)
    assert mails_after_unknown == 0
    mail = last_mail(app)
    assert mail["To"] == venue.door.email
    link = link_in(mail)
    assert set_password(client, link).status_code == 302
    assert set_password(app.test_client(), link, "yet another password").status_code == 410
    assert log_in(app.test_client(), venue.door.email, PASSWORD).status_code == 401
    assert log_in(app.test_client(), venue.door.email, NEW_PASSWORD).status_code == 302


def test_a_reset_link_expires_after_an_hour_and_a_newer_one_replaces_it(app, client):
    venue = make_venue(app)
    with app.app_context():
        _staff, old = services.reset_link_for(
            db.session, keyring(), venue.door.email, utcnow() - dt.timedelta(minutes=61)
        )
        _staff, older = services.reset_link_for(
            db.session, keyring(), venue.door.email, utcnow() - dt.timedelta(minutes=5)
        )
        _staff, newest = services.reset_link_for(db.session, keyring(), venue.door.email, utcnow())

    assert client.get(f"/manage/link/{old}").status_code == 410  # replaced (and expired)
    assert client.get(f"/manage/link/{older}").status_code == 410  # replaced by the newest
    assert client.get(f"/manage/link/{newest}").status_code == 200


def test_an_expired_reset_link_is_refused(app, client):
    venue = make_venue(app)
    with app.app_context():
        _staff, token = services.reset_link_for(
            db.session, keyring(), venue.door.email, utcnow() - dt.timedelta(minutes=61)
        )

    assert client.get(f"/manage/link/{token}").status_code == 401
    assert set_password(client, f"/manage/link/{token}").status_code == 401


def test_a_forged_link_is_refused(client, app):
    make_venue(app)

    assert client.get("/manage/link/not-a-real-token").status_code == 401


def test_links_are_stored_as_hashes_only(app, client):
    venue = make_venue(app)
    log_in(client, venue.owner.email)
    post_form(client, "/manage/staff", "/manage/staff/invite", {"email": "hashed@venue.example", "role": "door"})
    token = link_in(last_mail(app)).rsplit("/", 1)[1]

    stored = raw_database_bytes(app)

    assert token.encode() not in stored


def test_one_address_has_one_staff_account(app):
    venue = make_venue(app)
    other = make_venue(app, "Other Venue", domain="elsewhere.example")

    with app.app_context(), pytest.raises(Conflict):
        services.create_staff(db.session, keyring(), other.organizer_id, venue.door.email.upper(), "door", utcnow())


def test_a_weak_or_mistyped_password_is_refused_with_the_reason(app, client):
    venue = make_venue(app)
    with app.app_context():
        _staff, token = services.create_staff(
            db.session, keyring(), venue.organizer_id, "typo@venue.example", "door", utcnow()
        )
    link = f"/manage/link/{token}"

    short = set_password(client, link, "short")
    differ = post_form(client, link, link, {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD + "!"})

    assert short.status_code == 422 and "at least 10 characters" in short.get_data(as_text=True)
    assert differ.status_code == 422 and "The two passwords differ." in differ.get_data(as_text=True)
    assert client.get(link).status_code == 200  # still unspent
    with app.app_context():
        assert db.session.query(StaffMember).filter_by(status="invited").count() == 1


def test_the_forgot_page_takes_no_token_from_elsewhere(client, app):
    """Every back-office form carries the CSRF token: without it, a 400 and nothing mailed."""
    make_venue(app)
    csrf_token(client, "/manage/password/forgot")

    refused = client.post("/manage/password/forgot", data={"email": "owner.staff@venue.example"})

    assert refused.status_code == 400
    assert outbox(app) == []
