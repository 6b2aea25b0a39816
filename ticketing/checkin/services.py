"""Door rules: pairing devices, admitting a ticket once, offline bundles and their sync.

The scan's hot path is at most three SQL statements: one SELECT authenticates the device
and reads the ticket's state with it (type, order, the admitting scan), one conditional
UPDATE admits (only when the ticket looked admissible), one INSERT logs the scan. The
UPDATE's own WHERE decides who wins, so two doors racing on a ticket cannot both admit:
the loser re-reads the winner's gate and logs its answer (two more statements, on that
race only). On PostgreSQL the UPDATE and its log row are one statement, and the scan runs
as prepared statements on a kept autocommit connection (``ticketing.autocommit``): two
round trips, where a transaction would take five.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections import namedtuple
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.orm import Session

from ticketing.autocommit import AutocommitConnections
from ticketing.catalog.models import Event, Organizer, TicketType
from ticketing.catalog.services import organizer_id_for_token
from ticketing.checkin.models import Device, Scan
from ticketing.checkout.models import Order, Ticket
from ticketing.crypto import KeyRing, hash_token, new_token
from ticketing.errors import Forbidden, Invalid, NotFound, Unauthorized
from ticketing.forms import FieldParser
from ticketing.models import begin_write
from ticketing.tickets.payload import InvalidPayload, check_ticket, read_ticket
from ticketing.tickets.services import verification_key, verification_keys

PAIRING_MINUTES = 15
PAIRING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a door
PAIRING_LENGTH = 12
MAX_GATE = 64
MAX_REQUEST_ID = 64
MAX_SYNC_SCANS = 500
MAX_DEVICE_EVENTS = 20


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


# --------------------------------------------------------------------------- devices


def _pairing_code() -> str:
    raw = "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(PAIRING_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, PAIRING_LENGTH, 4))


def _normalise_pairing_code(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


def parse_device_request(payload: Any) -> tuple[str, list[uuid.UUID]]:
    if not isinstance(payload, Mapping):
        raise Invalid(_("The body must be a JSON object."), errors={"": _("The body must be a JSON object.")})
    fields = FieldParser(payload)
    name = fields.text("name", required=True, max_length=100)
    raw_ids = payload.get("event_ids")
    event_ids: list[uuid.UUID] = []
    if not isinstance(raw_ids, list) or not raw_ids or len(raw_ids) > MAX_DEVICE_EVENTS:
        fields.fail("event_ids", _("Give a list of 1 to %(max)d event ids.", max=MAX_DEVICE_EVENTS))
    else:
        for raw in raw_ids:
            try:
                event_ids.append(uuid.UUID(str(raw)))
            except ValueError:
                fields.fail("event_ids", _("Each event id must be a UUID."))
                break
    fields.finish()
    return name or "", list(dict.fromkeys(event_ids))


def create_device(
    session: Session, organizer: Organizer, name: str, event_ids: Sequence[uuid.UUID], now: dt.datetime
) -> tuple[Device, str]:
    """A device waiting for pairing, and its one-time pairing code (shown once)."""
    begin_write(session)
    owned = set(
        session.execute(select(Event.id).where(Event.id.in_(event_ids), Event.organizer_id == organizer.id)).scalars()
    )
    if owned != set(event_ids):
        session.rollback()
        raise NotFound(_("No such event (or not yours)."))
    code = _pairing_code()
    device = Device(
        organizer_id=organizer.id,
        name=name,
        event_ids=[str(e) for e in event_ids],
        pairing_code_hash=hash_token(_normalise_pairing_code(code)),
        pairing_expires_at=now + dt.timedelta(minutes=PAIRING_MINUTES),
        created_at=now,
    )
    session.add(device)
    session.commit()
    return device, code


def pair_device(session: Session, code: str, now: dt.datetime) -> tuple[Device, str]:
    """Exchange a pairing code for a device token. The code works once: a conditional
    UPDATE clears it, so two devices racing with one code cannot both get a token."""
    token = new_token()
    begin_write(session)
    claimed = session.execute(
        update(Device)
        .where(
            Device.pairing_code_hash == hash_token(_normalise_pairing_code(code)),
            Device.pairing_expires_at > now,
            Device.revoked_at.is_(None),
        )
        .values(pairing_code_hash=None, pairing_expires_at=None, token_hash=hash_token(token), paired_at=now)
        .returning(Device.id)
    ).scalar()
    if claimed is None:
        session.rollback()
        raise Unauthorized(_("This pairing code is unknown, used or expired."), code="invalid_pairing_code")
    session.commit()
    device = session.get(Device, claimed, populate_existing=True)
    assert device is not None
    return device, token


def reissue_device_token(session: Session, device: Device, now: dt.datetime) -> str:
    """A new token for a device (the demo's scanner); the old token stops working."""
    token = new_token()
    begin_write(session)
    session.execute(
        update(Device)
        .where(Device.id == device.id)
        .values(token_hash=hash_token(token), paired_at=now, revoked_at=None, pairing_code_hash=None)
    )
    session.commit()
    return token


def list_devices(session: Session, organizer: Organizer) -> list[Device]:
    return list(
        session.execute(select(Device).where(Device.organizer_id == organizer.id).order_by(Device.created_at)).scalars()
    )


def revoke_device(session: Session, organizer: Organizer, device_id: str, now: dt.datetime) -> Device:
    try:
        wanted = uuid.UUID(device_id)
    except ValueError:
        raise NotFound(_("No such device.")) from None
    begin_write(session)
    device = session.execute(select(Device).where(Device.id == wanted, Device.organizer_id == organizer.id)).scalar()
    if device is None:
        session.rollback()
        raise NotFound(_("No such device."))
    if device.revoked_at is None:
        device.revoked_at = now
        device.token_hash = None
        device.pairing_code_hash = None
    session.commit()
    return device


def authenticate_device(session: Session, token: str | None) -> Device:
    if not token:
        raise Unauthorized(_("Send the device token as 'Authorization: Bearer <token>'."))
    device = session.execute(select(Device).where(Device.token_hash == hash_token(token))).scalar()
    if device is None or device.revoked_at is not None:
        raise Unauthorized(_("This device token is not valid (revoked or never paired)."), code="invalid_token")
    return device


def device_events(session: Session, device: Device) -> list[Event]:
    ids = [uuid.UUID(e) for e in device.event_ids]
    return list(session.execute(select(Event).where(Event.id.in_(ids)).order_by(Event.starts_at)).scalars())


def _device_event(session: Session, device: Device, event_id: str) -> Event:
    if event_id not in device.event_ids:
        raise Forbidden(_("This device is not paired for this event."), code="not_paired_for_event")
    event = session.get(Event, uuid.UUID(event_id))
    if event is None:
        raise NotFound(_("No such event."))
    return event


# --------------------------------------------------------------------------- scanning


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


# The hot path's statements are built once, with bind parameters, and run on the
# session's connection (Core): building and cache-keying them per scan, through the ORM,
# cost more CPU than PostgreSQL spent answering them.
_device_t, _ticket_t, _type_t, _order_t, _scan_t = (
    Device.__table__,
    Ticket.__table__,
    TicketType.__table__,
    Order.__table__,
    Scan.__table__,
)
_admitting_scan = _scan_t.alias("admitting")
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
    .where(_device_t.c.token_hash == bindparam("token_hash"))
)
ADMIT = (
    update(_ticket_t)
    .where(
        _ticket_t.c.id == bindparam("ticket_id"),
        _ticket_t.c.checked_in_at.is_(None),
        _ticket_t.c.status == "valid",
    )
    .values(checked_in_at=bindparam("now", type_=_ticket_t.c.checked_in_at.type))
)
# ON CONFLICT DO NOTHING: a retried request, or a second admission the partial unique
# index refuses, is logged once.
LOG_SCAN = {
    "postgresql": postgresql.insert(_scan_t).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(_scan_t).on_conflict_do_nothing(),
}
_LOGGED_COLUMNS = (
    "event_id",
    "ticket_id",
    "ticket_type_id",
    "device_id",
    "gate",
    "result",
    "request_id",
    "offline",
    "scanned_at",
    "recorded_at",
)
# PostgreSQL: admit and log the admission in one statement (data-modifying CTEs). The log
# row is written only when the UPDATE claimed the ticket; the outer SELECT says whether it
# did. The log's parameters are prefixed: an UPDATE takes any parameter named like one of
# its table's columns as a value to SET.
_admitted = ADMIT.returning(_ticket_t.c.id).cte("admitted")
_logged = (
    postgresql.insert(_scan_t)
    .from_select(
        _LOGGED_COLUMNS,
        select(*(bindparam(f"scan_{name}", type_=_scan_t.c[name].type) for name in _LOGGED_COLUMNS)).select_from(
            _admitted
        ),
    )
    .on_conflict_do_nothing()
    .cte("logged")
)
ADMIT_AND_LOG = select(select(func.count()).select_from(_admitted).scalar_subquery()).add_cte(_logged)
LOG_ONE_SCAN = (
    postgresql.insert(_scan_t)
    .values({name: bindparam(f"scan_{name}", type_=_scan_t.c[name].type) for name in _LOGGED_COLUMNS})
    .on_conflict_do_nothing()
)
ScanState = namedtuple("ScanState", [column.name for column in STATE_QUERY.selected_columns])  # noqa: PYI024


