"""Placing orders, holding and releasing tickets, and paying orders.

Inventory is never read-then-written: every change to ``reserved`` or ``sold`` is one
conditional UPDATE, so that no interleaving of requests on SQLite or PostgreSQL can sell
more than the capacity (the CHECK constraint ``reserved + sold <= capacity`` backs it).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session, joinedload, make_transient_to_detached, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from ticketing.catalog.models import Event, TicketType
from ticketing.catalog.services import parse_uuid, sale_state
from ticketing.checkout.models import Order, OrderLine, Ticket
from ticketing.crypto import KeyRing, derive_access_token, hash_token, tokens_match
from ticketing.errors import Conflict, Invalid, NotFound, SoldOut
from ticketing.forms import FieldParser
from ticketing.mail.queue import enqueue_mail
from ticketing.models import begin_write, new_id
from ticketing.privacy.vault import find_person_id, store_person

log = logging.getLogger(__name__)

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud at a door
CODE_PATTERN = re.compile(f"[{CODE_ALPHABET}]{{5}}-[{CODE_ALPHABET}]{{5}}")
MAX_ITEMS = 20
MAX_QUANTITY = 50
RELEASE_BATCH = 500
# Statuses of an order that was paid once (refunds and donations come after payment).
PAID_STATUSES = ("paid", "refunded", "part_refunded", "donated")
# The mail kind (see ticketing/mail/queue.py) owed by paying an order: its tickets.
ORDER_PAID_MAIL = "order_paid"


EVENT = Event.__table__
TICKET_TYPE = TicketType.__table__
ORDER = Order.__table__
ORDER_LINE = OrderLine.__table__
TICKET = Ticket.__table__

# The order path is the hot path of a flash sale: its statements are built once, as
# Core statements on tables, which costs a quarter of what the ORM spends per call.
# What the sale rules read of an event and its ticket types (see ``_order_errors``).
SALE_COLUMNS = (
    EVENT.c.status,
    EVENT.c.ends_at,
    EVENT.c.currency,
    EVENT.c.ask_name,
    EVENT.c.ask_postcode,
    TICKET_TYPE.c.id,
    TICKET_TYPE.c.name,
    TICKET_TYPE.c.price_cents,
    TICKET_TYPE.c.fee_cents,
    TICKET_TYPE.c.capacity,
    TICKET_TYPE.c.reserved,
    TICKET_TYPE.c.sold,
    TICKET_TYPE.c.sale_starts_at,
    TICKET_TYPE.c.sale_ends_at,
    TICKET_TYPE.c.max_per_order,
)
LOAD_FOR_SALE = (
    select(*SALE_COLUMNS)
    .select_from(EVENT.join(TICKET_TYPE, TICKET_TYPE.c.event_id == EVENT.c.id))
    .where(EVENT.c.id == bindparam("event_id"), EVENT.c.status != "draft")
)
HOLD = (
    update(TICKET_TYPE)
    .where(
        TICKET_TYPE.c.id == bindparam("type_id"),
        TICKET_TYPE.c.reserved + TICKET_TYPE.c.sold + bindparam("quantity") <= TICKET_TYPE.c.capacity,
    )
    .values(reserved=TICKET_TYPE.c.reserved + bindparam("quantity"))
)
SELL_HELD = (
    update(TICKET_TYPE)
    .where(TICKET_TYPE.c.id == bindparam("type_id"))
    .values(reserved=TICKET_TYPE.c.reserved - bindparam("quantity"), sold=TICKET_TYPE.c.sold + bindparam("quantity"))
)
# Paying claims the order only in the status it was read in: a concurrent payment or
# release makes this match nothing, and the caller reads again.
CLAIM_PAYMENT = (
    update(ORDER)
    .where(ORDER.c.id == bindparam("order_id"), ORDER.c.status == bindparam("seen_status"))
    .values(status="paid", paid_at=bindparam("now"), closed_at=None, provider_ref=bindparam("ref"))
)
GIVE_BACK = (
    update(TICKET_TYPE)
    .where(TICKET_TYPE.c.id == bindparam("type_id"))
    .values(reserved=TICKET_TYPE.c.reserved - bindparam("quantity"))
)
ORDER_COLUMNS = (
    "id",
    "code",
    "access_token_hash",
    "event_id",
    "person_id",
    "status",
    "paid_at",
    "locale",
    "currency",
    "subtotal_cents",
    "fee_cents",
    "total_cents",
    "provider",
    "provider_ref",
    "hold_expires_at",
    "created_at",
    "closed_at",
)


def _order_with_one_line() -> Any:
    """PostgreSQL only: the order and its single line in one round trip (most orders are
    for one ticket type; the line needs the order row first, for its foreign key)."""
    new_order = insert(ORDER).values({name: bindparam(name) for name in ORDER_COLUMNS}).returning(ORDER.c.id)
    order_cte = new_order.cte("new_order")
    return insert(ORDER_LINE).from_select(
        ["order_id", "ticket_type_id", "quantity", "unit_price_cents", "unit_fee_cents"],
        select(
            order_cte.c.id,
            bindparam("line_type_id", type_=ORDER_LINE.c.ticket_type_id.type),
            bindparam("line_quantity", type_=ORDER_LINE.c.quantity.type),
            bindparam("line_price", type_=ORDER_LINE.c.unit_price_cents.type),
            bindparam("line_fee", type_=ORDER_LINE.c.unit_fee_cents.type),
        ),
    )


INSERT_ORDER_WITH_ONE_LINE_PG = _order_with_one_line()
HOLD_FOR_SALE = (
    update(TICKET_TYPE)
    .where(
        TICKET_TYPE.c.id == bindparam("type_id"),
        TICKET_TYPE.c.event_id == EVENT.c.id,
        EVENT.c.id == bindparam("sale_event_id"),  # "event_id" is a column name: reserved
        EVENT.c.status == "published",
        TICKET_TYPE.c.reserved + TICKET_TYPE.c.sold + bindparam("quantity") <= TICKET_TYPE.c.capacity,
    )
    .values(reserved=TICKET_TYPE.c.reserved + bindparam("quantity"))
    .returning(EVENT.c.id.label("event_id"), *SALE_COLUMNS)
)
AVAILABILITY = select(TICKET_TYPE.c.id, TICKET_TYPE.c.capacity - TICKET_TYPE.c.reserved - TICKET_TYPE.c.sold).where(
    TICKET_TYPE.c.event_id == bindparam("event_id")
)


@dataclass(frozen=True, slots=True)
class EventOnSale:
    """What placing an order needs to know of an event (``sale_state`` reads the same names)."""

    id: uuid.UUID
    status: str
    ends_at: dt.datetime
    currency: str
    ask_name: bool
    ask_postcode: bool


@dataclass(frozen=True, slots=True)
class TypeOnSale:
    id: uuid.UUID
    name: str
    price_cents: int
    fee_cents: int
    capacity: int
    reserved: int
    sold: int
    sale_starts_at: dt.datetime | None
    sale_ends_at: dt.datetime | None
    max_per_order: int

    @property
    def available(self) -> int:
        return max(0, self.capacity - self.reserved - self.sold)


@dataclass(frozen=True)
class OrderItem:
    ticket_type_id: uuid.UUID
    quantity: int


@dataclass(frozen=True)
class OrderRequest:
    """A buyer's order, checked for shape (not yet for stock or sale windows)."""

    items: tuple[OrderItem, ...]
    email: str
    name: str | None = None
    postcode: str | None = None


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    access_token: str


