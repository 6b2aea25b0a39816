"""Every back-office route, walked as every kind of visitor.

The routes come from the app's URL map (everything under ``/manage``), so a page added
later is walked too: it fails here if it declares no access rule, if it is public without
being listed as such below, if it needs a path parameter this walk cannot fill, or if it
answers anyone it should not.
"""

from __future__ import annotations

import re
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.backoffice.helpers import Venue, log_in, make_venue
from tests.conftest import csrf_token, make_event, post_form
from ticketing.backoffice.access import CAPABILITIES, access_rule
from ticketing.catalog.models import ApiToken, Event, Organizer
from ticketing.extensions import db

# The pages a logged-out visitor may open. A new public page must be added here, on purpose.
PUBLIC = {
    "backoffice.login",
    "backoffice.login_submit",
    "backoffice.login_code",
    "backoffice.login_code_submit",
    "backoffice.logout",
    "backoffice.forgot_password",
    "backoffice.forgot_password_submit",
    "backoffice.link_page",
    "backoffice.link_submit",
}
# What each role may do, as the issue defines the roles (the code's table must agree).
ROLE_CAPABILITIES = {
    "owner": {"door", "events", "orders", "money", "reports", "staff", "tokens", "settings"},
    "manager": {"door", "events", "orders", "money", "reports"},
    "door": {"door"},
}
BUYER_EMAIL = "Zq7.Walk.Buyer@Example.ORG"
MONEY = re.compile(r"\d[\d\s\u202f\u00a0.,]*\s?(€|EUR)|(€|EUR)\s?\d|\d+[.,]\d\d\b")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def backoffice_routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, rule) for every route under /manage."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/manage"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((rule.endpoint, method, rule.rule))
    return routes


def url_for_rule(rule: str, values: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[-1]
        assert name in values, f"{rule}: add a value for <{name}> to the access walk (tests/backoffice/test_access.py)"
        return values[name]

    return re.sub(r"<([^>]+)>", fill, rule)


def home_objects(app: Flask, venue: Venue) -> dict[str, str]:
    """Ids of the home venue's objects, for the path parameters."""
    with app.app_context():
        event = make_event(organizer=db.session.get(Organizer, venue.organizer_id))
        token_id = db.session.query(ApiToken.id).filter(ApiToken.organizer_id == venue.organizer_id).scalar()
        return {
            "event_id": str(event.id),
            "staff_id": str(venue.manager.id),
            "token_id": str(token_id),
            "token": "not-a-link-token",
        }


def request_as(client: FlaskClient, method: str, url: str) -> int:
    if method == "GET":
        return client.get(url).status_code
    token = csrf_token(client, "/manage/login")
    return client.post(url, data={"csrf_token": token}).status_code


def test_every_route_declares_an_access_rule_and_roles_are_as_the_issue_says(app):
    routes = backoffice_routes(app)

    assert len(routes) >= 20
    assert {role: set(caps) for role, caps in CAPABILITIES.items()} == ROLE_CAPABILITIES
    for endpoint, _method, rule in routes:
        declared = access_rule(app.view_functions[endpoint])
        assert declared is not None, f"{rule} ({endpoint}) declares no access rule"
        assert declared.public == (endpoint in PUBLIC), f"{rule} ({endpoint}): public is {declared.public}"


def test_logged_out_visitors_are_sent_to_the_login_page(app, client):
    venue = make_venue(app)
    values = home_objects(app, venue)

    for endpoint, method, rule in backoffice_routes(app):
        if endpoint in PUBLIC:
            continue
        url = url_for_rule(rule, values)
        if method == "GET":
            answer = client.get(url)
        else:
            answer = client.post(url, data={"csrf_token": csrf_token(client, "/manage/login")})
        assert answer.status_code == 302, f"{method} {url}: {answer.status_code}"
        assert answer.headers["Location"].startswith("/manage/login"), f"{method} {url}"


@pytest.mark.parametrize("role", ["owner", "manager", "door"])
def test_each_role_opens_what_it_may_and_nothing_else(app, client, role):
    venue = make_venue(app)
    values = home_objects(app, venue)
    member = venue.member(role)
    assert log_in(client, member.email).status_code == 302

    for endpoint, method, rule in backoffice_routes(app):
        if endpoint in PUBLIC:
            continue
        declared = access_rule(app.view_functions[endpoint])
        allowed = declared.capability is None or declared.capability in ROLE_CAPABILITIES[role]
        url = url_for_rule(rule, values)
        if not allowed:
            status = request_as(client, method, url)
            assert status == 403, f"{role}: {method} {url} answered {status}, expected 403"
        elif method == "GET":
            answer = client.get(url)
            assert answer.status_code in (200, 302), f"{role}: GET {url} answered {answer.status_code}"


def test_a_foreign_organisers_staff_reaches_none_of_this_venues_objects(app, client):
    venue = make_venue(app, "Salle Test")
    values = home_objects(app, venue)
    foreign = make_venue(app, "Other Venue", domain="elsewhere.example")
    home_title = "Home venue's secret gala"
    with app.app_context():
        db.session.get(Event, uuid.UUID(values["event_id"])).title = home_title
        db.session.commit()
    assert log_in(client, foreign.owner.email).status_code == 302

    for endpoint, method, rule in backoffice_routes(app):
        if endpoint in PUBLIC:
            continue
        url = url_for_rule(rule, values)
        if "<" in rule:
            status = request_as(client, method, url)
            assert status == 404, f"foreign owner: {method} {url} answered {status}, expected 404"
        elif method == "GET":
            page = client.get(url).get_data(as_text=True)
            for secret in (home_title, "Salle Test", venue.owner.email, venue.manager.email, venue.door.email):
                assert secret not in page, f"foreign owner: {url} shows {secret!r}"
    with app.app_context():
        assert db.session.get(Event, uuid.UUID(values["event_id"])).title == home_title
        revoked = db.session.query(ApiToken).filter(ApiToken.organizer_id == venue.organizer_id).one().revoked_at
    assert revoked is None


def test_a_door_user_never_sees_an_email_or_an_amount(app, client):
    venue = make_venue(app)
    values = home_objects(app, venue)
    event_page = f"/events/{values['event_id']}"
    with app.app_context():
        type_id = db.session.get(Event, uuid.UUID(values["event_id"])).ticket_types[0].id
    bought = post_form(client, event_page, f"{event_page}/orders", {"email": BUYER_EMAIL, f"qty-{type_id}": "2"})
    assert bought.status_code in (302, 303)
    assert log_in(client, venue.door.email).status_code == 302
    seen = 0

    for endpoint, method, rule in backoffice_routes(app):
        declared = access_rule(app.view_functions[endpoint])
        if method != "GET" or endpoint in PUBLIC or declared.capability not in (None, "door"):
            continue
        answer = client.get(url_for_rule(rule, values))
        if answer.status_code != 200:
            continue
        page = answer.get_data(as_text=True)
        seen += 1
        shown = {address.lower() for address in EMAIL.findall(page)} - {venue.door.email.lower()}
        assert not shown, f"{rule} shows {shown} to a door user"
        assert not MONEY.search(page), f"{rule} shows an amount to a door user: {MONEY.search(page).group(0)!r}"
    assert seen >= 3