class _PreparedStatement:
    """A Core statement compiled once to psycopg's SQL, for ``AutocommitConnections``.

    The literals the statement holds ('valid', 'admitted') travel as parameters; times
    are passed as the naive UTC that ``UTCDateTime`` would bind.
    """

    def __init__(self, statement: Any) -> None:
        compiled = statement.compile(dialect=psycopg_dialect())
        self.sql = str(compiled)
        self.defaults = {compiled.bind_names[bind]: bind.value for bind in compiled.binds.values() if not bind.required}

    def parameters(self, values: Mapping[str, Any]) -> dict[str, Any]:
        bound = dict(self.defaults)
        for name, value in values.items():
            bound[name] = _naive_utc(value) if isinstance(value, dt.datetime) else value
        return bound


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


PREPARED_STATE = _PreparedStatement(STATE_QUERY)
PREPARED_ADMIT_AND_LOG = _PreparedStatement(ADMIT_AND_LOG)
PREPARED_LOG = _PreparedStatement(LOG_ONE_SCAN)


class _SessionScan:
    """A scan's statements in one transaction of the session (SQLite takes the write lock
    first, with ``BEGIN IMMEDIATE``)."""

    def __init__(self, session: Session) -> None:
        begin_write(session)
        self.connection = session.connection()
        self.dialect = self.connection.dialect.name

    def state(self, parameters: Mapping[str, Any]) -> Any:
        return self.connection.execute(STATE_QUERY, parameters).first()

    def admit(self, ticket_id: uuid.UUID, when: dt.datetime, log_row: Mapping[str, Any]) -> tuple[bool, bool]:
        """(won, logged): the admission is logged by ``log`` afterwards."""
        return self.connection.execute(ADMIT, {"ticket_id": ticket_id, "now": when}).rowcount == 1, False

    def log(self, log_row: Mapping[str, Any]) -> None:
        self.connection.execute(LOG_SCAN[self.dialect], log_row)


