"""The mail outbox: a row written by the transaction that decides a mail, sent after it.

Rendering the tickets mail (QR codes drawn to PNG, two templates, MIME) costs several
times what paying the order costs. Writing a row instead lets the payment commit without
it, and the row cannot be lost: if the process dies after the commit, the mail is still
owed and someone sends it. Who sends it is configuration (``TICKETING_MAIL_DELIVERY``):

- ``inline`` (the default): the request that committed sends what it queued at once,
  through ``send_queued_mail_now``, so a one-process install behaves as if it sent
  directly, and ``flask send-mail`` (cron) retries what failed;
- ``worker``: requests only queue; ``flask send-mail --follow`` beside gunicorn sends.

Rows hold a kind and a subject id (an order, a refund), never an address. Domains
register a renderer per kind in ``app.extensions["guichet.mail_kinds"]``; it reads the
subject (and the address, from the vault) at sending time, so this module imports no
domain. Delivery is at least once: a deliverer that dies between sending and deleting
the row leaves it to be sent again when its claim lapses.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from ticketing.mail import MailFailed, OutgoingMail, send_mail
from ticketing.mail.models import QueuedMail
from ticketing.models import begin_write, new_id, utcnow

log = logging.getLogger(__name__)

# kind -> renderer(session, subject_id) -> OutgoingMail, or None when there is nothing to
# send any more (the job is then deleted); create_app fills it from the domains.
MAIL_KINDS = "guichet.mail_kinds"
# Ids of the jobs a session queued, for inline delivery after its commit (see enqueue_mail).
QUEUED_IDS = "guichet.queued_mail_ids"
MAX_ATTEMPTS = 20
# How long a claim keeps other deliverers off a job: far longer than one render and one
# SMTP exchange (whose timeout is seconds), short enough that a crashed worker's job is
# sent again the same hour.
LEASE = dt.timedelta(minutes=5)
FIRST_RETRY = dt.timedelta(minutes=1)
LONGEST_RETRY = dt.timedelta(hours=6)

MailRenderer = Callable[[Session, uuid.UUID], "OutgoingMail | None"]

MAIL_QUEUE = QueuedMail.__table__
ENQUEUE = insert(MAIL_QUEUE).values(
    id=bindparam("job_id"),
    kind=bindparam("kind"),
    subject_id=bindparam("subject_id"),
    created_at=bindparam("now"),
    attempts=0,
    next_attempt_at=bindparam("now"),
)


def _is_due(now: Any) -> Any:
    return (
        MAIL_QUEUE.c.next_attempt_at <= now,
        or_(MAIL_QUEUE.c.claimed_until.is_(None), MAIL_QUEUE.c.claimed_until < now),
        MAIL_QUEUE.c.attempts < MAX_ATTEMPTS,
    )


# The claim is the only way to a job: whoever's UPDATE matched sends, every other
# deliverer (a second worker, or a request sending inline) matches nothing and moves on.
CLAIM = (
    update(MAIL_QUEUE)
    .where(MAIL_QUEUE.c.id == bindparam("job_id"), *_is_due(bindparam("now")))
    .values(claimed_until=bindparam("lease_end"), attempts=MAIL_QUEUE.c.attempts + 1)
    .returning(MAIL_QUEUE.c.kind, MAIL_QUEUE.c.subject_id, MAIL_QUEUE.c.attempts)
)
DUE = select(MAIL_QUEUE.c.id).where(*_is_due(bindparam("now"))).order_by(MAIL_QUEUE.c.next_attempt_at)
DONE = delete(MAIL_QUEUE).where(MAIL_QUEUE.c.id == bindparam("job_id"))
RETRY_LATER = (
    update(MAIL_QUEUE)
    .where(MAIL_QUEUE.c.id == bindparam("job_id"))
    .values(next_attempt_at=bindparam("next_attempt_at"), claimed_until=None, last_error=bindparam("error"))
)


@dataclass
class DeliveryReport:
    """What one delivery run did, job by job."""

    sent: int = 0
    failed: int = 0  # kept, to be tried again after its backoff
    given_up: int = 0  # failed for the last allowed time: kept, never tried again
    dropped: int = 0  # nothing to send any more (person erased, subject gone): deleted
    skipped: int = 0  # not due, or claimed by another deliverer

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            self.sent + other.sent,
            self.failed + other.failed,
            self.given_up + other.given_up,
            self.dropped + other.dropped,
            self.skipped + other.skipped,
        )

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.given_up + self.dropped


def enqueue_mail(session: Session, kind: str, subject_id: uuid.UUID, now: dt.datetime) -> uuid.UUID:
    """Owe a mail, inside the caller's transaction: it commits or rolls back with the change it announces.

    The job id is also kept in ``session.info``: the session is the one thing that
    belongs to this request (or command) alone and ends with it, so that inline delivery
    sends exactly what this request queued without a module-level list shared between
    threads. An id whose row was rolled back is harmless there: its claim finds no row.
    """
    job_id = new_id()
    session.connection().execute(ENQUEUE, {"job_id": job_id, "kind": kind, "subject_id": subject_id, "now": now})
    session.info.setdefault(QUEUED_IDS, []).append(job_id)
    return job_id


def retry_delay(attempts: int) -> dt.timedelta:
    """One minute after the first failure, doubling, at most six hours (20 attempts span about three days)."""
    return min(FIRST_RETRY * 2 ** max(0, min(attempts - 1, 16)), LONGEST_RETRY)


def due_mail_ids(session: Session, now: dt.datetime, limit: int | None = None) -> list[uuid.UUID]:
    """Jobs due at ``now`` and not claimed, oldest first (a read only; claiming comes later)."""
    query = DUE.limit(limit) if limit is not None else DUE
    ids = list(session.connection().execute(query, {"now": now}).scalars())
    session.rollback()
    return ids


def deliver_mail(
    session: Session,
    kinds: Mapping[str, MailRenderer],
    config: Mapping[str, Any],
    instance_path: str,
    now: dt.datetime,
    ids: Iterable[uuid.UUID] | None = None,
    limit: int | None = None,
) -> DeliveryReport:
    """Send the jobs named (or every due one), each claimed, rendered, sent and settled alone.

    Renderers build links, so a request context must be active (``web.link_context``
    outside a request). Each job's claim is committed before it is rendered, and no
    transaction stays open while SMTP answers.
    """
    job_ids = list(ids) if ids is not None else due_mail_ids(session, now, limit)
    if limit is not None:
        job_ids = job_ids[:limit]
    report = DeliveryReport()
    for job_id in job_ids:
        outcome = _deliver_one(session, kinds, config, instance_path, job_id, now)
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


class UnknownMailKind(Exception):
    """A job whose kind no domain registered (a code version that lacks it)."""


def _deliver_one(
    session: Session,
    kinds: Mapping[str, MailRenderer],
    config: Mapping[str, Any],
    instance_path: str,
    job_id: uuid.UUID,
    now: dt.datetime,
) -> str:
    begin_write(session)
    claimed = session.connection().execute(CLAIM, {"job_id": job_id, "now": now, "lease_end": now + LEASE}).first()
    session.commit()
    if claimed is None:
        return "skipped"
    kind, subject_id, attempts = claimed
    # Objects the caller loaded may predate what its transaction wrote through Core
    # statements (tickets issued, statuses claimed): renderers must read afresh.
    session.expire_all()
    try:
        renderer = kinds.get(kind)
        if renderer is None:
            raise UnknownMailKind(kind)
        mail = renderer(session, subject_id)
        session.rollback()
        if mail is not None:
            send_mail(mail, config, instance_path)
    except Exception as error:  # noqa: BLE001 - any failure keeps the job for a retry
        session.rollback()
        return _retry_later(session, job_id, kind, subject_id, attempts, error, now)
    _settle(session, DONE, {"job_id": job_id})
    if mail is None:
        log.info("mail %s for %s dropped: nothing to send any more", kind, subject_id)
        return "dropped"
    log.info("mail %s for %s sent", kind, subject_id)
    return "sent"


def _retry_later(
    session: Session,
    job_id: uuid.UUID,
    kind: str,
    subject_id: uuid.UUID,
    attempts: int,
    error: Exception,
    now: dt.datetime,
) -> str:
    name = type(error).__name__
    retry_at = now + retry_delay(attempts)
    _settle(session, RETRY_LATER, {"job_id": job_id, "next_attempt_at": retry_at, "error": name[:64]})
    given_up = attempts >= MAX_ATTEMPTS
    end = "given up" if given_up else f"retried in {retry_delay(attempts)}"
    if isinstance(error, MailFailed):
        # MailFailed's text names the server and the error type, never the recipient.
        log.warning("mail %s for %s not sent (attempt %d, %s): %s", kind, subject_id, attempts, end, error)
    else:
        # The type and the stack, never the message: it could quote an address.
        stack = "".join(traceback.format_tb(error.__traceback__))
        log.error("mail %s for %s not sent (attempt %d, %s): %s\n%s", kind, subject_id, attempts, end, name, stack)
    return "given_up" if given_up else "failed"


def _settle(session: Session, statement: Any, values: Mapping[str, Any]) -> None:
    begin_write(session)
    session.connection().execute(statement, values)
    session.commit()


def send_queued_mail_now(session: Session) -> DeliveryReport:
    """After a commit: in inline mode, send the mails this session queued; in worker mode, nothing.

    Callers call it once their service committed, whatever it queued (often nothing).
    """
    job_ids = session.info.pop(QUEUED_IDS, None)
    if not job_ids or current_app.config["MAIL_DELIVERY"] != "inline":
        return DeliveryReport()
    return deliver_mail(session, mail_kinds(), current_app.config, current_app.instance_path, utcnow(), ids=job_ids)


def mail_kinds() -> Mapping[str, MailRenderer]:
    """The running app's renderers by kind (filled by ``create_app``)."""
    return current_app.extensions.get(MAIL_KINDS, {})


