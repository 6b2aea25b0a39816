"""The "my data" email flow and the API's tokens: bad, expired, reused or foreign tokens get
a clear 4xx and change nothing; no answer tells whether an address is known."""

from __future__ import annotations

import datetime as dt
import logging
import re

import sqlalchemy as sa

from tests.conftest import csrf_token, outbox, post_form, published_event
from tests.privacy.helpers import buy, erase_by_api, order_path
from ticketing.extensions import db, keyring
from ticketing.models import utcnow
from ticketing.privacy import services
from ticketing.privacy.models import ErasureReceipt, Person
from ticketing.privacy.vault import email_indexes

KNOWN = "Kx9Known.Buyer@Example.COM"
UNKNOWN = "nobody.here@example.com"
LINK = re.compile(r"http://localhost(/privacy/my-data/[A-Za-z0-9_.\-]+)")


def _ask(client, email):
    return post_form(client, "/privacy", "/privacy/request", {"email": email})


def _link_from_outbox(app) -> str:
    mail = outbox(app)[-1].read_text()
    match = LINK.search(mail.replace("=\n", ""))
    assert match, mail
    return match.group(1)


def _erased_count(app) -> int:
    with app.app_context():
        return db.session.execute(sa.select(sa.func.count()).select_from(ErasureReceipt)).scalar_one()


def test_request_answers_the_same_whether_or_not_the_address_is_known(app, client, caplog):
    caplog.set_level(logging.DEBUG)
    buy(client, published_event(app), KNOWN)

    known = _ask(client, KNOWN)
    unknown = _ask(client, UNKNOWN)

    assert known.status_code == unknown.status_code == 200
    assert known.get_data() == unknown.get_data()
    assert len(outbox(app)) == 2
    logged = "\n".join(r.getMessage() for r in caplog.records).lower()
    assert KNOWN.lower() not in logged and UNKNOWN not in logged


def test_emailed_link_shows_exports_and_erases_once(app, client):
    buy(client, published_event(app), KNOWN)
    _ask(client, KNOWN)
    link = _link_from_outbox(app)

    page = client.get(link)
    export = client.get(f"{link}/export.json")
    erased = client.post(f"{link}/erase", data={"csrf_token": csrf_token(client, link), "confirm": "yes"})
    reused = client.post(f"{link}/erase", data={"csrf_token": csrf_token(client, "/privacy"), "confirm": "yes"})
    reused_api = client.post("/api/v1/privacy/erasure", headers={"Authorization": f"Bearer {link.rsplit('/', 1)[1]}"})

    assert page.status_code == 200 and KNOWN in page.get_data(as_text=True)
    assert [person["email"] for person in export.get_json()["persons"]] == [KNOWN]
    assert erased.status_code == 200
    assert reused.status_code == 410
    assert reused_api.status_code == 410 and reused_api.get_json()["code"] == "token_used"
    assert _erased_count(app) == 1


def test_expired_link_is_refused_and_changes_nothing(app, client):
    buy(client, published_event(app), KNOWN)
    with app.app_context():
        indexes = email_indexes(keyring(), KNOWN)
    old = services.make_request_token(app.config["SECRET_KEY"], indexes, utcnow() - dt.timedelta(minutes=31))

    page = client.get(f"/privacy/my-data/{old}")
    api = client.post("/api/v1/privacy/erasure", headers={"Authorization": f"Bearer {old}"})

    assert page.status_code == 401 and "expired" in page.get_data(as_text=True)
    assert api.status_code == 401 and api.get_json()["code"] == "token_expired"
    assert _erased_count(app) == 0


def test_link_still_valid_just_before_thirty_minutes(app, client):
    buy(client, published_event(app), KNOWN)
    with app.app_context():
        indexes = email_indexes(keyring(), KNOWN)
    token = services.make_request_token(app.config["SECRET_KEY"], indexes, utcnow() - dt.timedelta(minutes=29))

    api = client.get("/api/v1/privacy/export", headers={"Authorization": f"Bearer {token}"})

    assert api.status_code == 200 and [p["email"] for p in api.get_json()["persons"]] == [KNOWN]


