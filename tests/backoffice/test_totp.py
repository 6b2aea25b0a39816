"""The second factor: set up with a code, asked at login, never accepted twice, and
required for everyone when an owner says so."""

from __future__ import annotations

import datetime as dt

import pyotp

from tests.backoffice.helpers import log_in, make_venue, turn_on_totp
from tests.conftest import post_form
from tests.privacy.test_no_personal_data_outside_vault import raw_database_bytes
from ticketing.backoffice.models import StaffMember
from ticketing.extensions import db


def code_step(client, code: str):  # type: ignore[no-untyped-def]
    return post_form(client, "/manage/login/code", "/manage/login/code", {"code": code})


def test_with_a_second_factor_the_password_alone_opens_nothing(app, client):
    venue = make_venue(app)
    log_in(client, venue.manager.email)
    secret = turn_on_totp(client)
    fresh = app.test_client()

    after_password = log_in(fresh, venue.manager.email)
    not_yet = fresh.get("/manage/")
    wrong = code_step(fresh, "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")

    assert after_password.headers["Location"] == "/manage/login/code"
    assert not_yet.status_code == 302 and not_yet.headers["Location"].startswith("/manage/login")
    assert wrong.status_code == 401


def test_a_code_opens_the_session_once_and_never_again(app, client):
    venue = make_venue(app)
    log_in(client, venue.manager.email)
    secret = turn_on_totp(client)
    first, second = app.test_client(), app.test_client()
    log_in(first, venue.manager.email)
    log_in(second, venue.manager.email)
    totp = pyotp.TOTP(secret)
    # The code typed at set-up was spent; wait for the app's next one the honest way:
    # the step after the current one is accepted too (clocks drift), once.
    code = totp.at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))

    accepted = code_step(first, code)
    replayed = code_step(second, code)

    assert accepted.status_code == 302 and accepted.headers["Location"] == "/manage/"
    assert first.get("/manage/").status_code == 200
    assert replayed.status_code == 401
    assert second.get("/manage/").status_code == 302


def test_the_seed_is_stored_sealed_never_in_clear(app, client):
    venue = make_venue(app)
    log_in(client, venue.owner.email)
    secret = turn_on_totp(client)

    stored = raw_database_bytes(app)

    assert secret.encode() not in stored
    with app.app_context():
        assert db.session.get(StaffMember, venue.owner.id).totp_secret_ct is not None


def test_a_wrong_code_at_set_up_leaves_the_factor_off(app, client):
    venue = make_venue(app)
    log_in(client, venue.door.email)
    client.get("/manage/account/totp")

    refused = post_form(client, "/manage/account/totp", "/manage/account/totp", {"code": "12345"})

    assert refused.status_code == 422
    with app.app_context():
        assert db.session.get(StaffMember, venue.door.id).totp_secret_ct is None


def test_an_owner_requires_a_second_factor_and_members_without_one_must_set_it_up(app):
    venue = make_venue(app)
    owner, door = app.test_client(), app.test_client()
    log_in(owner, venue.owner.email)
    turn_on_totp(owner)

    required = post_form(owner, "/manage/settings", "/manage/settings/security", {"require_staff_totp": "y"})
    logged_in = log_in(door, venue.door.email)
    elsewhere = door.get("/manage/")

    assert required.status_code == 302
    assert logged_in.headers["Location"] == "/manage/account/totp"
    assert elsewhere.status_code == 302 and elsewhere.headers["Location"] == "/manage/account/totp"
    turn_on_totp(door)
    assert door.get("/manage/").status_code == 200
    cannot_turn_off = post_form(door, "/manage/account", "/manage/account/totp/remove", {})
    assert cannot_turn_off.status_code == 403


def test_an_owner_turns_off_the_factor_of_a_member_who_lost_their_phone(app):
    venue = make_venue(app)
    owner, manager = app.test_client(), app.test_client()
    log_in(manager, venue.manager.email)
    turn_on_totp(manager)
    log_in(owner, venue.owner.email)

    reset = post_form(owner, "/manage/staff", f"/manage/staff/{venue.manager.id}/totp/reset", {})
    again = log_in(app.test_client(), venue.manager.email)

    assert reset.status_code == 302
    assert again.headers["Location"] == "/manage/"