class _AutocommitScan:
    """A scan's statements as prepared statements on a kept autocommit connection."""

    def __init__(self, connections: AutocommitConnections) -> None:
        self.connections = connections

    def state(self, parameters: Mapping[str, Any]) -> Any:
        row = self.connections.fetch_one(PREPARED_STATE.sql, PREPARED_STATE.parameters(parameters), repeatable=True)
        if row is None:
            return None
        state = ScanState(*row)
        return state._replace(revoked_at=_aware(state.revoked_at), checked_in_at=_aware(state.checked_in_at))

    def admit(self, ticket_id: uuid.UUID, when: dt.datetime, log_row: Mapping[str, Any]) -> tuple[bool, bool]:
        """(won, logged): the admission and its log row are one statement."""
        values = {f"scan_{name}": value for name, value in log_row.items()}
        values.update(ticket_id=ticket_id, now=when)
        row = self.connections.fetch_one(
            PREPARED_ADMIT_AND_LOG.sql, PREPARED_ADMIT_AND_LOG.parameters(values), repeatable=False
        )
        return row is not None and row[0] == 1, True

    def log(self, log_row: Mapping[str, Any]) -> None:
        values = {f"scan_{name}": value for name, value in log_row.items()}
        self.connections.run(PREPARED_LOG.sql, PREPARED_LOG.parameters(values))


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
    connections: AutocommitConnections | None = None,
) -> ScanAnswer:
    """Answer one scan and log it. ``scanned_at`` (offline scans) is when the door
    decided; the first scan to reach the database still wins. With ``connections``
    (PostgreSQL) the statements run in autocommit; without, in one session transaction."""
    if not device_token:
        raise Unauthorized(_("Send the device token as 'Authorization: Bearer <token>'."))
    when = min(scanned_at, now) if scanned_at else now
    claims = None
    reason = None
    statements = _AutocommitScan(connections) if connections is not None else _SessionScan(session)
    try:
        claims, message, signature = read_ticket(code)
        check_ticket(claims, message, signature, verification_key(session, keyring, claims.key_id), now)
    except InvalidPayload as error:
        claims, reason = None, error.reason
    state = statements.state(
        {"token_hash": hash_token(device_token), "ticket_id": claims.ticket_id if claims else None}
    )
    if state is None or state.revoked_at is not None:
        session.rollback()
        raise Unauthorized(_("This device token is not valid (revoked or never paired)."), code="invalid_token")
    answer = _decide(state, claims, reason, request_id)
    log_row = {
        "event_id": claims.event_id if claims else None,
        "ticket_id": claims.ticket_id if claims else None,
        "ticket_type_id": state.ticket_type_id,
        "device_id": state.id,
        "gate": gate,
        "result": answer.result,
        "request_id": request_id,
        "offline": offline,
        "scanned_at": when,
        "recorded_at": now,
    }
    logged = answer.result == "admitted" and state.admitted_by is not None  # a retry, logged the first time
    if answer.result == "admitted" and state.checked_in_at is None:
        won, logged = statements.admit(state.ticket_id, when, log_row)
        if won:
            answer = ScanAnswer("admitted", state.ticket_id, state.ticket_type_id, state.type_name, when, gate)
        else:
            answer = _winner(session, state)
            logged = False
            log_row["result"] = answer.result
    if not logged:
        statements.log(log_row)
    session.commit()
    return answer


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


