"""Reading an order from the API's JSON or the event page's buy form.

Shape only: whether the event sells these tickets now is ``orders.place_order``'s to say.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from wtforms import StringField
from wtforms.validators import StopValidation

from ticketing.catalog.models import Event
from ticketing.checkout.orders import OrderItem, OrderRequest
from ticketing.errors import Invalid
from ticketing.forms import FieldParser
from ticketing.webforms import PageForm, email, required, text, whole_number

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


class BuyForm(PageForm):
    """The buy form of an event page: the buyer's address, and the name and postcode where
    the event asks for them; ``buy_form`` adds one ``qty-<ticket type id>`` field per type."""

    email = StringField(validators=[email()])

    def order_request(self) -> OrderRequest:
        """Every problem at once, so that the buyer fixes the form in one go."""
        valid = self.validate()
        items = [
            OrderItem(uuid.UUID(name[len("qty-") :]), field.data)
            for name, field in self._fields.items()
            if name.startswith("qty-") and isinstance(field.data, int) and field.data > 0
        ]
        problems = self.problems()
        if not items and not any(name.startswith("qty-") for name in problems):
            problems["tickets"] = _("Choose at least one ticket.")
        if not valid or problems:
            raise Invalid(_("Some fields need attention."), errors=problems)
        name = self._fields["name"].data if "name" in self._fields else None
        postcode = self._fields["postcode"].data if "postcode" in self._fields else None
        return OrderRequest(tuple(items), self.email.data, name, postcode)


def _postcode_rule(_form: Any, field: Any) -> None:
    parser = FieldParser({"postcode": field.data} if field.data is not None else {})
    value = _parse_postcode(parser)
    if parser.errors:
        raise StopValidation(parser.errors["postcode"])
    field.data = value


def _quantity_fields(event: Event) -> dict[str, Any]:
    return {
        f"qty-{ticket_type.id}": StringField(validators=[whole_number(maximum=MAX_QUANTITY, default=0)])
        for ticket_type in event.ticket_types
    }


@dataclass(frozen=True)
class Quote:
    """What the chosen tickets cost, before anything is held: the running total."""

    currency: str
    tickets: int
    subtotal_cents: int
    fee_cents: int

    @property
    def total_cents(self) -> int:
        return self.subtotal_cents + self.fee_cents


class QuantitiesForm(PageForm):
    def quote(self, event: Event) -> tuple[Quote, dict[str, str]]:
        """The total of the quantities that read, and a message per quantity that does not."""
        self.validate()
        subtotal = fee = count = 0
        for ticket_type in event.ticket_types:
            quantity = self._fields[f"qty-{ticket_type.id}"].data
            if isinstance(quantity, int) and quantity > 0:
                count += quantity
                subtotal += quantity * ticket_type.price_cents
                fee += quantity * ticket_type.fee_cents
        return Quote(event.currency, count, subtotal, fee), self.problems()


def quantities_form(event: Event, formdata: Any) -> QuantitiesForm:
    """The buy form's quantities alone: the total needs no address."""
    form_class = type("EventQuantitiesForm", (QuantitiesForm,), _quantity_fields(event))
    return form_class(formdata=formdata)


def buy_form(event: Event, formdata: Any) -> BuyForm:
    fields = _quantity_fields(event)
    if event.ask_name:
        fields["name"] = StringField(validators=[text(max_length=200), required(_("This event asks for your name."))])
    if event.ask_postcode:
        fields["postcode"] = StringField(validators=[_postcode_rule, required(_("This event asks for your postcode."))])
    form_class = type("EventBuyForm", (BuyForm,), fields)
    return form_class(formdata=formdata)
