"""``begin_write``: one unit of work per service, never two joined by a silent commit."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from tests.conftest import make_organizer
from ticketing.catalog.models import Organizer
from ticketing.extensions import db
from ticketing.models import WriteInOpenTransaction, begin_write


def test_begin_write_refuses_a_transaction_that_wrote_and_commits_nothing_of_it(app):
    with app.app_context():
        organizer, _token = make_organizer("Avant")
        db.session.execute(update(Organizer).where(Organizer.id == organizer.id).values(name="Changed"))

        with pytest.raises(WriteInOpenTransaction):
            begin_write(db.session)
        db.session.rollback()

        assert db.session.execute(select(Organizer.name).where(Organizer.id == organizer.id)).scalar() == "Avant"


def test_begin_write_refuses_unflushed_changes(app):
    with app.app_context():
        db.session.add(Organizer(name="Pending"))

        with pytest.raises(WriteInOpenTransaction):
            begin_write(db.session)
        db.session.rollback()

        assert db.session.execute(select(func.count()).select_from(Organizer)).scalar() == 0


def test_begin_write_ends_a_transaction_that_only_read(app):
    with app.app_context():
        organizer, _token = make_organizer("Lu")
        db.session.execute(select(Organizer.name)).all()

        begin_write(db.session)
        db.session.execute(update(Organizer).where(Organizer.id == organizer.id).values(name="Écrit"))
        db.session.commit()

        assert db.session.execute(select(Organizer.name)).scalar() == "Écrit"