class PaymentStarter(Protocol):
    """What checkout needs from a payment provider (implemented in ``payments``)."""

    name: str

    def start(self, order: Order, access_token: str) -> str:
        """Return the URL to send the buyer to, to pay this order."""
        ...


def new_order_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _parse_postcode(fields: FieldParser) -> str | None:
    value = fields.text("postcode", max_length=16)
    if value is not None and not all(c.isalnum() or c in " -" for c in value):
        fields.fail("postcode", _("Use letters, digits, spaces and hyphens only."))
        return None
    return value


def parse_order_form(form: Mapping[str, str], event: Event) -> OrderRequest:
    """Read the buy form of an event page: one ``qty-<ticket type id>`` field per type.

    Every problem is reported at once, including the name and postcode this event asks
    for, so that the buyer fixes the form in one go.
    """
    fields = FieldParser(form)
    email = fields.email()
    name = fields.text("name", max_length=200) if event.ask_name else None
    postcode = _parse_postcode(fields) if event.ask_postcode else None
    if event.ask_name and not name and "name" not in fields.errors:
        fields.fail("name", _("This event asks for your name."))
    if event.ask_postcode and not postcode and "postcode" not in fields.errors:
        fields.fail("postcode", _("This event asks for your postcode."))
    items: list[OrderItem] = []
    quantity_errors = False
    for ticket_type in event.ticket_types:
        field_name = f"qty-{ticket_type.id}"
        quantity = fields.integer(field_name, minimum=0, maximum=MAX_QUANTITY, default=0)
        quantity_errors = quantity_errors or field_name in fields.errors
        if quantity:
            items.append(OrderItem(ticket_type.id, quantity))
    if not items and not quantity_errors:
        fields.fail("tickets", _("Choose at least one ticket."))
    fields.finish()
    assert email is not None
    return OrderRequest(tuple(items), email, name, postcode)


