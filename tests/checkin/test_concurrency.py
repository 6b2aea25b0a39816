"""Four doors scan the same 500 tickets at the same instant: each is admitted once."""

from __future__ import annotations

import random
import threading
from collections import Counter

import sqlalchemy as sa

from tests.checkin.factories import codes, make_device, make_tickets
from tests.conftest import make_event, make_organizer
from ticketing.checkin.models import Scan
from ticketing.checkin.scanning import check_in
from ticketing.checkout.models import Ticket
from ticketing.extensions import db, keyring
from ticketing.models import utcnow

DOORS = 4
TICKETS = 500


def test_four_doors_scanning_500_tickets_admit_exactly_500(app):
    with app.app_context():
        organizer, _token = make_organizer()
        event = make_event(organizer=organizer, capacity=TICKETS)
        ticket_codes = codes(make_tickets(event, TICKETS))
        tokens = [make_device(organizer, [event], f"Door {i}") for i in range(DOORS)]
        db.session.remove()
    start = threading.Barrier(DOORS, timeout=60)
    results: list[list[str]] = [[] for _ in range(DOORS)]
    failures: list[BaseException] = []

    def door(index: int) -> None:
        order = list(ticket_codes)
        random.Random(index).shuffle(order)  # doors meet on the same tickets at different moments
        try:
            with app.app_context():
                ring = keyring()
                start.wait()
                for code in order:
                    answer = check_in(
                        db.session,
                        ring,
                        tokens[index],
                        code,
                        gate=f"G{index}",
                        request_id=None,
                        now=utcnow(),
                    )
                    results[index].append(answer.result)
                db.session.remove()
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=door, args=(i,)) for i in range(DOORS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert not failures, failures
    counts = Counter(result for door_results in results for result in door_results)
    assert counts == {"admitted": TICKETS, "already_used": TICKETS * (DOORS - 1)}
    with app.app_context():
        checked_in = db.session.execute(
            sa.select(sa.func.count()).select_from(Ticket).where(Ticket.checked_in_at.is_not(None))
        ).scalar()
        admitted_logged = db.session.execute(
            sa.select(sa.func.count()).select_from(Scan).where(Scan.result == "admitted")
        ).scalar()
    assert checked_in == TICKETS
    assert admitted_logged == TICKETS
