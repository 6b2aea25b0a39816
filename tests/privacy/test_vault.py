from sqlalchemy import func, select

from tests.conftest import run_together
from ticketing.extensions import db, keyring
from ticketing.models import begin_write, utcnow
from ticketing.privacy.models import DataKey, Person
from ticketing.privacy.vault import find_person_id, read_person, store_person


def test_same_email_buying_twice_is_one_person(ctx):
    first = store_person(db.session, keyring(), email="ana@example.org", now=utcnow())
    db.session.commit()

    second = store_person(db.session, keyring(), email="  ANA@example.org", now=utcnow())
    db.session.commit()

    assert first == second
    assert db.session.scalar(select(func.count()).select_from(Person)) == 1
    assert find_person_id(db.session, keyring(), "ana@example.org") == first


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


def test_returning_buyer_keeps_latest_name(ctx):
    person_id = store_person(db.session, keyring(), email="cy@example.org", name="Cy", now=utcnow())
    db.session.commit()

    store_person(db.session, keyring(), email="cy@example.org", name="Cyrielle", now=utcnow())
    db.session.commit()

    assert read_person(db.session, keyring(), person_id).name == "Cyrielle"


def test_concurrent_first_purchases_with_one_new_email_make_one_person(app):
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

    assert len(results) == 8
    assert len(set(results)) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Person)) == 1
        assert db.session.scalar(select(func.count()).select_from(DataKey)) == 1