def _merge(items: Sequence[OrderItem]) -> dict[uuid.UUID, int]:
    merged: dict[uuid.UUID, int] = {}
    for item in items:
        merged[item.ticket_type_id] = merged.get(item.ticket_type_id, 0) + item.quantity
    return merged


def _hold(session: Session, ticket_type_id: uuid.UUID, quantity: int) -> bool:
    taken = session.connection().execute(HOLD, {"type_id": ticket_type_id, "quantity": quantity}).rowcount
    return taken == 1


def _load_event_for_sale(session: Session, event_id: str) -> tuple[EventOnSale, dict[uuid.UUID, TypeOnSale]]:
    """The event and all its ticket types in one statement (an order's budget is tight)."""
    parsed = parse_uuid(event_id)
    rows = session.connection().execute(LOAD_FOR_SALE, {"event_id": parsed}).all()
    if not rows:
        raise NotFound(_("No such event."))
    first = rows[0]
    event = EventOnSale(parsed, first.status, first.ends_at, first.currency, first.ask_name, first.ask_postcode)
    types = {
        row.id: TypeOnSale(
            row.id,
            row.name,
            row.price_cents,
            row.fee_cents,
            row.capacity,
            row.reserved,
            row.sold,
            row.sale_starts_at,
            row.sale_ends_at,
            row.max_per_order,
        )
        for row in rows
    }
    return event, types


def _order_errors(
    event: EventOnSale,
    types: Mapping[uuid.UUID, TypeOnSale],
    wanted: Mapping[uuid.UUID, int],
    request: OrderRequest,
    line_of: Mapping[uuid.UUID, int],
    now: dt.datetime,
) -> dict[str, str]:
    """Every reason this order cannot be placed as asked, by field."""
    errors: dict[str, str] = {}
    for type_id, quantity in wanted.items():
        ticket_type = types.get(type_id)
        key = f"items[{line_of[type_id]}]"
        if ticket_type is None:
            errors[f"{key}.ticket_type_id"] = _("No such ticket type for this event.")
            continue
        state = sale_state(ticket_type, event, now)
        if state.state == "not_yet":
            errors[key] = _("Sales for %(name)s have not opened yet.", name=ticket_type.name)
        elif state.state in ("ended", "unavailable"):
            errors[key] = _("Sales for %(name)s are closed.", name=ticket_type.name)
        elif quantity > ticket_type.max_per_order:
            errors[key] = ngettext(
                "At most %(num)d %(name)s ticket per order.",
                "At most %(num)d %(name)s tickets per order.",
                ticket_type.max_per_order,
                name=ticket_type.name,
            )
    if event.ask_name and not request.name:
        errors["name"] = _("This event asks for your name.")
    if not event.ask_name and request.name:
        errors["name"] = _("This event does not collect names.")
    if event.ask_postcode and not request.postcode:
        errors["postcode"] = _("This event asks for your postcode.")
    if not event.ask_postcode and request.postcode:
        errors["postcode"] = _("This event does not collect postcodes.")
    return errors