def test_forged_and_missing_tokens_are_refused(app, client):
    buy(client, published_event(app), KNOWN)
    with app.app_context():
        indexes = email_indexes(keyring(), KNOWN)
    forged = services.make_request_token("another-secret-key-of-at-least-32-chars", indexes, utcnow())

    missing = client.post("/api/v1/privacy/erasure")
    bad = client.post("/api/v1/privacy/erasure", headers={"Authorization": f"Bearer {forged}"})
    garbage = client.get("/api/v1/privacy/export", headers={"Authorization": "Bearer not-a-token"})
    page = client.get("/privacy/my-data/not-a-token")

    assert missing.status_code == 401 and missing.get_json()["code"] == "unauthorized"
    assert bad.status_code == 401 and bad.get_json()["code"] == "invalid_token"
    assert garbage.status_code == 401
    assert page.status_code == 401
    assert _erased_count(app) == 0


def test_a_foreign_order_token_opens_nothing(app, client):
    event = published_event(app)
    mine = buy(client, event, KNOWN)
    theirs = buy(client, event, "other.buyer@example.org")

    api = client.post(
        f"/api/v1/privacy/erasure?order={theirs['code']}", headers={"Authorization": f"Bearer {mine['access_token']}"}
    )
    page = client.get(f"/orders/{theirs['code']}/{mine['access_token']}/my-data")
    junk_code = client.get("/api/v1/privacy/export?order=%00zz", headers={"Authorization": "Bearer x"})

    assert api.status_code == 404 and api.get_json()["code"] == "order_not_found"
    assert page.status_code == 404
    assert junk_code.status_code == 404
    assert _erased_count(app) == 0
    with app.app_context():
        assert db.session.execute(sa.select(sa.func.count()).where(Person.erased_at.is_(None))).scalar_one() == 2


def test_the_request_form_is_rate_limited_per_address(app, client):
    statuses = [_ask(client, UNKNOWN).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]


def test_a_malformed_address_gets_a_form_error(app, client):
    response = _ask(client, "not an address")

    assert response.status_code == 422
    assert outbox(app) == []


def test_erasure_by_order_link_then_api_gives_one_receipt(app, client):
    order = buy(client, published_event(app), KNOWN)
    form = {"csrf_token": csrf_token(client, order_path(order)), "confirm": "yes"}
    client.post(f"{order_path(order)}/erase", data=form)

    again = erase_by_api(client, order)

    assert again.status_code == 200
    with app.app_context():
        receipt = db.session.execute(sa.select(ErasureReceipt)).scalar_one()
    assert again.get_json()["receipt_id"] == str(receipt.id)


def test_request_log_of_a_my_data_link_holds_no_token(app, client, caplog):
    from tests.test_security import capture_everything, logged_text, serve_once

    buy(client, published_event(app), KNOWN)
    with app.app_context():
        indexes = email_indexes(keyring(), KNOWN)
    token = services.make_request_token(app.config["SECRET_KEY"], indexes, utcnow())
    capture_everything(caplog)

    status = serve_once(app, f"/privacy/my-data/{token}")

    assert status == 200
    request_lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("/privacy/my-data/[token]" in line for line in request_lines), request_lines
    assert token not in logged_text(caplog) and KNOWN.lower() not in logged_text(caplog).lower()


def test_purge_forgets_spent_links_only_once_they_have_expired(app, runner):
    from ticketing.privacy.models import UsedPrivacyToken

    now = utcnow()
    with app.app_context():
        db.session.add_all(
            [
                UsedPrivacyToken(token_hash="a" * 64, used_at=now - dt.timedelta(minutes=31)),
                UsedPrivacyToken(token_hash="b" * 64, used_at=now - dt.timedelta(minutes=5)),
            ]
        )
        db.session.commit()

    runner.invoke(args=["purge-personal-data"])

    with app.app_context():
        assert db.session.execute(sa.select(UsedPrivacyToken.token_hash)).scalars().all() == ["b" * 64]
