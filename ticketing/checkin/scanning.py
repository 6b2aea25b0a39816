"""A door scan: admitting a ticket once, and logging every answer.

A scan is at most three SQL statements in one transaction, the same on SQLite and
PostgreSQL. The common one, a valid ticket shown once, is two: a conditional UPDATE that
admits the ticket only if it is valid, unused, paid for and scanned by a paired device,
and returns what the answer needs; then the INSERT of the scan log. Any other scan
(already used, voided, forged...) reads the device and the ticket's state to say why, and
logs that. The UPDATE's own WHERE decides who wins, so two doors racing on a ticket
cannot both admit: the loser reads the winner's admission and answers ``already_used``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Connection, bindparam, exists, select, update
from sqlalchemy.orm import Session

from ticketing.catalog.models import TicketType
from ticketing.checkin.dialects import insert_unless_present
from ticketing.checkin.models import Device, Scan
from ticketing.checkout.models import Order, Ticket
from ticketing.crypto import KeyRing, hash_token
from ticketing.errors import Invalid, Unauthorized
from ticketing.forms import FieldParser
from ticketing.models import begin_write
from ticketing.tickets.payload import InvalidPayload, check_ticket, read_ticket
from ticketing.tickets.services import verification_key

MAX_GATE = 64
MAX_REQUEST_ID = 64


@dataclass(frozen=True)
class ScanAnswer:
    result: str
    ticket_id: uuid.UUID | None = None
    ticket_type_id: uuid.UUID | None = None
    ticket_type: str | None = None
    checked_in_at: dt.datetime | None = None
    gate: str | None = None
    reason: str | None = None

    @property
    def is_admitted(self) -> bool:
        return self.result == "admitted"


def parse_scan(payload: Any, *, offline: bool = False) -> dict[str, Any]:
    if not isinstance(payload, Mapping):
        raise Invalid(_("The body must be a JSON object."), errors={"": _("The body must be a JSON object.")})
    fields = FieldParser(payload)
    scan = {
        "code": fields.text("code", required=True, max_length=400),
        "gate": fields.text("gate", max_length=MAX_GATE),
        "request_id": fields.text("request_id", required=offline, max_length=MAX_REQUEST_ID),
    }
    if offline:
        scan["scanned_at"] = fields.instant("scanned_at", zone=dt.UTC, required=True)
    fields.finish()
    return scan


# The scan's statements are Core, built once with bind parameters; SQLAlchemy caches
# their compiled form. They run on the session's connection in one transaction.
_device_t, _ticket_t, _type_t, _order_t, _scan_t = (
    Device.__table__,
    Ticket.__table__,
    TicketType.__table__,
    Order.__table__,
    Scan.__table__,
)
_admitting_scan = _scan_t.alias("admitting")
_scanning_device = _device_t.c.token_hash == bindparam("token_hash")
# The common scan, a valid ticket shown once, is decided by this one conditional UPDATE:
# it admits only a valid, unused ticket of a paid order, for a device that is paired and
# not revoked, and returns what the answer and the log need. (Whether the device serves
# the ticket's event is checked on what it returns: its events are a JSON list.)
ADMIT = (
    update(_ticket_t)
    .where(
        _ticket_t.c.id == bindparam("ticket_id"),
        _ticket_t.c.event_id == bindparam("claimed_event_id"),
        _ticket_t.c.checked_in_at.is_(None),
        _ticket_t.c.status == "valid",
        exists().where(_order_t.c.id == _ticket_t.c.order_id, _order_t.c.status == "paid"),
        exists().where(_scanning_device, _device_t.c.revoked_at.is_(None)),
    )
    .values(checked_in_at=bindparam("now", type_=_ticket_t.c.checked_in_at.type))
    .returning(
        _ticket_t.c.ticket_type_id,
        select(_type_t.c.name).where(_type_t.c.id == _ticket_t.c.ticket_type_id).scalar_subquery().label("type_name"),
        select(_device_t.c.id).where(_scanning_device).scalar_subquery().label("device_id"),
        select(_device_t.c.event_ids).where(_scanning_device).scalar_subquery().label("device_event_ids"),
    )
)
# Any other scan reads why: the device, the ticket, its type and order, the admitting scan.
STATE_QUERY = (
    select(
        _device_t.c.id,
        _device_t.c.event_ids,
        _device_t.c.revoked_at,
        _ticket_t.c.id.label("ticket_id"),
        _ticket_t.c.event_id,
        _ticket_t.c.status,
        _ticket_t.c.checked_in_at,
        _ticket_t.c.ticket_type_id,
        _type_t.c.name.label("type_name"),
        _order_t.c.status.label("order_status"),
        _admitting_scan.c.device_id.label("admitted_by"),
        _admitting_scan.c.request_id.label("admitted_request"),
        _admitting_scan.c.gate.label("admitted_gate"),
    )
    .select_from(_device_t)
    .outerjoin(_ticket_t, _ticket_t.c.id == bindparam("ticket_id", type_=_ticket_t.c.id.type))
    .outerjoin(_type_t, _type_t.c.id == _ticket_t.c.ticket_type_id)
    .outerjoin(_order_t, _order_t.c.id == _ticket_t.c.order_id)
    .outerjoin(
        _admitting_scan,
        (_admitting_scan.c.ticket_id == _ticket_t.c.id) & (_admitting_scan.c.result == "admitted"),
    )
    .where(_scanning_device)
)


def check_in(
    session: Session,
    keyring: KeyRing,
    device_token: str | None,
    code: str,
    *,
    gate: str | None,
    request_id: str | None,
    now: dt.datetime,
    offline: bool = False,
    scanned_at: dt.datetime | None = None,
) -> ScanAnswer:
    """Answer one scan and log it, in one transaction. ``scanned_at`` (offline scans) is
    when the door decided; the first scan to reach the database still wins."""
    if not device_token:
        raise Unauthorized(_("Send the device token as 'Authorization: Bearer <token>'."))
    when = min(scanned_at, now) if scanned_at else now
    claims = None
    reason = None
    try:
        claims, message, signature = read_ticket(code)
        check_ticket(claims, message, signature, verification_key(session, keyring, claims.key_id), now)
    except InvalidPayload as error:
        claims, reason = None, error.reason
    token_hash = hash_token(device_token)
    begin_write(session)
    # Core statements on the transaction's connection: the ORM layer has nothing to add here.
    connection = session.connection()
    if claims is not None:
        admitted = connection.execute(
            ADMIT,
            {"ticket_id": claims.ticket_id, "claimed_event_id": claims.event_id, "token_hash": token_hash, "now": when},
        ).first()
        if admitted is not None and str(claims.event_id) in admitted.device_event_ids:
            answer = ScanAnswer("admitted", claims.ticket_id, admitted.ticket_type_id, admitted.type_name, when, gate)
            _log(connection, admitted.device_id, claims, answer, gate, request_id, offline, when, now)
            session.commit()
            return answer
        if admitted is not None:  # a device that does not serve this event: undo, then say so below
            session.rollback()
            begin_write(session)
            connection = session.connection()
    state = connection.execute(
        STATE_QUERY, {"token_hash": token_hash, "ticket_id": claims.ticket_id if claims else None}
    ).first()
    if state is None or state.revoked_at is not None:
        session.rollback()
        raise Unauthorized(_("This device token is not valid (revoked or never paired)."), code="invalid_token")
    answer = _decide(state, claims, reason, request_id)
    if answer.result == "admitted" and state.checked_in_at is None:
        # The UPDATE found the ticket not admissible, yet it is now (its order was paid, or
        # another door's admission rolled back, in between): try once more, or say who won.
        won = connection.execute(
            ADMIT,
            {"ticket_id": state.ticket_id, "claimed_event_id": state.event_id, "token_hash": token_hash, "now": when},
        ).first()
        if won is not None:
            answer = ScanAnswer("admitted", state.ticket_id, state.ticket_type_id, state.type_name, when, gate)
        else:
            answer = _winner(session, state)
    if answer.result != "admitted" or state.admitted_by is None:  # a retried admission was logged the first time
        _log(connection, state.id, claims, answer, gate, request_id, offline, when, now)
    session.commit()
    return answer


def _log(
    connection: Connection,
    device_id: uuid.UUID,
    claims: Any,
    answer: ScanAnswer,
    gate: str | None,
    request_id: str | None,
    offline: bool,
    when: dt.datetime,
    now: dt.datetime,
) -> None:
    """One row of the scan log. A ticket of an event this device does not serve (perhaps
    another organiser's) is logged under the device alone: that event's statistics never
    count it."""
    ours = claims is not None and answer.result != "wrong_event"
    row = {
        "event_id": claims.event_id if ours else None,
        "ticket_id": claims.ticket_id if ours else None,
        "ticket_type_id": answer.ticket_type_id,
        "device_id": device_id,
        "gate": gate,
        "result": answer.result,
        "request_id": request_id,
        "offline": offline,
        "scanned_at": when,
        "recorded_at": now,
    }
    connection.execute(insert_unless_present(connection.dialect.name, Scan.__table__), row)


def _decide(state: Any, claims: Any, reason: str | None, request_id: str | None) -> ScanAnswer:
    if claims is None:
        return ScanAnswer("invalid", reason=reason)
    if str(claims.event_id) not in state.event_ids:
        return ScanAnswer("wrong_event", claims.ticket_id)
    if state.ticket_id is None or state.event_id != claims.event_id:
        return ScanAnswer("unknown_ticket", claims.ticket_id)
    typed = {"ticket_id": state.ticket_id, "ticket_type_id": state.ticket_type_id, "ticket_type": state.type_name}
    if state.status != "valid":
        return ScanAnswer("voided", **typed)
    if state.order_status != "paid":
        return ScanAnswer("not_paid", **typed)
    if state.checked_in_at is not None:
        # The same device retrying the request that admitted: the same answer again.
        if request_id and state.admitted_by == state.id and state.admitted_request == request_id:
            return ScanAnswer("admitted", checked_in_at=state.checked_in_at, gate=state.admitted_gate, **typed)
        return ScanAnswer("already_used", checked_in_at=state.checked_in_at, gate=state.admitted_gate, **typed)
    return ScanAnswer("admitted", **typed)


def _winner(session: Session, state: Any) -> ScanAnswer:
    """Another door admitted this ticket between our read and our UPDATE: say when and where."""
    row = session.execute(
        select(Ticket.checked_in_at, Ticket.status, Scan.gate)
        .outerjoin(Scan, (Scan.ticket_id == Ticket.id) & (Scan.result == "admitted"))
        .where(Ticket.id == state.ticket_id)
    ).first()
    typed = {"ticket_id": state.ticket_id, "ticket_type_id": state.ticket_type_id, "ticket_type": state.type_name}
    if row is None or row.checked_in_at is None:
        return ScanAnswer("voided", **typed)
    return ScanAnswer("already_used", checked_in_at=row.checked_in_at, gate=row.gate, **typed)