def _hold_in_one_statement(
    session: Session,
    event_id: str,
    wanted: Mapping[uuid.UUID, int],
    request: OrderRequest,
    line_of: Mapping[uuid.UUID, int],
    now: dt.datetime,
) -> tuple[EventOnSale, dict[uuid.UUID, TypeOnSale]] | None:
    """The fast path of a flash sale (PostgreSQL, one ticket type): hold first, in one
    UPDATE that also returns what the rules need, then check the rules.

    Returns None, with the transaction rolled back and begun again, whenever anything is
    off (sold out, unknown, closed, a rule broken): ``_hold_or_explain`` then takes the
    careful path and gives the precise answer. So this path can only make a valid order
    cheaper, never change an answer.
    """
    if session.get_bind().dialect.name != "postgresql" or len(wanted) != 1:
        return None
    [(type_id, quantity)] = wanted.items()
    row = (
        session.connection()
        .execute(HOLD_FOR_SALE, {"sale_event_id": parse_uuid(event_id), "type_id": type_id, "quantity": quantity})
        .first()
    )
    if row is not None:
        event = EventOnSale(row.event_id, row.status, row.ends_at, row.currency, row.ask_name, row.ask_postcode)
        # RETURNING shows the row after the hold; the rules judge it as it was before.
        ticket_type = TypeOnSale(
            row.id,
            row.name,
            row.price_cents,
            row.fee_cents,
            row.capacity,
            row.reserved - quantity,
            row.sold,
            row.sale_starts_at,
            row.sale_ends_at,
            row.max_per_order,
        )
        types = {type_id: ticket_type}
        if not _order_errors(event, types, wanted, request, line_of, now):
            return event, types
    session.rollback()
    begin_write(session)
    return None


def _hold_or_explain(
    session: Session,
    event_id: str,
    wanted: Mapping[uuid.UUID, int],
    request: OrderRequest,
    line_of: Mapping[uuid.UUID, int],
    now: dt.datetime,
) -> tuple[EventOnSale, dict[uuid.UUID, TypeOnSale]]:
    """Read the event, check every rule, then hold; raise the precise reason otherwise."""
    event, types = _load_event_for_sale(session, event_id)
    if event.status == "cancelled":
        session.rollback()
        raise Conflict(_("This event is cancelled."), code="event_cancelled")
    errors = _order_errors(event, types, wanted, request, line_of, now)
    if errors:
        session.rollback()
        raise Invalid(_("Some fields need attention."), errors=errors)
    short = [type_id for type_id, quantity in wanted.items() if not _hold(session, type_id, quantity)]
    if short and _release_expired(session, now, event.id):
        short = [type_id for type_id in short if not _hold(session, type_id, wanted[type_id])]
    if short:
        left = _availability(session, event.id)
        session.rollback()
        raise SoldOut(
            _("Not enough tickets left."),
            extra={"available": {str(type_id): left.get(type_id, 0) for type_id in wanted}},
        )
    return event, types


