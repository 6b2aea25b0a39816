"""The orders API's bodies: an order as a buyer places it, and as it reads back."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from ticketing.checkout.models import ORDER_STATUSES, TICKET_STATUSES
from ticketing.checkout.orders import MAX_ITEMS, MAX_QUANTITY
from ticketing.schema import Body, Email, Items, Out, Text, Time, Tolerant, Uuid, Whole

LINE_SHAPE = lazy_gettext("Each item must be an object with ticket_type_id and quantity.")


class Postcode(Text):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=16, **kwargs)

    def check(self, text: str) -> str:
        if not all(c.isalnum() or c in " -" for c in text):
            raise ma.ValidationError(_("Use letters, digits, spaces and hyphens only."))
        return text

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": 16, "pattern": r"^\s*(?:[^\W_]|[ \-])*\s*$"}


class OrderLineInput(Tolerant):
    error_messages = {**Tolerant.error_messages, "type": LINE_SHAPE}

    ticket_type_id = Uuid(lazy_gettext("No such ticket type."), required=True)
    quantity = Whole(minimum=1, maximum=MAX_QUANTITY, required=True)


class OrderInput(Body):
    event_id = Text(max_length=64, required=True, metadata={"description": "the event's id (a UUID)"})
    items = Items(
        ma.fields.Nested(OrderLineInput, error_messages={"null": LINE_SHAPE}),
        minimum=1,
        maximum=MAX_ITEMS,
        message=lazy_gettext("List at least one ticket type and quantity."),
        too_many=lazy_gettext("At most %(n)d lines per order.", n=MAX_ITEMS),
        required=True,
    )
    email = Email(required=True)
    name = Text(max_length=200, metadata={"description": "only when the event asks for it"})
    postcode = Postcode(metadata={"description": "only when the event asks for it"})


class Payment(Out):
    provider = ma.fields.String(required=True)
    url = ma.fields.String(required=True, metadata={"description": "where to send the buyer"})


class PlacedOrder(Out):
    code = ma.fields.String(required=True)
    access_token = ma.fields.String(
        required=True, metadata={"description": "secret, answered this once: keep it to read the order"}
    )
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(("pending", "paid")))
    total_cents = ma.fields.Integer(required=True)
    fee_cents = ma.fields.Integer(required=True)
    currency = ma.fields.String(required=True)
    hold_expires_at = Time(required=True, allow_none=True)
    payment = ma.fields.Nested(Payment, required=True)


class OrderLine(Out):
    ticket_type_id = ma.fields.UUID(required=True)
    name = ma.fields.String(required=True)
    quantity = ma.fields.Integer(required=True)
    unit_price_cents = ma.fields.Integer(required=True)
    unit_fee_cents = ma.fields.Integer(required=True)


class OrderTicket(Out):
    id = ma.fields.UUID(required=True)
    ticket_type_id = ma.fields.UUID(required=True)
    name = ma.fields.String(required=True)
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(TICKET_STATUSES))
    qr_payload = ma.fields.String(
        allow_none=True, metadata={"description": "the signed QR code of a valid ticket of a paid order"}
    )
    links = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        required=True,
        metadata={"description": "`watch`: the signed stream link of a valid ticket that grants the stream"},
    )


class Order(Out):
    code = ma.fields.String(required=True)
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(ORDER_STATUSES))
    event_id = ma.fields.UUID(required=True)
    currency = ma.fields.String(required=True)
    subtotal_cents = ma.fields.Integer(required=True)
    fee_cents = ma.fields.Integer(required=True)
    total_cents = ma.fields.Integer(required=True)
    created_at = Time(required=True)
    paid_at = Time(required=True, allow_none=True)
    hold_expires_at = Time(required=True, allow_none=True)
    lines = ma.fields.List(ma.fields.Nested(OrderLine), required=True)
    tickets = ma.fields.List(ma.fields.Nested(OrderTicket), required=True)


NEW_ORDER = OrderInput()
PLACED_ORDER = PlacedOrder()
ORDER = Order()
