from sqlalchemy import func, select

from tests.conftest import run_together
from ticketing.extensions import db, keyring
from ticketing.models import begin_write, utcnow
from ticketing.privacy.models import DataKey, Person
from ticketing.privacy.vault import email_indexes, find_person_ids, has_earlier_record, read_person, store_person


def test_each_purchase_gets_its_own_record_and_the_mailbox_finds_them_all(ctx):
    first = store_person(db.session, keyring(), email="ana@example.org", now=utcnow())
    db.session.commit()

    second = store_person(db.session, keyring(), email="  ANA@example.org", now=utcnow())
    db.session.commit()

    assert first != second
    assert db.session.get(DataKey, first).wrapped_key != db.session.get(DataKey, second).wrapped_key
    assert find_person_ids(db.session, email_indexes(keyring(), "ana@example.org")) == [first, second]
    assert find_person_ids(db.session, email_indexes(keyring(), "someone@example.org")) == []


def test_person_is_stored_encrypted_and_read_back(ctx):
    person_id = store_person(
        db.session, keyring(), email="bo@example.org", name="Bo Lund", postcode="31000", now=utcnow()
    )
    db.session.commit()

    record = read_person(db.session, keyring(), person_id)
    row = db.session.get(Person, person_id)

    assert (record.email, record.name, record.postcode) == ("bo@example.org", "Bo Lund", "31000")
    assert b"bo@example.org" not in row.email_ct and b"Bo Lund" not in row.name_ct
    assert db.session.get(DataKey, person_id).wrapped_key


def test_a_later_purchase_never_changes_what_an_earlier_one_holds(ctx):
    person_id = store_person(db.session, keyring(), email="cy@example.org", name="Cy", postcode="31000", now=utcnow())
    db.session.commit()

    store_person(db.session, keyring(), email="CY@example.org", name="Mallory", postcode="99999", now=utcnow())
    db.session.commit()

    record = read_person(db.session, keyring(), person_id)
    assert (record.name, record.postcode) == ("Cy", "31000")


def test_a_returning_address_is_told_apart_from_a_first_one(ctx):
    first = store_person(db.session, keyring(), email="dee@example.org", now=utcnow())
    db.session.commit()
    second = store_person(db.session, keyring(), email="Dee@Example.org", now=utcnow())
    db.session.commit()

    assert has_earlier_record(db.session, first) is False
    assert has_earlier_record(db.session, second) is True


def test_concurrent_purchases_with_one_new_email_each_get_a_record(app):
    results = []

    def buy(_n: int) -> None:
        with app.app_context():
            try:
                begin_write(db.session)
                results.append(store_person(db.session, keyring(), email="race@example.org", now=utcnow()))
                db.session.commit()
            finally:
                db.session.remove()

    run_together(8, buy)

    assert len(set(results)) == 8
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Person)) == 8
        assert db.session.scalar(select(func.count()).select_from(DataKey)) == 8
        assert set(find_person_ids(db.session, email_indexes(keyring(), "race@example.org"))) == set(results)
