"""The buy form of an event page, read with the API's rules (``checkout.schemas``).

Shape only: whether the event sells these tickets now is ``orders.place_order``'s to say.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask_babel import gettext as _
from wtforms import StringField

from ticketing.catalog.models import Event
from ticketing.checkout.orders import MAX_QUANTITY, OrderItem, OrderRequest
from ticketing.checkout.schemas import Postcode
from ticketing.errors import Invalid
from ticketing.schema import Email, Text, Whole
from ticketing.webforms import PageForm, required, rule


class BuyForm(PageForm):
    """The buyer's address, and the name and postcode where the event asks for them;
    ``buy_form`` adds one ``qty-<ticket type id>`` field per type."""

    email = StringField(validators=[rule(Email(required=True))])

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


def buy_form(event: Event, formdata: Any) -> BuyForm:
    fields: dict[str, Any] = {
        f"qty-{ticket_type.id}": StringField(validators=[rule(Whole(maximum=MAX_QUANTITY, blank=0, load_default=0))])
        for ticket_type in event.ticket_types
    }
    if event.ask_name:
        fields["name"] = StringField(
            validators=[rule(Text(max_length=200)), required(_("This event asks for your name."))]
        )
    if event.ask_postcode:
        fields["postcode"] = StringField(
            validators=[rule(Postcode()), required(_("This event asks for your postcode."))]
        )
    form_class = type("EventBuyForm", (BuyForm,), fields)
    return form_class(formdata=formdata)