def place_order(
    session: Session,
    keyring: KeyRing,
    event_id: str,
    request: OrderRequest,
    *,
    locale: str,
    now: dt.datetime,
    hold_minutes: int,
    provider: str,
) -> PlacedOrder:
    """Hold the tickets and record the order, in one transaction.

    A free order (total 0) is paid at once, and its tickets mail queued with it.
    Otherwise the order stays ``pending`` until the payment provider confirms it or the
    hold expires.
    """
    wanted = _merge(request.items)
    # Errors name the client's own line: the first item that asked for this type.
    line_of: dict[uuid.UUID, int] = {}
    for index, item in enumerate(request.items):
        line_of.setdefault(item.ticket_type_id, index)
    begin_write(session)
    held = _hold_in_one_statement(session, event_id, wanted, request, line_of, now)
    if held is not None:
        event, types = held
    else:
        event, types = _hold_or_explain(session, event_id, wanted, request, line_of, now)

    person_id = store_person(
        session, keyring, email=request.email, name=request.name, postcode=request.postcode, now=now
    )
    subtotal = sum(types[t].price_cents * q for t, q in wanted.items())
    fee = sum(types[t].fee_cents * q for t, q in wanted.items())
    order_id = new_id()
    access_token = derive_access_token(keyring.link_key, order_id)
    values = {
        "id": order_id,
        "code": new_order_code(),
        "access_token_hash": hash_token(access_token),
        "event_id": event.id,
        "person_id": person_id,
        "status": "paid" if subtotal + fee == 0 else "pending",
        "paid_at": now if subtotal + fee == 0 else None,
        "locale": locale,
        "currency": event.currency,
        "subtotal_cents": subtotal,
        "fee_cents": fee,
        "total_cents": subtotal + fee,
        "provider": "free" if subtotal + fee == 0 else provider,
        "provider_ref": None,
        "hold_expires_at": now + dt.timedelta(minutes=hold_minutes),
        "created_at": now,
        "closed_at": None,
    }
    connection = session.connection()
    if connection.dialect.name == "postgresql" and len(wanted) == 1:
        [(type_id, quantity)] = wanted.items()
        line = {
            "line_type_id": type_id,
            "line_quantity": quantity,
            "line_price": types[type_id].price_cents,
            "line_fee": types[type_id].fee_cents,
        }
        connection.execute(INSERT_ORDER_WITH_ONE_LINE_PG, {**values, **line})
    else:
        connection.execute(insert(ORDER), values)
        connection.execute(
            insert(ORDER_LINE),
            [
                {
                    "order_id": order_id,
                    "ticket_type_id": t,
                    "quantity": q,
                    "unit_price_cents": types[t].price_cents,
                    "unit_fee_cents": types[t].fee_cents,
                }
                for t, q in wanted.items()
            ],
        )
    if subtotal + fee == 0:
        _issue_tickets(session, order_id, event.id, wanted, now)
        enqueue_mail(session, ORDER_PAID_MAIL, order_id, now)
    # The row is written; hand callers a full ORM object without a flush or a re-read.
    order = Order(**values)
    make_transient_to_detached(order)
    session.add(order)
    session.commit()
    log.info("order %s placed for event %s: %d tickets, %s", order.code, event.id, sum(wanted.values()), order.status)
    return PlacedOrder(order, access_token)


def _availability(session: Session, event_id: uuid.UUID) -> dict[uuid.UUID, int]:
    rows = session.connection().execute(AVAILABILITY, {"event_id": event_id})
    return {type_id: max(0, left) for type_id, left in rows}


def _issue_tickets(
    session: Session, order_id: uuid.UUID, event_id: uuid.UUID, wanted: Mapping[uuid.UUID, int], now: dt.datetime
) -> None:
    """Turn held tickets into sold ones and mint a random id for each ticket."""
    connection = session.connection()
    connection.execute(SELL_HELD, [{"type_id": t, "quantity": q} for t, q in wanted.items()])
    connection.execute(
        insert(TICKET),
        [
            {
                "id": new_id(),
                "order_id": order_id,
                "event_id": event_id,
                "ticket_type_id": t,
                "status": "valid",
                "checked_in_at": None,
                "created_at": now,
            }
            for t, q in wanted.items()
            for _ in range(q)
        ],
    )


