"""WTForms for the pages people fill in. Imports no domain.

The rules are the API's (``ticketing.forms``): each validator here applies the same rule to
the field, with the same message, and leaves the cleaned, typed value in ``field.data``.
Every form collects all its problems at once, one message per field, which the templates
show next to the field (``problems()``).

CSRF is checked for every POST by ``CSRFProtect`` before any view runs, so the forms do
not check it a second time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import Field, StringField
from wtforms.validators import StopValidation

from ticketing.errors import Invalid
from ticketing.forms import MAX_INT, FieldParser


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


def _rule(read: Callable[[FieldParser, str], Any]) -> Callable[[Any, Field], None]:
    """A validator that reads the field with one of the API's rules."""

    def validate(_form: Any, field: Field) -> None:
        raw = field.raw_data[0] if field.raw_data else None
        parser = FieldParser({field.name: raw} if raw is not None else {})
        value = read(parser, field.name)
        if parser.errors:
            raise StopValidation(parser.errors[field.name])
        field.data = value

    return validate


def text(*, max_length: int = 200, required: bool = False, multiline: bool = False) -> Callable[[Any, Field], None]:
    return _rule(lambda p, name: p.text(name, required=required, max_length=max_length, multiline=multiline))


def email(*, required: bool = True) -> Callable[[Any, Field], None]:
    return _rule(lambda p, name: p.email(name, required=required))


def whole_number(
    *, minimum: int = 0, maximum: int = MAX_INT, default: int | None = None
) -> Callable[[Any, Field], None]:
    return _rule(lambda p, name: p.integer(name, minimum=minimum, maximum=maximum, default=default))


def required(message: str) -> Callable[[Any, Field], None]:
    """After a rule: a field left empty gets the message that says why it is needed."""

    def validate(_form: Any, field: Field) -> None:
        if field.data in (None, ""):
            raise StopValidation(message)

    return validate


class EmailForm(PageForm):
    """One address: "find my orders" and the "my data" request."""

    email = StringField(validators=[email()])


class ConfirmForm(PageForm):
    """An irreversible action asks for an explicit tick first."""

    confirm = StringField()

    def confirmed(self, message: str) -> None:
        if self.confirm.data != "yes":
            raise Invalid(message, errors={"confirm": message})
