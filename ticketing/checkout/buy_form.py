"""The buy form of an event page, read with the API's rules (``checkout.schemas``).

Shape only: whether the event sells these tickets now is ``orders.place_order``'s to say.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
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


def _quantity_fields(event: Event) -> dict[str, Any]:
    return {
        f"qty-{ticket_type.id}": StringField(validators=[rule(Whole(maximum=MAX_QUANTITY, blank=0, load_default=0))])
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
        fields["name"] = StringField(
            validators=[rule(Text(max_length=200)), required(_("This event asks for your name."))]
        )
    if event.ask_postcode:
        fields["postcode"] = StringField(
            validators=[rule(Postcode()), required(_("This event asks for your postcode."))]
        )
    form_class = type("EventBuyForm", (BuyForm,), fields)
    return form_class(formdata=formdata)
