"""Staff records in the vault: out of buyers' reach, kept while the account lives, erased
when it is removed; and the organiser always keeps an owner."""

from __future__ import annotations

import datetime as dt

from tests.backoffice.helpers import log_in, make_venue
from tests.conftest import outbox, post_form
from ticketing.backoffice import services
from ticketing.backoffice.models import StaffMember
from ticketing.checkout.orders import orders_for_email
from ticketing.extensions import db, keyring
from ticketing.models import utcnow
from ticketing.privacy.models import DataKey, Person
from ticketing.privacy.person_links import PersonLinks
from ticketing.privacy.services import purge_expired_persons
from ticketing.privacy.vault import email_indexes, find_person_ids, read_person, store_person


def person_links(app) -> list[PersonLinks]:  # type: ignore[no-untyped-def]
    return app.extensions["guichet.person_links"]


def test_buyers_lookups_never_find_a_staff_account(app, client):
    venue = make_venue(app)

    asked = post_form(client, "/privacy", "/privacy/request", {"email": venue.owner.email})
    found_orders = post_form(client, "/orders/find", "/orders/find", {"email": venue.owner.email})

    assert asked.status_code == 200 and found_orders.status_code == 200
    [mail] = outbox(app)  # "nothing held", and no "find my orders" mail at all
    assert b"/privacy/my-data/" not in mail.read_bytes()
    with app.app_context():
        assert find_person_ids(db.session, email_indexes(keyring(), venue.owner.email)) == []
        assert orders_for_email(db.session, keyring(), venue.owner.email) == []
        assert len(find_person_ids(db.session, email_indexes(keyring(), venue.owner.email, "staff"), "staff")) == 1


def test_a_buyer_erasing_their_data_leaves_a_staff_account_with_the_same_address(app, client):
    venue = make_venue(app)
    with app.app_context():
        buyer = store_person(db.session, keyring(), email=venue.manager.email.upper(), now=utcnow())
        db.session.commit()
        buyer_records = find_person_ids(db.session, email_indexes(keyring(), venue.manager.email))

    assert buyer_records == [buyer]
    assert log_in(client, venue.manager.email).status_code == 302


def test_the_purge_keeps_active_staff_and_lets_unaccepted_invitations_go(app):
    venue = make_venue(app)
    long_after = utcnow() + dt.timedelta(days=3650)
    with app.app_context():
        late, _token = services.create_staff(
            db.session, keyring(), venue.organizer_id, "never@venue.example", "door", utcnow()
        )
        late_person = late.person_id

        batches = list(purge_expired_persons(db.session, person_links(app), now=long_after))

        owner = db.session.get(StaffMember, venue.owner.id)
        kept = read_person(db.session, keyring(), owner.person_id)
        gone = db.session.get(StaffMember, late.id)
        erased = db.session.get(Person, late_person)

    assert sum(batch.erased for batch in batches) == 1
    assert kept is not None and kept.email == venue.owner.email
    assert gone.status == "removed" and gone.person_id is None
    assert erased.erased_at is not None and erased.email_ct is None


def test_removing_a_member_erases_their_email_and_name(app, client):
    venue = make_venue(app)
    with app.app_context():
        person_id = db.session.get(StaffMember, venue.manager.id).person_id
    log_in(client, venue.owner.email)

    removed = post_form(client, "/manage/staff", f"/manage/staff/{venue.manager.id}/remove", {})
    page = client.get("/manage/staff").get_data(as_text=True)

    assert removed.status_code == 302
    assert venue.manager.email not in page
    with app.app_context():
        person = db.session.get(Person, person_id)
        assert person.erased_at is not None and person.email_ct is None and person.email_index is None
        assert db.session.get(DataKey, person_id) is None
        member = db.session.get(StaffMember, venue.manager.id)
        assert member.status == "removed" and member.removed_at is not None


def test_the_last_owner_can_be_neither_removed_nor_demoted(app, client):
    venue = make_venue(app)
    log_in(client, venue.owner.email)

    demoted = post_form(client, "/manage/staff", f"/manage/staff/{venue.owner.id}/role", {"role": "manager"})
    removed = post_form(client, "/manage/staff", f"/manage/staff/{venue.owner.id}/remove", {})
    promoted = post_form(client, "/manage/staff", f"/manage/staff/{venue.manager.id}/role", {"role": "owner"})
    now_demoted = post_form(client, "/manage/staff", f"/manage/staff/{venue.owner.id}/role", {"role": "manager"})

    assert demoted.status_code == removed.status_code == 403
    assert promoted.status_code == now_demoted.status_code == 302
    with app.app_context():
        assert db.session.get(StaffMember, venue.owner.id).role == "manager"
        assert db.session.get(StaffMember, venue.manager.id).role == "owner"
    assert client.get("/manage/staff").status_code == 403  # a manager now, the next request knows


def test_an_unknown_role_is_refused(app, client):
    venue = make_venue(app)
    log_in(client, venue.owner.email)

    refused = post_form(client, "/manage/staff", "/manage/staff/invite", {"email": "x@venue.example", "role": "admin"})

    assert refused.status_code == 422
    with app.app_context():
        assert services.find_staff_by_email(db.session, keyring(), "x@venue.example") is None
