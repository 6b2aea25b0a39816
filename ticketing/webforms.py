"""WTForms for the pages people fill in. Imports no domain.

The rules are the API's: each field is read by one of ``ticketing.schema``'s field types,
with the same cleaning and the same message as a body field of that type, and keeps the
cleaned, typed value in ``field.data``.
Every form collects all its problems at once, one message per field, which the templates
show next to the field (``problems()``).

CSRF is checked for every POST by ``CSRFProtect`` before any view runs, so the forms do
not check it a second time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import Field, StringField
from wtforms.validators import StopValidation

from ticketing.errors import Invalid
from ticketing.schema import Email, field_errors


class PageForm(FlaskForm):
    class Meta:
        csrf = False

    def problems(self) -> dict[str, str]:
        """The first message of each field in error, and the form's own (key "")."""
        found = {name: messages[0] for name, messages in self.errors.items() if messages and name is not None}
        if self.form_errors:
            found[""] = self.form_errors[0]
        return found

    def require_valid(self) -> None:
        """Raise ``Invalid`` with every problem, as the API's parsing does."""
        if not self.validate():
            raise Invalid(_("Some fields need attention."), errors=self.problems())


def rule(kind: ma.fields.Field) -> Callable[[Any, Field], None]:
    """A validator that reads the field as the API reads a body field of this ``kind``
    (``ticketing.schema``): the same cleaning, the same messages, the same typed value."""

    def validate(_form: Any, field: Field) -> None:
        raw = field.raw_data[0] if field.raw_data else ma.missing
        try:
            field.data = kind.deserialize(raw)
        except ma.ValidationError as error:
            raise StopValidation(field_errors(error.messages).get("", "")) from None

    return validate


def required(message: str) -> Callable[[Any, Field], None]:
    """After a rule: a field left empty gets the message that says why it is needed."""

    def validate(_form: Any, field: Field) -> None:
        if field.data in (None, ""):
            raise StopValidation(message)

    return validate


class EmailForm(PageForm):
    """One address: "find my orders" and the "my data" request."""

    email = StringField(validators=[rule(Email(required=True))])


class ConfirmForm(PageForm):
    """An irreversible action asks for an explicit tick first."""

    confirm = StringField()

    def confirmed(self, message: str) -> None:
        if self.confirm.data != "yes":
            raise Invalid(message, errors={"confirm": message})
