"""The background worker: mail and periodic jobs in one process, each job claimed so that
several workers never run it twice."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.checkout.test_inventory import place
from tests.conftest import MAIL_WORKER, make_event, outbox, published_event, run_together
from ticketing.catalog.models import TicketType
from ticketing.extensions import db
from ticketing.models import utcnow
from ticketing.worker import JOBS, Job, JobRun, claim, release, run_due_jobs

JOB = Job("test-job", "expire-holds", dt.timedelta(hours=1), dt.timedelta(minutes=10))


def test_a_job_runs_once_per_period_whoever_asks(app):
    start = utcnow()
    with app.app_context():
        first = claim(db.session, JOB, "host-a:1", start)
        release(db.session, JOB, "host-a:1", start, "ok")
        again = claim(db.session, JOB, "host-b:2", start + dt.timedelta(minutes=59))
        later = claim(db.session, JOB, "host-b:2", start + dt.timedelta(minutes=61))

    assert (first, again, later) == (True, False, True)


def test_a_held_job_is_not_taken_until_its_lease_runs_out(app):
    start = utcnow()
    with app.app_context():
        mine = claim(db.session, JOB, "host-a:1", start)
        # host-a dies without releasing; the period is over but the lease is not.
        during_lease = claim(db.session, JOB, "host-b:2", start + dt.timedelta(hours=1, minutes=-55))
        after_lease = claim(db.session, JOB, "host-b:2", start + dt.timedelta(hours=1, minutes=1))
        holder = db.session.execute(select(JobRun.holder).where(JobRun.name == JOB.name)).scalar()

    assert (mine, during_lease, after_lease) == (True, False, True)
    assert holder == "host-b:2"


def test_workers_racing_for_one_job_run_it_once(app):
    now = utcnow()
    won: list[str] = []

    def race(n: int) -> None:
        with app.app_context():
            try:
                if claim(db.session, JOB, f"host-{n}:1", now):
                    won.append(f"host-{n}")
            finally:
                db.session.remove()

    run_together(6, race)

    assert len(won) == 1


def test_due_jobs_run_their_commands_and_record_the_outcome(app):
    with app.app_context():
        event = make_event(capacity=3)
        place(event, 3, utcnow() - dt.timedelta(minutes=30))
        type_id = event.ticket_types[0].id

        ran = run_due_jobs(app, db.session, JOBS, "host-a:1", utcnow)

        outcomes = dict(db.session.execute(select(JobRun.name, JobRun.outcome)).all())
        reserved = db.session.get(TicketType, type_id, populate_existing=True).reserved
    assert ran == ["expire-holds", "process-refunds", "purge-personal-data", "rotate-master-key"]
    assert "reconcile-payments" not in outcomes  # only with Stripe
    assert outcomes["expire-holds"] == outcomes["purge-personal-data"] == "ok"
    assert reserved == 0


@MAIL_WORKER
def test_one_worker_round_sends_the_mail_and_runs_the_jobs(app, client, runner):
    event = published_event(app, price_cents=0, fee_cents=0)
    client.post(
        "/api/v1/orders",
        json={
            "event_id": str(event.id),
            "items": [{"ticket_type_id": str(event.type_id), "quantity": 1}],
            "email": "worker@example.org",
        },
    )
    assert outbox(app) == []

    result = runner.invoke(args=["worker", "--once"])

    assert result.exit_code == 0, result.output
    assert len(outbox(app)) == 1
    with app.app_context():
        assert db.session.execute(select(JobRun.outcome).where(JobRun.name == "expire-holds")).scalar() == "ok"


@pytest.mark.parametrize("job", [job for job in JOBS], ids=[job.name for job in JOBS])
def test_every_job_names_a_real_command(app, job):
    assert app.cli.get_command(None, job.command) is not None  # type: ignore[arg-type]
