"""Erasure is crypto-shredding: after it, nothing readable about the buyer is left."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.conftest import csrf_token, published_event
from tests.privacy.helpers import buy, erase_by_api, export_by_api, held_records, order_path
from tests.privacy.test_no_personal_data_outside_vault import raw_database_bytes, variants
from ticketing.checkout.models import Order, Ticket
from ticketing.crypto import DecryptionFailed, decrypt_field, unwrap_data_key
from ticketing.extensions import db, keyring
from ticketing.privacy.models import DataKey, ErasureReceipt, Person

EMAIL, NAME, POSTCODE = "Yv3Erase.Me@Example.NET", "Yolanthe Vercingetorix", "YV-3390"


def _person(app, code):
    with app.app_context():
        order = db.session.execute(sa.select(Order).where(Order.code == code)).scalar_one()
        return order.person_id


def test_erasing_from_the_order_page_shreds_the_key_and_blanks_the_vault(app, client):
    event = published_event(app, ask_name=True, ask_postcode=True, price_cents=0, fee_cents=0)
    order = buy(client, event, EMAIL, name=NAME, postcode=POSTCODE)
    person_id = _person(app, order["code"])
    with app.app_context():
        person = db.session.get(Person, person_id)
        copies = {"email": person.email_ct, "name": person.name_ct, "postcode": person.postcode_ct}

    response = client.post(
        f"{order_path(order)}/erase",
        data={"csrf_token": csrf_token(client, order_path(order)), "confirm": "yes"},
    )

    assert response.status_code == 200
    assert "erased" in response.get_data(as_text=True)
    assert held_records(app, EMAIL) == []
    with app.app_context():
        person = db.session.get(Person, person_id)
        assert person.erased_at is not None
        assert (person.email_index, person.email_ct, person.name_ct, person.postcode_ct) == (None, None, None, None)
        assert db.session.get(DataKey, person_id) is None
        receipt = db.session.execute(sa.select(ErasureReceipt)).scalar_one()
        assert (receipt.route, receipt.orders_affected) == ("order_link", 1)
        # Even with every master key and every data key still stored, the copies stay shut.
        remaining = [
            unwrap_data_key(keyring(), row.person_id, row.master_key_id, row.wrapped_key)
            for row in db.session.execute(sa.select(DataKey)).scalars()
        ]
        for field, sealed in copies.items():
            for key in [*keyring().master_keys.values(), *remaining]:
                with pytest.raises(DecryptionFailed):
                    decrypt_field(key, person_id, field, sealed)


def test_no_marker_is_left_anywhere_after_erasure(app, client, caplog):
    event = published_event(app, ask_name=True, ask_postcode=True, price_cents=0, fee_cents=0)
    order = buy(client, event, EMAIL, name=NAME, postcode=POSTCODE)

    erased = erase_by_api(client, order)

    assert erased.status_code == 200
    stored = raw_database_bytes(app)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for marker in (EMAIL, NAME, POSTCODE, order["access_token"]):
        for spelling in variants(marker):
            assert spelling not in stored
            assert spelling.decode("utf-8", "ignore") not in logged


def test_erasing_again_returns_the_same_receipt(app, client):
    event = published_event(app)
    order = buy(client, event, EMAIL)

    first = erase_by_api(client, order)
    second = erase_by_api(client, order)

    assert first.status_code == second.status_code == 200
    assert first.get_json()["receipt_id"] == second.get_json()["receipt_id"]
    assert first.get_json()["tickets_remain_valid"] is True
    with app.app_context():
        assert db.session.execute(sa.select(sa.func.count()).select_from(ErasureReceipt)).scalar_one() == 1


def test_orders_still_total_correctly_and_tickets_stay_valid_after_erasure(app, client):
    event = published_event(app, price_cents=0, fee_cents=0)
    paid = published_event(app, price_cents=1200, fee_cents=60)
    free_order = buy(client, event, EMAIL, quantity=2)
    priced = buy(client, paid, EMAIL, quantity=3)
    other = buy(client, paid, "someone.else@example.org")
    with app.app_context():
        before = db.session.execute(sa.select(sa.func.sum(Order.total_cents), sa.func.count(Order.id))).one()

    receipt = erase_by_api(client, free_order).get_json()

    assert receipt["orders_affected"] == 1
    with app.app_context():
        after = db.session.execute(sa.select(sa.func.sum(Order.total_cents), sa.func.count(Order.id))).one()
        assert tuple(after) == tuple(before)
        linked = dict(db.session.execute(sa.select(Order.code, Order.person_id)).all())
        assert linked[free_order["code"]] is None
        # The order link opens its own order only: the same address's other order keeps its data.
        assert linked[priced["code"]] is not None and linked[other["code"]] is not None
        statuses = db.session.execute(sa.select(Ticket.status)).scalars().all()
        assert statuses == ["valid", "valid"]
    assert client.get(order_path(free_order)).status_code == 200


def test_export_lists_everything_then_nothing_after_erasure(app, client):
    event = published_event(app, ask_name=True, price_cents=0, fee_cents=0)
    order = buy(client, event, EMAIL, name=NAME)

    before = export_by_api(client, order).get_json()
    erase_by_api(client, order)
    after = export_by_api(client, order).get_json()

    assert before["personal_data_held"] is True
    [person] = before["persons"]
    assert (person["email"], person["name"], person["orders"]) == (EMAIL.strip(), NAME, [order["code"]])
    assert [o["code"] for o in before["orders"]] == [order["code"]]
    assert len(before["tickets"]) == 1
    assert before["check_ins"] == [] and before["stream_sessions"] == []
    assert before["retention"]["erased_automatically_after"]
    assert {k["what"] for k in before["kept_after_erasure"]} >= {"orders", "tickets"}
    assert after["personal_data_held"] is False and after["persons"] == []
    assert after["orders"] == [] and after["tickets"] == []
    assert after["erasure_receipt"]["receipt_id"]


def test_my_data_page_shows_the_decrypted_fields_to_the_order_holder(app, client):
    event = published_event(app, ask_postcode=True, price_cents=0, fee_cents=0)
    order = buy(client, event, EMAIL, postcode=POSTCODE)

    page = client.get(f"{order_path(order)}/my-data")
    download = client.get(f"{order_path(order)}/my-data.json")

    assert page.status_code == 200
    assert POSTCODE in page.get_data(as_text=True)
    assert download.status_code == 200 and download.get_json()["persons"][0]["postcode"] == POSTCODE
    assert "attachment" in download.headers["Content-Disposition"]


def test_erase_form_without_confirmation_changes_nothing(app, client):
    event = published_event(app)
    order = buy(client, event, EMAIL)

    response = client.post(f"{order_path(order)}/erase", data={"csrf_token": csrf_token(client, order_path(order))})

    assert response.status_code == 422
    assert held_records(app, EMAIL) != []


def test_erase_form_without_csrf_token_is_refused(app, client):
    event = published_event(app)
    order = buy(client, event, EMAIL)

    response = client.post(f"{order_path(order)}/erase", data={"confirm": "yes"})

    assert response.status_code == 400
    assert held_records(app, EMAIL) != []


def test_concurrent_erasures_of_one_buyer_write_one_receipt(app, client):
    import threading

    order = buy(client, published_event(app), EMAIL)
    barrier = threading.Barrier(6)
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def erase() -> None:
        own_client = app.test_client()
        barrier.wait(timeout=10)
        response = erase_by_api(own_client, order)
        with lock:
            answers.append((response.status_code, response.get_json().get("receipt_id")))

    threads = [threading.Thread(target=erase) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(answers) == 6
    assert {status for status, _ in answers} == {200}
    assert len({receipt for _, receipt in answers}) == 1
    with app.app_context():
        assert db.session.execute(sa.select(sa.func.count()).select_from(ErasureReceipt)).scalar_one() == 1
