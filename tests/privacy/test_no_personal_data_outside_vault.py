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

import pytest
import sqlalchemy as sa

from tests.conftest import post_form, published_event, queued_mail
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
