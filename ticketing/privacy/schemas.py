"""The privacy API's bodies: the export of what is held about a buyer, and the receipt
of an erasure. The export's sections are listed as the domains write them."""

from __future__ import annotations

import marshmallow as ma

from ticketing.privacy.models import ERASURE_ROUTES
from ticketing.schema import Out

INSTANT = {"format": "date-time"}


class OrderQuery(ma.Schema):
    order = ma.fields.String(
        metadata={"description": "The order's code, when the bearer token is that order's access token."}
    )


class ErasureReceipt(Out):
    receipt_id = ma.fields.UUID(required=True)
    erased_at = ma.fields.String(required=True, metadata=INSTANT)
    route = ma.fields.String(required=True, validate=ma.validate.OneOf(ERASURE_ROUTES))
    orders_affected = ma.fields.Integer(required=True)


class Erasure(ErasureReceipt):
    tickets_remain_valid = ma.fields.Boolean(required=True)
    detail = ma.fields.String(required=True)


class PersonHeld(Out):
    """What was given for one order (each order keeps its own record)."""

    id = ma.fields.UUID(required=True)
    email = ma.fields.String(required=True)
    name = ma.fields.String(required=True, allow_none=True)
    postcode = ma.fields.String(required=True, allow_none=True)
    orders = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "the order codes"})


class Retention(Out):
    erased_automatically_after = ma.fields.String(required=True, allow_none=True, metadata=INSTANT)
    rule = ma.fields.String(required=True)


class KeptAfterErasure(Out):
    what = ma.fields.String(required=True)
    detail = ma.fields.String(required=True)
    why = ma.fields.String(required=True)


def _section(description: str) -> ma.fields.List:
    return ma.fields.List(ma.fields.Dict(), required=True, metadata={"description": description})


class PersonalDataExport(Out):
    generated_at = ma.fields.String(required=True, metadata=INSTANT)
    personal_data_held = ma.fields.Boolean(required=True)
    persons = ma.fields.List(
        ma.fields.Nested(PersonHeld),
        required=True,
        metadata={
            "description": "One record per order the token opens: an order's token opens that order's only, "
            "a my-data token every order of the address"
        },
    )
    orders = _section("the buyer's orders")
    tickets = _section("the tickets of those orders")
    check_ins = _section("when and where those tickets were scanned")
    stream_sessions = _section("the screens that watched with those tickets")
    retention = ma.fields.Nested(Retention, required=True)
    erasure_receipt = ma.fields.Nested(ErasureReceipt, required=True, allow_none=True)
    kept_after_erasure = ma.fields.List(ma.fields.Nested(KeptAfterErasure), required=True)


ORDER_QUERY = OrderQuery()
ERASURE = Erasure()
EXPORT = PersonalDataExport()
