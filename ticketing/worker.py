"""The background worker: one process that sends the mail and runs the periodic jobs.

``flask --app wsgi worker`` replaces the cron lines: it sends queued mail every few
seconds and runs each job when it is due. Every host may run one: a job is claimed in the
database before it runs (one conditional ``UPDATE`` on ``job_run``, the same on SQLite and
PostgreSQL), so two workers never run the same job at once, and a job runs once per
period whichever worker gets there first. A worker killed in the middle of a job leaves a
lease that runs out, after which another worker takes the job over.

Each job is the operator command of the same name, run in process: the worker does
nothing that the command would not do by hand.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import click
from flask import Flask
from sqlalchemy import String, insert, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column

from ticketing.models import Base, UTCDateTime, begin_write

log = logging.getLogger(__name__)


class JobRun(Base):
    """When each job last started and finished, and who holds it now (until ``lease_until``)."""

    __tablename__ = "job_run"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    holder: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str | None] = mapped_column(String(16))


@dataclass(frozen=True)
class Job:
    """A periodic job: the command it runs, how often, and how long a claim lasts."""

    name: str
    command: str
    every: dt.timedelta
    lease: dt.timedelta
    applies: Callable[[Flask], bool] = lambda _app: True


JOBS: tuple[Job, ...] = (
    Job("expire-holds", "expire-holds", dt.timedelta(minutes=1), dt.timedelta(minutes=10)),
    Job(
        "reconcile-payments",
        "reconcile-payments",
        dt.timedelta(minutes=15),
        dt.timedelta(hours=1),
        applies=lambda app: app.config.get("PAYMENT_PROVIDER") == "stripe",
    ),
    Job("process-refunds", "process-refunds", dt.timedelta(hours=1), dt.timedelta(hours=1)),
    Job("purge-personal-data", "purge-personal-data", dt.timedelta(days=1), dt.timedelta(hours=6)),
    Job("rotate-master-key", "rotate-master-key", dt.timedelta(days=1), dt.timedelta(hours=6)),
)


def worker_name() -> str:
    """Who holds a claim: a host and a process, nothing about a person."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}"


def _ensure_row(session: Session, name: str) -> None:
    if session.get(JobRun, name) is not None:
        return
    begin_write(session)
    try:
        session.execute(insert(JobRun).values(name=name))
        session.commit()
    except IntegrityError:  # another worker added it at the same moment
        session.rollback()


def claim(session: Session, job: Job, holder: str, now: dt.datetime) -> bool:
    """Take ``job`` if it is due and nobody holds it; one statement decides between workers."""
    _ensure_row(session, job.name)
    begin_write(session)
    taken = session.execute(
        update(JobRun)
        .where(
            JobRun.name == job.name,
            (JobRun.lease_until.is_(None)) | (JobRun.lease_until < now),
            (JobRun.started_at.is_(None)) | (JobRun.started_at <= now - job.every),
        )
        .values(started_at=now, lease_until=now + job.lease, holder=holder)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return taken == 1


def release(session: Session, job: Job, holder: str, now: dt.datetime, outcome: str) -> None:
    begin_write(session)
    session.execute(
        update(JobRun)
        .where(JobRun.name == job.name, JobRun.holder == holder)
        .values(finished_at=now, lease_until=None, outcome=outcome)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def run_job(app: Flask, job: Job) -> str:
    """Run the job's command in this process; its output goes to the worker's log."""
    command = app.cli.get_command(click.Context(app.cli), job.command)
    if command is None:
        raise RuntimeError(f"no command {job.command!r}")
    try:
        code = command.main(args=[], prog_name=f"worker {job.name}", standalone_mode=False)
    except click.ClickException as error:
        log.warning("job %s: %s", job.name, error.format_message())
        return "failed"
    # A command that ends with ``ctx.exit(n)`` returns n here (the key check exits 1 when overdue).
    return "failed" if isinstance(code, int) and code != 0 else "ok"


def run_due_jobs(
    app: Flask, session: Session, jobs: Sequence[Job], holder: str, now: Callable[[], dt.datetime]
) -> list[str]:
    """Every job that is due and free, one after the other; returns the names run."""
    ran = []
    for job in jobs:
        if not job.applies(app) or not claim(session, job, holder, now()):
            continue
        log.info("job %s started", job.name)
        try:
            outcome = run_job(app, job)
        except Exception as error:  # noqa: BLE001 - one job's failure must not stop the worker
            session.rollback()
            log.error("job %s failed: %s", job.name, type(error).__name__)
            outcome = "failed"
        release(session, job, holder, now(), outcome)
        log.info("job %s finished: %s", job.name, outcome)
        ran.append(job.name)
    return ran


def work(
    app: Flask,
    session: Session,
    send_mail: Callable[[], object],
    stop: threading.Event,
    interval: float,
    now: Callable[[], dt.datetime],
    once: bool = False,
) -> None:
    """The loop: send what mail is due, run what job is due, wait, again, until ``stop``.

    A database that went away fails one round, not the worker: it is logged and the next
    round tries again.
    """
    holder = worker_name()
    while not stop.is_set():
        try:
            send_mail()
            run_due_jobs(app, session, JOBS, holder, now)
        except (OperationalError, InterfaceError) as error:
            session.rollback()
            log.warning("worker: database unavailable (%s); trying again", type(error).__name__)
        if once:
            return
        stop.wait(interval)
