"""Reading an order from the event page's buy form (the API's body is ``checkout.schemas``).

Shape only: whether the event sells these tickets now is ``orders.place_order``'s to say.
"""

from __future__ import annotations

import uuid
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


def buy_form(event: Event, formdata: Any) -> BuyForm:
    fields: dict[str, Any] = {
        f"qty-{ticket_type.id}": StringField(validators=[whole_number(maximum=MAX_QUANTITY, default=0)])
        for ticket_type in event.ticket_types
    }
    if event.ask_name:
        fields["name"] = StringField(validators=[text(max_length=200), required(_("This event asks for your name."))])
    if event.ask_postcode:
        fields["postcode"] = StringField(validators=[_postcode_rule, required(_("This event asks for your postcode."))])
    form_class = type("EventBuyForm", (BuyForm,), fields)
    return form_class(formdata=formdata)
