"""A whole purchase with unique marker values, then a search of every byte we keep.

The markers (email, name, postcode) and the order's secret access token must not appear
in the raw database (the SQLite files, or every row of every PostgreSQL table) nor in any
log record, in their own spelling or in lower or upper case. With a mail worker, the
database is searched while the tickets mails wait in ``mail_queue``, and the logs after
``flask send-mail`` sent them.
"""

import logging
import re
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa

from tests.backoffice.helpers import last_mail, link_in, log_in, make_venue, turn_on_totp
from tests.conftest import post_form, published_event, queued_mail
from ticketing.backoffice.models import StaffMember
from ticketing.extensions import db

MARKERS = ["Zq7Marker.Buyer@Example.ORG", "Zorblax Quintavalle", "ZQ-7731"]


def variants(value: str) -> list[bytes]:
    spellings = {value, value.lower(), value.upper()}
    return [s.encode() for s in spellings] + [s.encode("utf-16-le") for s in spellings]


def raw_database_bytes(app) -> bytes:
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            db.session.remove()
            engine.dispose()
            path = Path(engine.url.database)
            files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal")]
            return b"".join(f.read_bytes() for f in files if f.exists())
        chunks = []
        with engine.connect() as connection:
            for table in db.metadata.sorted_tables:
                query = sa.text(f'SELECT * FROM "{table.name}"')  # noqa: S608 - names from our own metadata
                for row in connection.execute(query):
                    for value in row:
                        chunks.append(value if isinstance(value, bytes) else str(value).encode())
        return b"\n".join(chunks)


@pytest.mark.parametrize(
    "app_environ",
    [{}, {"TICKETING_MAIL_DELIVERY": "worker"}],
    ids=["mail-inline", "mail-worker"],
)
def test_purchase_leaves_no_personal_data_or_token_outside_the_vault(app, client, runner, app_environ, caplog):
    caplog.set_level(logging.DEBUG)
    event = published_event(app, ask_name=True, ask_postcode=True, capacity=5)
    free = published_event(app, ask_name=True, ask_postcode=True, capacity=5, price_cents=0, fee_cents=0)
    email, name, postcode = MARKERS
    page = f"/events/{event.id}"

    bought = post_form(
        client,
        page,
        f"{page}/orders",
        {"email": email, "name": name, "postcode": postcode, f"qty-{event.type_id}": "1"},
    )
    pay_url = bought.headers["Location"].replace("http://localhost", "")
    paid = post_form(client, pay_url, pay_url, {"action": "pay"})
    order_page = client.get(paid.headers["Location"])
    api = client.post(
        "/api/v1/orders",
        json={
            "event_id": str(event.id),
            "items": [{"ticket_type_id": str(event.type_id), "quantity": 1}],
            "email": email,
            "name": name,
            "postcode": postcode,
        },
    )
    free_order = client.post(
        "/api/v1/orders",
        json={
            "event_id": str(free.id),
            "items": [{"ticket_type_id": str(free.type_id), "quantity": 1}],
            "email": email,
            "name": name,
            "postcode": postcode,
        },
    )
    post_form(client, "/orders/find", "/orders/find", {"email": email})

    assert order_page.status_code == 200 and api.status_code == 201 and free_order.status_code == 201
    token = re.search(r"/pay/demo/[A-Z0-9-]+/([A-Za-z0-9_-]+)", pay_url).group(1)
    queued = queued_mail(app)
    stored = raw_database_bytes(app)
    if app_environ:
        assert len(queued) == 2, "both paid orders' mails should be waiting in the queue"
        assert "2 sent" in runner.invoke(args=["send-mail"]).output
    else:
        assert queued == []
    secrets = [*MARKERS, token, api.get_json()["access_token"], free_order.get_json()["access_token"]]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert len(caplog.records) >= 3, "the purchase should have logged something for this test to mean anything"
    for marker in secrets:
        for spelling in variants(marker):
            assert spelling not in stored, f"{marker!r} found in the database"
            assert spelling.decode("utf-8", "ignore") not in logged, f"{marker!r} found in the logs"
    assert b"Zorblax" not in stored and "Zorblax" not in logged


STAFF_MARKERS = ["Zq7Marker.Staff@Example.ORG", "Zorblax Staffington"]


def test_staff_accounts_leave_no_email_name_password_or_link_outside_the_vault(app, client, caplog):
    """An owner invites a member who accepts with a name, logs in, turns on a second
    factor, asks for a password reset, and is removed: none of their email, name,
    password, link tokens or TOTP seed reaches a table outside the vault or a log."""
    caplog.set_level(logging.DEBUG)
    staff_email, staff_name = STAFF_MARKERS
    password = "Zq7 the member's password"
    venue = make_venue(app)
    owner = app.test_client()
    log_in(owner, venue.owner.email)

    post_form(owner, "/manage/staff", "/manage/staff/invite", {"email": staff_email, "role": "manager"})
    invitation = link_in(last_mail(app))
    member = app.test_client()
    post_form(
        member,
        invitation,
        invitation,
        {"display_name": staff_name, "password": password, "password_again": password},
    )
    seed = turn_on_totp(member)
    post_form(app.test_client(), "/manage/password/forgot", "/manage/password/forgot", {"email": staff_email})
    reset = link_in(last_mail(app))
    staff_page = owner.get("/manage/staff").get_data(as_text=True)
    stored_while_active = raw_database_bytes(app)
    with app.app_context():
        member_id = db.session.execute(
            sa.select(StaffMember.id).where(StaffMember.id.not_in([venue.manager.id]), StaffMember.role == "manager")
        ).scalar_one()
    post_form(owner, "/manage/staff", f"/manage/staff/{member_id}/remove", {})
    stored_after_removal = raw_database_bytes(app)

    assert staff_email in staff_page and staff_name in staff_page  # the test saw them on purpose
    assert pyotp.TOTP(seed).now().isdigit()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    secrets = [*STAFF_MARKERS, password, seed, invitation.rsplit("/", 1)[1], reset.rsplit("/", 1)[1]]
    for marker in secrets:
        for spelling in variants(marker):
            assert spelling not in stored_while_active, f"{marker!r} found in the database"
            assert spelling not in stored_after_removal, f"{marker!r} found in the database after removal"
            assert spelling.decode("utf-8", "ignore") not in logged, f"{marker!r} found in the logs"
