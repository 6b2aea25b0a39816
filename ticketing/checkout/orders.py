"""Placing an order, and finding one again by its link or by the buyer's mailbox."""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session, make_transient_to_detached, selectinload

from ticketing.catalog.models import Event, TicketType
from ticketing.catalog.services import parse_uuid, sale_state
from ticketing.checkout import stock
from ticketing.checkout.models import Order, OrderLine, Ticket
from ticketing.checkout.settlement import ORDER_PAID_MAIL, issue_tickets
from ticketing.crypto import KeyRing, derive_access_token, hash_token, tokens_match
from ticketing.errors import Conflict, Invalid, NotFound, SoldOut
from ticketing.mail.queue import enqueue_mail
from ticketing.models import begin_write, new_id
from ticketing.privacy.vault import email_indexes, find_person_ids, store_person

log = logging.getLogger(__name__)

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud at a door
CODE_PATTERN = re.compile(f"[{CODE_ALPHABET}]{{5}}-[{CODE_ALPHABET}]{{5}}")
MAX_ITEMS = 20  # lines per order
MAX_QUANTITY = 50  # tickets per line
# Amounts are 32-bit integers in the database: a total above this cannot be stored.
MAX_ORDER_TOTAL_CENTS = 2**31 - 1

EVENT = Event.__table__
TICKET_TYPE = TicketType.__table__
ORDER = Order.__table__
ORDER_LINE = OrderLine.__table__

# What the sale rules read of an event and its ticket types, in one statement.
LOAD_FOR_SALE = (
    select(
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
    .select_from(EVENT.join(TICKET_TYPE, TICKET_TYPE.c.event_id == EVENT.c.id))
    .where(EVENT.c.id == bindparam("event_id"), EVENT.c.status != "draft")
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


def _merge(items: Sequence[OrderItem]) -> dict[uuid.UUID, int]:
    merged: dict[uuid.UUID, int] = {}
    for item in items:
        merged[item.ticket_type_id] = merged.get(item.ticket_type_id, 0) + item.quantity
    return merged


def _load_event_for_sale(session: Session, event_id: str) -> tuple[EventOnSale, dict[uuid.UUID, TypeOnSale]]:
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
    """Check the rules, record the buyer and the order, and hold the tickets, in one
    transaction.

    The hold comes last: on PostgreSQL each ticket type's row stays locked from its
    conditional UPDATE to the commit, and every order for that type waits on it, so
    nothing else runs in between. A free order (total 0) is paid at once, and its tickets
    mail queued with it. Otherwise the order stays ``pending`` until the payment provider
    confirms it or the hold expires.
    """
    wanted = _merge(request.items)
    # Errors name the client's own line: the first item that asked for this type.
    line_of: dict[uuid.UUID, int] = {}
    for index, item in enumerate(request.items):
        line_of.setdefault(item.ticket_type_id, index)
    begin_write(session)
    event, types = _load_event_for_sale(session, event_id)
    if event.status == "cancelled":
        session.rollback()
        raise Conflict(_("This event is cancelled."), code="event_cancelled")
    errors = _order_errors(event, types, wanted, request, line_of, now)
    subtotal = sum(types[t].price_cents * q for t, q in wanted.items() if t in types)
    fee = sum(types[t].fee_cents * q for t, q in wanted.items() if t in types)
    if not errors and subtotal + fee > MAX_ORDER_TOTAL_CENTS:
        errors["items"] = _("This order is too large to be paid at once. Split it into smaller orders.")
    if errors:
        session.rollback()
        raise Invalid(_("Some fields need attention."), errors=errors)

    person_id = store_person(
        session, keyring, email=request.email, name=request.name, postcode=request.postcode, now=now
    )
    is_free = subtotal + fee == 0
    order_id = new_id()
    access_token = derive_access_token(keyring.link_key, order_id)
    values = {
        "id": order_id,
        "code": new_order_code(),
        "access_token_hash": hash_token(access_token),
        "event_id": event.id,
        "person_id": person_id,
        "status": "paid" if is_free else "pending",
        "paid_at": now if is_free else None,
        "locale": locale,
        "currency": event.currency,
        "subtotal_cents": subtotal,
        "fee_cents": fee,
        "total_cents": subtotal + fee,
        "provider": "free" if is_free else provider,
        "provider_ref": None,
        "payment_session_ref": None,
        "hold_expires_at": now + dt.timedelta(minutes=hold_minutes),
        "created_at": now,
        "closed_at": None,
    }
    connection = session.connection()
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
    short = stock.hold(session, wanted)
    if short and stock.release_expired(session, now, event.id):
        short = stock.hold(session, {t: wanted[t] for t in short})
    if short:
        session.rollback()
        left = stock.left_for_sale(session, event.id, now)
        session.rollback()
        raise SoldOut(
            _("Not enough tickets left."),
            extra={"available": {str(type_id): left.get(type_id, 0) for type_id in wanted}},
        )
    if is_free:
        issue_tickets(session, order_id, event.id, wanted, now)
        enqueue_mail(session, ORDER_PAID_MAIL, order_id, now)
    # The row is written; hand callers a full ORM object without a flush or a re-read.
    order = Order(**values)
    make_transient_to_detached(order)
    session.add(order)
    session.commit()
    tickets = sum(wanted.values())
    log.info("order %s placed for event %s: %d ticket(s), %s", order.code, event.id, tickets, order.status)
    return PlacedOrder(order, access_token)


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


def orders_for_email(session: Session, keyring: KeyRing, email: str) -> list[tuple[Order, str]]:
    """Paid and pending orders placed with this address, with their access tokens: what
    "find my orders" mails to that address (and only there)."""
    person_ids = find_person_ids(session, email_indexes(keyring, email))
    if not person_ids:
        return []
    orders = session.execute(
        select(Order)
        .where(Order.person_id.in_(person_ids), Order.status.in_(("paid", "pending")))
        .options(selectinload(Order.event))
        .order_by(Order.created_at.desc())
        .limit(50)
    ).scalars()
    return [(order, derive_access_token(keyring.link_key, order.id)) for order in orders]