def parse_sync(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, Mapping) or not isinstance(payload.get("scans"), list):
        raise Invalid(_('Send {"scans": [...]}.'), errors={"scans": _("Must be a list of scans.")})
    scans = payload["scans"]
    if len(scans) > MAX_SYNC_SCANS:
        raise Invalid(
            _("Send at most %(max)d scans at once.", max=MAX_SYNC_SCANS),
            errors={"scans": _("Send at most %(max)d scans at once.", max=MAX_SYNC_SCANS)},
        )
    parsed = []
    for index, scan in enumerate(scans):
        try:
            parsed.append(parse_scan(scan, offline=True))
        except Invalid as error:
            raise Invalid(error.message, errors={f"scans[{index}].{k}": v for k, v in error.errors.items()}) from None
    return parsed


def sync_offline_scans(
    session: Session,
    keyring: KeyRing,
    device_token: str | None,
    scans: Sequence[Mapping[str, Any]],
    now: dt.datetime,
    connections: AutocommitConnections | None = None,
) -> list[tuple[Mapping[str, Any], ScanAnswer]]:
    """Upload scans decided offline, oldest first. Each is checked in like an online scan,
    so a ticket two offline doors both let in is admitted once (whichever reached the
    server first) and the other comes back as ``already_used``: a duplicate to report."""
    authenticate_device(session, device_token)
    session.rollback()
    ordered = sorted(scans, key=lambda s: s["scanned_at"])
    return [
        (
            scan,
            check_in(
                session,
                keyring,
                device_token,
                scan["code"],
                gate=scan["gate"],
                request_id=scan["request_id"],
                now=now,
                offline=True,
                scanned_at=scan["scanned_at"],
                connections=connections,
            ),
        )
        for scan in ordered
    ]