@dataclass(frozen=True)
class QueueState:
    due: int  # waiting to be sent now, or being sent
    oldest_due_seconds: int | None  # since the oldest of those was queued
    given_up: int


def queue_state(session: Session, now: dt.datetime) -> QueueState:
    """How far behind delivery is, for /healthz and the CLI: counts and an age, no content."""
    due = MAIL_QUEUE.c.next_attempt_at <= now
    tried_out = MAIL_QUEUE.c.attempts >= MAX_ATTEMPTS
    row = session.execute(
        select(
            func.count().filter(due, ~tried_out),
            func.min(MAIL_QUEUE.c.created_at).filter(due, ~tried_out),
            func.count().filter(tried_out),
        ).select_from(MAIL_QUEUE)
    ).one()
    session.rollback()
    oldest = row[1]
    age = max(0, int((now - oldest).total_seconds())) if oldest is not None else None
    return QueueState(due=int(row[0]), oldest_due_seconds=age, given_up=int(row[2]))


def follow_mail_queue(
    session: Session,
    deliver_round: Callable[[], DeliveryReport],
    interval: float,
    stop: threading.Event,
    on_round: Callable[[DeliveryReport], None] | None = None,
) -> DeliveryReport:
    """Deliver, wait ``interval`` seconds (or until ``stop`` is set), again, until ``stop``.

    A database that went away fails one round, not the worker: it is logged and the next
    round tries again, as a request would after a 503.
    """
    total = DeliveryReport()
    while not stop.is_set():
        try:
            report = deliver_round()
        except (OperationalError, InterfaceError) as error:
            session.rollback()
            log.warning("mail worker: database unavailable (%s); trying again", type(error).__name__)
        else:
            total += report
            if on_round is not None:
                on_round(report)
        stop.wait(interval)
    return total
