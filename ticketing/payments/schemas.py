"""The money API's bodies: an event's cancellation and its refunds."""

from __future__ import annotations

import marshmallow as ma

from ticketing.payments.models import REFUND_REASONS, REFUND_STATUSES
from ticketing.schema import Out, Time


class Cancellation(Out):
    id = ma.fields.UUID(required=True)
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(("cancelled",)))
    orders_to_refund = ma.fields.Integer(required=True)
    buyers_mailed = ma.fields.Integer(
        required=True, metadata={"description": "mailed by this request; 0 when a mail worker sends them"}
    )


class Refund(Out):
    order_code = ma.fields.String(required=True)
    reason = ma.fields.String(required=True, validate=ma.validate.OneOf(REFUND_REASONS))
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(REFUND_STATUSES))
    amount_cents = ma.fields.Integer(required=True)
    donated_cents = ma.fields.Integer(required=True)
    currency = ma.fields.String(required=True)
    attempts = ma.fields.Integer(required=True)
    last_error = ma.fields.String(required=True, allow_none=True)
    due_at = Time(required=True, allow_none=True)
    completed_at = Time(required=True, allow_none=True)


class Refunds(Out):
    event_id = ma.fields.UUID(required=True)
    failed = ma.fields.Integer(required=True)
    refunds = ma.fields.List(ma.fields.Nested(Refund), required=True, metadata={"description": "failed ones first"})


CANCELLATION = Cancellation()
REFUNDS = Refunds()