def _release_expired(session: Session, now: dt.datetime, event_id: uuid.UUID | None = None) -> int:
    """Give expired holds back to the stock, inside the caller's write transaction.

    Each order is closed with a conditional UPDATE first, so two processes releasing the
    same hold cannot give its tickets back twice.
    """
    query = select(Order.id).where(Order.status == "pending", Order.hold_expires_at <= now)
    if event_id is not None:
        query = query.where(Order.event_id == event_id)
    order_ids = session.execute(query.limit(RELEASE_BATCH)).scalars().all()
    released = 0
    for order_id in order_ids:
        closed = session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == "pending")
            .values(status="expired", closed_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if closed:
            _give_back(session, order_id)
            released += 1
    return released


def _give_back(session: Session, order_id: uuid.UUID) -> None:
    lines = session.execute(
        select(OrderLine.ticket_type_id, OrderLine.quantity).where(OrderLine.order_id == order_id)
    ).all()
    if lines:
        session.connection().execute(GIVE_BACK, [{"type_id": t, "quantity": q} for t, q in lines])


def release_expired_holds(session: Session, now: dt.datetime, event_id: uuid.UUID | None = None) -> int:
    """Release every expired hold (for one event, or all); returns how many orders.

    Called lazily before availability is shown, and by ``flask expire-holds``. The cheap
    read comes first, so the common case (nothing expired) takes no write lock.
    """
    query = select(Order.id).where(Order.status == "pending", Order.hold_expires_at <= now)
    if event_id is not None:
        query = query.where(Order.event_id == event_id)
    if session.execute(query.limit(1)).first() is None:
        return 0
    total = 0
    while True:
        begin_write(session)
        released = _release_expired(session, now, event_id)
        session.commit()
        total += released
        if released < RELEASE_BATCH:
            break
    if total:
        log.info("released %d expired holds", total)
    return total


# What the order page and the tickets mail show: lines, tickets and their types, the event.
WITH_LINES_AND_TICKETS = (
    selectinload(Order.lines).selectinload(OrderLine.ticket_type),
    selectinload(Order.tickets).selectinload(Ticket.ticket_type),
    selectinload(Order.event),
)


def find_order(session: Session, code: str, access_token: str) -> Order:
    """The order this code and token open; a wrong token is the same 404 as no order."""
    code = code.strip().upper()
    if not CODE_PATTERN.fullmatch(code):
        # Not a code we issue: no query (PostgreSQL would also refuse a NUL byte with a 500).
        raise NotFound(_("No order matches this link. Check that you copied the whole link."), code="order_not_found")
    order = session.execute(select(Order).where(Order.code == code).options(*WITH_LINES_AND_TICKETS)).scalar()
    if order is None or not access_token or not tokens_match(access_token, order.access_token_hash):
        raise NotFound(_("No order matches this link. Check that you copied the whole link."), code="order_not_found")
    return order


def pay_order(session: Session, order_id: uuid.UUID, now: dt.datetime, provider_ref: str | None = None) -> Order:
    """Mark an order paid and issue its tickets; paying twice changes nothing.

    A pending order past its hold but not yet released still owns its held tickets. One
    whose hold was released gets its tickets only if they can be taken again from the
    stock; otherwise ``HoldExpired`` tells the provider to refund.
    """
    return settle_order(session, order_id, now, provider_ref).order


@dataclass(frozen=True)
class Settlement:
    order: Order
    newly_paid: bool  # this call paid it (and queued the tickets mail)


def settle_order(
    session: Session, order_id: uuid.UUID, now: dt.datetime, provider_ref: str | None = None
) -> Settlement:
    """``pay_order`` that also says whether this call did the paying.

    Webhooks arrive more than once, sometimes at the same moment; only the delivery that
    won the conditional UPDATE queues the buyer's mail.
    """
    for _attempt in range(3):
        begin_write(session)
        order = load_order_for_payment(session, order_id)
        if order is None:
            session.rollback()
            raise NotFound(_("No such order."))
        try:
            settlement = settle_loaded_order(session, order, now, provider_ref)
        except Conflict:
            session.rollback()
            raise
        if settlement is None:
            # Another process paid or released it between our read and our write: look again.
            session.rollback()
            continue
        if settlement.newly_paid:
            session.commit()
        else:
            session.rollback()
        return settlement
    raise Conflict(_("This order is changing right now; try again."), code="order_busy")


# Built once: every webhook that pays runs it, and building an ORM query with its loader
# options cost more CPU than the database spent answering it. One statement: an order
# has a few lines, so joining them beats a second round trip.
LOAD_FOR_PAYMENT = (
    select(Order)
    .where(Order.id == bindparam("order_id"))
    .options(joinedload(Order.lines).joinedload(OrderLine.ticket_type), joinedload(Order.event))
    .execution_options(populate_existing=True)
)


def load_order_for_payment(session: Session, order_id: uuid.UUID) -> Order | None:
    """The order with its lines, their types and its event, fresh from the database."""
    return session.execute(LOAD_FOR_PAYMENT, {"order_id": order_id}).unique().scalar_one_or_none()


def settle_loaded_order(
    session: Session, order: Order, now: dt.datetime, provider_ref: str | None = None
) -> Settlement | None:
    """Pay an order inside the caller's write transaction; the caller commits.

    Paying queues the tickets mail in the same transaction, so every path that pays
    (webhook, reconciliation, the demo page) owes the buyer exactly one mail, and a
    payment rolled back owes none. Returns None when another transaction changed the
    order between its read and this claim: the caller reads it again and retries.
    ``HoldExpired`` leaves the caller's transaction as it was (a savepoint undoes the
    stock taken).
    """
    if order.status in PAID_STATUSES:
        return Settlement(order, False)
    if order.status == "cancelled":
        raise Conflict(_("This order was cancelled."), code="order_cancelled")
    wanted = {line.ticket_type_id: line.quantity for line in order.lines}
    seen_status = order.status
    savepoint = session.begin_nested() if seen_status == "expired" else None
    if savepoint is not None and any(not _hold(session, t, q) for t, q in wanted.items()):
        savepoint.rollback()
        raise HoldExpired(_("The hold on these tickets expired and they are no longer available."))
    ref = provider_ref or order.provider_ref
    claimed = (
        session.connection()
        .execute(CLAIM_PAYMENT, {"order_id": order.id, "seen_status": seen_status, "now": now, "ref": ref})
        .rowcount
    )
    if not claimed:
        if savepoint is not None:
            savepoint.rollback()
        return None
    if savepoint is not None:
        savepoint.commit()
    _issue_tickets(session, order.id, order.event_id, wanted, now)
    enqueue_mail(session, ORDER_PAID_MAIL, order.id, now)
    for name, value in (("status", "paid"), ("paid_at", now), ("closed_at", None), ("provider_ref", ref)):
        set_committed_value(order, name, value)
    log.info("order %s paid", order.code)
    return Settlement(order, True)


def cancel_order(session: Session, order_id: uuid.UUID, now: dt.datetime) -> Order:
    """Cancel an unpaid order (the buyer gave up at the payment page) and free its hold."""
    begin_write(session)
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound(_("No such order."))
    if order.status == "paid":
        session.rollback()
        raise Conflict(_("This order is already paid."), code="order_paid")
    closed = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == "pending")
        .values(status="cancelled", closed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if closed:
        _give_back(session, order.id)
    session.commit()
    session.refresh(order)
    log.info("order %s cancelled before payment", order.code)
    return order


def expire_order(session: Session, order_id: uuid.UUID, now: dt.datetime) -> bool:
    """Give back the hold of an unpaid order whose payment session ended unpaid.

    Unlike ``cancel_order`` it leaves the order ``expired``: a payment that still arrives
    (events come out of order) takes the stock again like any late payment.
    """
    begin_write(session)
    closed = expire_order_in_transaction(session, order_id, now)
    session.commit()
    return closed


def expire_order_in_transaction(session: Session, order_id: uuid.UUID, now: dt.datetime) -> bool:
    closed = session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == "pending")
        .values(status="expired", closed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if closed:
        _give_back(session, order_id)
    return bool(closed)


class HoldExpired(Conflict):
    code = "hold_expired"
    title = "Hold expired"


def orders_for_email(session: Session, keyring: KeyRing, email: str) -> list[tuple[Order, str]]:
    """Paid and pending orders of the person with this email, with their access tokens."""
    person_id = find_person_id(session, keyring, email)
    if person_id is None:
        return []
    orders = session.execute(
        select(Order)
        .where(Order.person_id == person_id, Order.status.in_(("paid", "pending")))
        .options(selectinload(Order.event))
        .order_by(Order.created_at.desc())
        .limit(50)
    ).scalars()
    return [(order, derive_access_token(keyring.link_key, order.id)) for order in orders]