# --------------------------------------------------------------------------- bundle and stats


def event_bundle(session: Session, keyring: KeyRing, device: Device, event_id: str, now: dt.datetime) -> dict[str, Any]:
    """What a door needs to decide alone while the network is down."""
    event = _device_event(session, device, event_id)
    refused = session.execute(
        select(Ticket.id)
        .join(Order, Order.id == Ticket.order_id)
        .where(Ticket.event_id == event.id, (Ticket.status != "valid") | (Order.status != "paid"))
    ).scalars()
    admitted = session.execute(
        select(Ticket.id).where(Ticket.event_id == event.id, Ticket.checked_in_at.is_not(None))
    ).scalars()
    expected = _expected(session, event.id)
    return {
        "event": event,
        "keys": verification_keys(session, keyring, now),
        "voided": [str(t) for t in refused],
        "admitted": [str(t) for t in admitted],
        "expected": sum(expected.values()),
    }


def _expected(session: Session, event_id: uuid.UUID) -> dict[uuid.UUID, int]:
    rows = session.execute(
        select(Ticket.ticket_type_id, func.count())
        .join(Order, Order.id == Ticket.order_id)
        .where(Ticket.event_id == event_id, Ticket.status == "valid", Order.status == "paid")
        .group_by(Ticket.ticket_type_id)
    )
    return {type_id: count for type_id, count in rows}


def authorise_stats(session: Session, token: str | None, event_id: str) -> Event:
    """Stats are for the event's organiser, or a device paired for it."""
    try:
        wanted = uuid.UUID(event_id)
    except ValueError:
        raise NotFound(_("No such event.")) from None
    if not token:
        raise Unauthorized(_("Send an organiser or device token as 'Authorization: Bearer <token>'."))
    hashed = hash_token(token)
    device = session.execute(select(Device).where(Device.token_hash == hashed)).scalar()
    if device is not None and device.revoked_at is None:
        return _device_event(session, device, event_id)
    organizer_id = organizer_id_for_token(session, hashed)
    if organizer_id is None:
        raise Unauthorized(_("This token is not valid."), code="invalid_token")
    event = session.get(Event, wanted)
    if event is None or event.organizer_id != organizer_id:
        raise NotFound(_("No such event (or not yours)."))
    return event


def event_stats(session: Session, event: Event) -> dict[str, Any]:
    expected = _expected(session, event.id)
    admitted_by_type = dict(
        session.execute(
            select(Ticket.ticket_type_id, func.count())
            .where(Ticket.event_id == event.id, Ticket.checked_in_at.is_not(None))
            .group_by(Ticket.ticket_type_id)
        ).all()
    )
    by_gate = session.execute(
        select(Scan.gate, func.count())
        .where(Scan.event_id == event.id, Scan.result == "admitted")
        .group_by(Scan.gate)
        .order_by(Scan.gate)
    ).all()
    results = dict(
        session.execute(select(Scan.result, func.count()).where(Scan.event_id == event.id).group_by(Scan.result)).all()
    )
    return {
        "event_id": str(event.id),
        "admitted": sum(admitted_by_type.values()),
        "expected": sum(expected.values()),
        "by_ticket_type": [
            {
                "ticket_type_id": str(t.id),
                "name": t.name,
                "admitted": admitted_by_type.get(t.id, 0),
                "expected": expected.get(t.id, 0),
            }
            for t in event.ticket_types
        ],
        "by_gate": [{"gate": gate, "admitted": count} for gate, count in by_gate],
        "scans": results,
    }
