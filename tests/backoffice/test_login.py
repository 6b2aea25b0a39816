"""Logging in: passwords, rate limits, sessions that end (idle, too old, password changed)."""

from __future__ import annotations

import pytest

import config
from tests.backoffice.helpers import PASSWORD, log_in, make_venue
from tests.conftest import csrf_token, post_form
from ticketing.backoffice.access import SESSION_KEY
from ticketing.backoffice.models import StaffMember
from ticketing.extensions import db


def test_the_right_password_logs_in_and_a_wrong_one_or_an_unknown_address_answers_alike(app, client):
    venue = make_venue(app)

    wrong = log_in(client, venue.owner.email, "not the password")
    unknown = log_in(client, "nobody.here@venue.example", PASSWORD)
    right = log_in(client, venue.owner.email)
    home = client.get("/manage/")

    assert wrong.status_code == unknown.status_code == 401
    message = "This email address and password do not match an account."
    assert message in wrong.get_data(as_text=True) and message in unknown.get_data(as_text=True)
    assert right.status_code == 302 and right.headers["Location"] == "/manage/"
    assert home.status_code == 200 and "Salle Test" in home.get_data(as_text=True)


def test_the_login_page_sends_back_to_the_page_asked_for_and_never_elsewhere(app, client):
    venue = make_venue(app)

    asked = client.get("/manage/tokens")
    token = csrf_token(client, "/manage/login?next=/manage/tokens")
    inside = client.post(
        "/manage/login",
        data={"csrf_token": token, "email": venue.owner.email, "password": PASSWORD, "next": "/manage/tokens"},
    )
    client.post("/manage/logout", data={"csrf_token": csrf_token(client, "/manage/account")})
    token = csrf_token(client, "/manage/login")
    outside = client.post(
        "/manage/login",
        data={"csrf_token": token, "email": venue.owner.email, "password": PASSWORD, "next": "//evil.example/x"},
    )

    assert asked.headers["Location"] == "/manage/login?next=/manage/tokens"
    assert inside.headers["Location"] == "/manage/tokens"
    assert outside.headers["Location"] == "/manage/"


def test_login_attempts_are_limited_per_account_whatever_the_client(app, client):
    venue = make_venue(app)

    answers = [
        log_in(client, venue.manager.email, f"guess number {n}", environ_base={"REMOTE_ADDR": f"10.0.0.{n}"})
        for n in range(6)
    ]
    right_password_now = log_in(client, venue.manager.email, environ_base={"REMOTE_ADDR": "10.0.1.1"})
    other_account = log_in(client, venue.owner.email, environ_base={"REMOTE_ADDR": "10.0.1.2"})

    assert [a.status_code for a in answers] == [401] * 5 + [429]
    assert right_password_now.status_code == 429
    assert other_account.status_code == 302


def test_login_attempts_are_limited_per_client_whatever_the_account(app, client):
    make_venue(app)

    answers = [
        log_in(client, f"someone{n}@venue.example", "whatever it is", environ_base={"REMOTE_ADDR": "10.9.9.9"})
        for n in range(21)
    ]

    assert [a.status_code for a in answers] == [401] * 20 + [429]


def _shift_session(client, **minutes: int) -> None:
    with client.session_transaction() as session:
        login = dict(session[SESSION_KEY])
        for name, value in minutes.items():
            login[name] = login[name] - value * 60
        session[SESSION_KEY] = login


def test_a_session_ends_after_the_idle_time_and_not_before(app, client):
    venue = make_venue(app)
    log_in(client, venue.door.email)
    idle = app.config["STAFF_IDLE_MINUTES"]

    _shift_session(client, seen=idle - 2, since=idle - 2)
    still_in = client.get("/manage/")
    _shift_session(client, seen=idle + 1, since=idle + 1)
    ended = client.get("/manage/")
    after = client.get("/manage/account")

    assert still_in.status_code == 200
    assert ended.status_code == 302 and ended.headers["Location"].startswith("/manage/login")
    assert after.status_code == 302


def test_a_session_ends_twelve_hours_after_the_login_however_active(app, client):
    venue = make_venue(app)
    log_in(client, venue.door.email)

    _shift_session(client, since=12 * 60 + 1)
    ended = client.get("/manage/")

    assert ended.status_code == 302 and ended.headers["Location"].startswith("/manage/login")


def test_changing_the_password_ends_every_other_session_and_keeps_this_one(app):
    venue = make_venue(app)
    laptop, phone = app.test_client(), app.test_client()
    log_in(laptop, venue.manager.email)
    log_in(phone, venue.manager.email)
    new_password = "a brand new long password"

    changed = post_form(
        laptop,
        "/manage/account",
        "/manage/account/password",
        {"current_password": PASSWORD, "password": new_password, "password_again": new_password},
    )

    assert changed.status_code == 302
    assert laptop.get("/manage/").status_code == 200
    ended = phone.get("/manage/")
    assert ended.status_code == 302 and ended.headers["Location"].startswith("/manage/login")
    assert log_in(app.test_client(), venue.manager.email, PASSWORD).status_code == 401
    assert log_in(app.test_client(), venue.manager.email, new_password).status_code == 302


def test_a_wrong_current_password_changes_nothing(app, client):
    venue = make_venue(app)
    log_in(client, venue.manager.email)

    refused = post_form(
        client,
        "/manage/account",
        "/manage/account/password",
        {"current_password": "not it at all", "password": "x" * 12, "password_again": "x" * 12},
    )

    assert refused.status_code == 422
    assert "This is not your current password." in refused.get_data(as_text=True)
    assert log_in(app.test_client(), venue.manager.email).status_code == 302


def test_a_removed_member_is_logged_out_at_once(app):
    venue = make_venue(app)
    owner, door = app.test_client(), app.test_client()
    log_in(owner, venue.owner.email)
    log_in(door, venue.door.email)

    removed = post_form(owner, "/manage/staff", f"/manage/staff/{venue.door.id}/remove", {})

    assert removed.status_code == 302
    assert door.get("/manage/").status_code == 302
    assert log_in(app.test_client(), venue.door.email).status_code == 401
    with app.app_context():
        member = db.session.get(StaffMember, venue.door.id)
        assert member.status == "removed" and member.person_id is None and member.password_hash is None


def test_logging_out_ends_the_session(app, client):
    venue = make_venue(app)
    log_in(client, venue.owner.email)

    out = post_form(client, "/manage/account", "/manage/logout", {})

    assert out.status_code == 302
    assert client.get("/manage/").status_code == 302


def test_idle_time_is_configurable_and_bounded():
    assert config.TestingConfig({}).STAFF_IDLE_MINUTES == 60
    assert config.TestingConfig({"TICKETING_STAFF_IDLE_MINUTES": "15"}).STAFF_IDLE_MINUTES == 15
    with pytest.raises(config.ConfigError, match="TICKETING_STAFF_IDLE_MINUTES"):
        config.TestingConfig({"TICKETING_STAFF_IDLE_MINUTES": "0"})
