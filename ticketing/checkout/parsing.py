"""Reading an order from the API's JSON or the event page's buy form.

Shape only: whether the event sells these tickets now is ``orders.place_order``'s to say.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _

from ticketing.catalog.models import Event
from ticketing.checkout.orders import OrderItem, OrderRequest
from ticketing.errors import Invalid
from ticketing.forms import FieldParser

MAX_ITEMS = 20
MAX_QUANTITY = 50


def _parse_postcode(fields: FieldParser) -> str | None:
    value = fields.text("postcode", max_length=16)
    if value is not None and not all(c.isalnum() or c in " -" for c in value):
        fields.fail("postcode", _("Use letters, digits, spaces and hyphens only."))
        return None
    return value


def parse_order_json(payload: Any) -> tuple[str, OrderRequest]:
    """Read ``POST /api/v1/orders``; returns the event id and the request."""
    if not isinstance(payload, Mapping):
        raise Invalid(_("The body must be a JSON object."), errors={"": _("The body must be a JSON object.")})
    fields = FieldParser(payload)
    event_id = fields.text("event_id", required=True, max_length=64)
    email = fields.email()
    name = fields.text("name", max_length=200)
    postcode = _parse_postcode(fields)
    items: list[OrderItem] = []
    raw_items = payload.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        fields.fail("items", _("List at least one ticket type and quantity."))
    elif len(raw_items) > MAX_ITEMS:
        fields.fail("items", _("At most %(n)d lines per order.", n=MAX_ITEMS))
    else:
        for position, raw in enumerate(raw_items):
            prefix = f"items[{position}]"
            if not isinstance(raw, Mapping):
                fields.fail(prefix, _("Each item must be an object with ticket_type_id and quantity."))
                continue
            item = FieldParser(raw)
            type_id = item.text("ticket_type_id", required=True, max_length=64)
            quantity = item.integer("quantity", required=True, minimum=1, maximum=MAX_QUANTITY)
            try:
                parsed_id = uuid.UUID(type_id) if type_id else None
            except ValueError:
                item.fail("ticket_type_id", _("No such ticket type."))
                parsed_id = None
            for name_, message in item.errors.items():
                fields.fail(f"{prefix}.{name_}", message)
            if parsed_id and quantity:
                items.append(OrderItem(parsed_id, quantity))
    unknown = set(payload) - {"event_id", "email", "name", "postcode", "items"}
    for name_ in sorted(unknown):
        fields.fail(name_, _("Unknown field."))
    fields.finish()
    assert event_id is not None and email is not None
    return event_id, OrderRequest(tuple(items), email, name, postcode)


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
