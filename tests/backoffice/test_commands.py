"""The first owner comes from the command line, with a one-time link and no password."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from tests.backoffice.helpers import log_in
from tests.conftest import CSRF_FIELD

LOGIN_LINK = re.compile(r"(https?://\S+/manage/link/[A-Za-z0-9_-]+)")
PASSWORD = "the first owner's password"


def follow(app, link: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    parts = urlsplit(link)
    client = app.test_client()
    base = f"{parts.scheme}://{parts.netloc}"
    page = client.get(parts.path, base_url=base)
    if page.status_code != 200:
        return page, client
    token = CSRF_FIELD.search(page.get_data(as_text=True)).group(1)
    answer = client.post(
        parts.path,
        base_url=base,
        data={"csrf_token": token, "password": password, "password_again": password, "display_name": "Première"},
    )
    return answer, client


def test_create_organizer_makes_the_first_owner_and_prints_a_one_time_link(app, runner):
    result = runner.invoke(args=["create-organizer", "Théâtre du Pont", "--owner-email", "Boss@Theatre.example"])
    link = LOGIN_LINK.search(result.output).group(1)

    used, owner = follow(app, link)
    again, _client = follow(app, link)

    assert result.exit_code == 0, result.output
    assert "API token (store it now, it is not shown again):" in result.output
    assert used.status_code == 302 and owner.get("/manage/staff").status_code == 200
    assert again.status_code == 410
    assert log_in(app.test_client(), "boss@theatre.example", PASSWORD).status_code == 302


def test_create_organizer_needs_an_owner_and_takes_no_password(runner):
    without_owner = runner.invoke(args=["create-organizer", "Salle"])
    with_password = runner.invoke(args=["create-organizer", "Salle", "--owner-email", "a@b.example", "--password", "x"])

    bad_address = runner.invoke(args=["create-organizer", "Salle", "--owner-email", "not an address"])
    listed = runner.invoke(args=["replace-api-token", "Salle"])

    assert without_owner.exit_code != 0 and "--owner-email" in without_owner.output
    assert with_password.exit_code != 0 and "No such option" in with_password.output
    assert bad_address.exit_code != 0 and "must be an email address" in bad_address.output
    assert "No organiser has this id or name." in listed.output  # nothing was half-created


def test_the_demo_prints_a_working_owner_link_on_its_own_address_each_run(app, runner):
    first = runner.invoke(args=["demo", "--no-serve", "--host", "192.168.1.10", "--port", "8123"])
    second = runner.invoke(args=["demo", "--no-serve", "--host", "192.168.1.10", "--port", "8123"])
    first_link = LOGIN_LINK.search(first.output).group(1)
    second_link = LOGIN_LINK.search(second.output).group(1)

    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert first_link.startswith("http://192.168.1.10:8123/manage/link/")
    assert first_link != second_link
    stale, _client = follow(app, first_link)
    assert stale.status_code == 410  # a newer run's link replaced it
    used, owner = follow(app, second_link)
    assert used.status_code == 302
    home = owner.get("/manage/", base_url="http://192.168.1.10:8123").get_data(as_text=True)
    assert "Les Ondes du Canal" in home


def test_the_demo_link_names_an_ipv6_address_in_brackets(runner):
    result = runner.invoke(args=["demo", "--no-serve", "--host", "fe80::1"])

    assert result.exit_code == 0, result.output
    assert LOGIN_LINK.search(result.output).group(1).startswith("http://[fe80::1]:5000/manage/link/")


def test_an_operator_prints_a_new_link_for_a_locked_out_owner(app, runner):
    created = runner.invoke(args=["create-organizer", "Salle", "--owner-email", "solo@venue.example"])
    first = LOGIN_LINK.search(created.output).group(1)
    follow(app, first)

    result = runner.invoke(args=["staff-login-link", "SOLO@venue.example", "--turn-off-totp"])
    link = LOGIN_LINK.search(result.output).group(1)
    used, owner = follow(app, link, "a password found again")
    unknown = runner.invoke(args=["staff-login-link", "nobody@venue.example"])

    assert result.exit_code == 0, result.output
    assert used.status_code == 302 and owner.get("/manage/").status_code == 200
    assert unknown.exit_code != 0 and "no staff account has this address" in unknown.output
