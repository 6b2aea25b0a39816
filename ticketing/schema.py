"""API bodies, declared once: a marshmallow schema validates what comes in (``load``),
shapes what goes out (``respond``), and describes both in the OpenAPI document
(``ticketing.openapi`` reads the same schemas). Imports no domain.

The field types are also the rules of the pages' forms (``ticketing.webforms``), so that an API
client and a buyer get the same answers: text is trimmed and refused with control
characters, a blank or null value counts as missing (and reads as the field's default), a
whole number may come as a string of digits, and every message is the translated one the
forms show. Each type also says what it accepts in JSON Schema (``json_schema``), so the
document states what the code does.

Rules that need the database or several fields at once stay in the services, which take
the values these schemas return.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import marshmallow as ma
from flask import Response, jsonify
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from marshmallow.exceptions import SCHEMA

from ticketing.errors import BadRequest, Invalid
from ticketing.forms import (
    CONTROL_CHARACTERS,
    EMAIL_PATTERN,
    FALSE_WORDS,
    MAX_INT,
    TRUE_WORDS,
    is_utf8_encodable,
    timezone_or_none,
)
from ticketing.web import api_time, json_body

REQUIRED = lazy_gettext("This field is required.")
# The whitespace ``str.strip`` removes, spelled for JSON Schema (ECMA-262 and Python agree on it).
SPACE = r"[ \t\n\r\f\v]"
DIGITS = re.compile(rf"{SPACE}*-?[0-9]{{1,12}}{SPACE}*", re.ASCII)
# What no text field takes once trimmed: what ``CONTROL_CHARACTERS`` refuses, and line
# breaks where the field is one line.
CONTROL = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f"
CONTROL_ONE_LINE = r"\u0000-\u0008\u000a-\u001f\u007f"


def trimmed(core: str) -> str:
    """A pattern for text that ``str.strip`` trims to ``core``."""
    return rf"^\s*(?:{core})\s*$"


def _case_insensitive(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


class Field(ma.fields.Field):
    """A body field that says what it accepts in JSON Schema.

    ``blank`` is what a null (or, for text, blank) value reads as when the field is not
    required: a null ``description`` clears it, a null ``mode`` sets the default.
    """

    default_error_messages: ClassVar[dict[str, Any]] = {"required": REQUIRED, "null": REQUIRED}

    def __init__(self, *, blank: Any = None, **kwargs: Any) -> None:
        self.blank = blank
        super().__init__(**kwargs)

    def is_blank(self, value: Any) -> bool:
        return value is None

    def deserialize(
        self, value: Any, attr: str | None = None, data: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        if value is not ma.missing and self.is_blank(value):
            if self.required:
                raise self.make_error("required")
            return self.blank
        return super().deserialize(value, attr, data, **kwargs)

    def value_schema(self) -> dict[str, Any]:
        """What a present, non-null value may be."""
        return {}

    def json_schema(self) -> dict[str, Any]:
        value = self.value_schema()
        if self.required:
            return value
        return {"anyOf": [*value.get("anyOf", [value]), {"type": "null"}]}


class Text(Field):
    """Trimmed text of at most ``max_length`` characters, one line unless ``multiline``."""

    def __init__(self, *, max_length: int = 200, multiline: bool = False, **kwargs: Any) -> None:
        self.max_length = max_length
        self.multiline = multiline
        super().__init__(**kwargs)

    def is_blank(self, value: Any) -> bool:
        # Blank past the maximum length is refused as too long, as the document says.
        return value is None or (isinstance(value, str) and not value.strip() and len(value) <= self.max_length)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            raise ma.ValidationError(_("Must be text."))
        # Counted before trimming, as the document's maxLength counts.
        if len(value) > self.max_length:
            raise ma.ValidationError(_("Must be at most %(n)d characters.", n=self.max_length))
        text = value.strip()
        control = CONTROL_CHARACTERS.search(text) or (not self.multiline and ("\n" in text or "\r" in text))
        if control or not is_utf8_encodable(text):
            raise ma.ValidationError(_("Contains characters that are not allowed."))
        return self.check(text)

    def check(self, text: str) -> Any:
        """A subclass's own rule on the trimmed text; returns the value to keep."""
        return text

    def value_schema(self) -> dict[str, Any]:
        refused = CONTROL if self.multiline else CONTROL_ONE_LINE
        # Trimmed, it starts and ends with a character that is neither space nor refused.
        core = rf"[^\s{refused}](?:[^{refused}]*[^\s{refused}])?"
        return {"type": "string", "maxLength": self.max_length, "pattern": trimmed(core)}

    def json_schema(self) -> dict[str, Any]:
        if self.required:
            return self.value_schema()
        blank = {"type": "string", "maxLength": self.max_length, "pattern": r"^\s*$"}
        return {"anyOf": [self.value_schema(), blank, {"type": "null"}]}


class Email(Text):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=254, **kwargs)

    def check(self, text: str) -> str:
        if not EMAIL_PATTERN.match(text):
            raise ma.ValidationError(_("Enter a valid email address, like name@example.org."))
        return text

    def value_schema(self) -> dict[str, Any]:
        core = EMAIL_PATTERN.pattern.removeprefix("^").removesuffix("$")
        return {"type": "string", "format": "email", "maxLength": 254, "pattern": trimmed(core)}


class Choice(Text):
    """One of a few words (trimmed); blank reads as the default."""

    def __init__(self, choices: Sequence[str], **kwargs: Any) -> None:
        self.choices = tuple(choices)
        super().__init__(max_length=64, **kwargs)

    def check(self, text: str) -> str:
        if text not in self.choices:
            raise ma.ValidationError(_("Must be one of: %(choices)s.", choices=", ".join(self.choices)))
        return text

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.choices)}


class Pattern(Text):
    """Text that must match ``pattern`` whole."""

    def __init__(self, pattern: re.Pattern[str], message: Any, **kwargs: Any) -> None:
        self.pattern = pattern
        self.message = message
        super().__init__(**kwargs)

    def check(self, text: str) -> str:
        if not self.pattern.fullmatch(text):
            raise ma.ValidationError(str(self.message))
        return text

    def value_schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            "maxLength": self.max_length,
            "pattern": trimmed(self.pattern.pattern),
        }


class TimeZone(Text):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=64, **kwargs)

    def check(self, text: str) -> str:
        if timezone_or_none(text) is None:
            raise ma.ValidationError(_("Unknown time zone; use a name like Europe/Paris."))
        return text

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": 64, "examples": ["Europe/Paris"]}


class Instant(Text):
    """An ISO 8601 time. With an offset it is read in UTC at once; without one it stays
    naive for the service to read in the event's time zone, or is read in ``zone``."""

    def __init__(self, *, zone: dt.tzinfo | None = None, **kwargs: Any) -> None:
        self.zone = zone
        super().__init__(max_length=40, **kwargs)

    def check(self, text: str) -> dt.datetime:
        try:
            parsed = dt.datetime.fromisoformat(text)
            if parsed.tzinfo is None and self.zone is not None:
                parsed = parsed.replace(tzinfo=self.zone)
            return parsed.astimezone(dt.UTC) if parsed.tzinfo is not None else parsed
        except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 shifted past the calendar's edge
            raise ma.ValidationError(_("Must be a date and time like 2026-12-31T20:30:00+01:00.")) from None

    def value_schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601; without an offset, read in the event's time zone",
        }


class Whole(Field):
    """A whole number in a range; a string of digits counts as the number (HTML forms send
    text, and this API has always read JSON the same way)."""

    def __init__(self, *, minimum: int = 0, maximum: int = MAX_INT, **kwargs: Any) -> None:
        self.minimum = minimum
        self.maximum = maximum
        super().__init__(**kwargs)

    def is_blank(self, value: Any) -> bool:
        return value is None or value == ""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> int:
        if isinstance(value, str) and DIGITS.fullmatch(value):
            number = int(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            raise ma.ValidationError(_("Must be a whole number."))
        if not self.minimum <= number <= self.maximum:
            raise ma.ValidationError(_("Must be between %(low)d and %(high)d.", low=self.minimum, high=self.maximum))
        return number

    def value_schema(self) -> dict[str, Any]:
        number = {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}
        digits = rf"^(?:{DIGITS.pattern}){'' if self.required else '?'}$"
        return {"anyOf": [number, {"type": "string", "pattern": digits}]}


class Flag(Field):
    """true or false; as text, also yes/no, on/off, 1/0 (what a form checkbox sends)."""

    WORDS = tuple(sorted(TRUE_WORDS | FALSE_WORDS))

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        raise ma.ValidationError(_("Must be true or false."))

    def value_schema(self) -> dict[str, Any]:
        words = "|".join(_case_insensitive(word) for word in self.WORDS if word)
        return {"anyOf": [{"type": "boolean"}, {"type": "string", "pattern": f"^{SPACE}*(?:{words})?{SPACE}*$"}]}


class Uuid(Text):
    """A UUID given as text; ``message`` says what an unknown one means here."""

    def __init__(self, message: Any, **kwargs: Any) -> None:
        self.message = message
        super().__init__(max_length=64, **kwargs)

    def check(self, text: str) -> uuid.UUID:
        try:
            return uuid.UUID(text)
        except ValueError:
            raise ma.ValidationError(str(self.message)) from None

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "uuid"}


class Items(ma.fields.List):
    """A list of ``minimum`` to ``maximum`` items, with one message for any other shape."""

    def __init__(
        self, inner: ma.fields.Field, *, minimum: int, maximum: int, message: Any, too_many: Any = None, **kwargs: Any
    ) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.message = message
        self.too_many = too_many or message
        kwargs.setdefault("error_messages", {"required": message, "null": message, "invalid": message})
        super().__init__(inner, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, list) or len(value) < self.minimum:
            raise ma.ValidationError(str(self.message))
        if len(value) > self.maximum:
            raise ma.ValidationError(str(self.too_many))
        return super()._deserialize(value, attr, data, **kwargs)

    def json_schema(self) -> dict[str, Any]:
        return {"minItems": self.minimum, "maxItems": self.maximum}


class Body(ma.Schema):
    """A request body: a JSON object whose unknown keys are refused, each by name.

    ``detail`` is the problem's ``detail`` when fields are refused; ``partial_name`` names
    the schema in the document when it is loaded ``partial`` (a PATCH).
    """

    detail: ClassVar[Any] = lazy_gettext("Some fields need attention.")
    partial_name: ClassVar[str | None] = None

    class Meta:
        unknown = ma.RAISE

    error_messages: ClassVar[dict[str, Any]] = {
        "unknown": lazy_gettext("Unknown field."),
        "type": lazy_gettext("The body must be a JSON object."),
    }


class Tolerant(Body):
    """A body whose unknown keys are ignored (door devices send what their version knows)."""

    class Meta:
        unknown = ma.EXCLUDE


class Out(ma.Schema):
    """A response body: ``respond`` writes the declared fields, in their order, nothing else."""


class Time(ma.fields.Field):
    """An instant as the API writes it: ISO 8601 in UTC with a ``Z``."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return api_time(value)

    def json_schema(self) -> dict[str, Any]:
        time = {"type": "string", "format": "date-time"}
        return {"type": ["string", "null"], "format": "date-time"} if self.allow_none else time


class Problem(Out):
    """RFC 9457 problem details, as ``web.problem`` writes them."""

    type = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True)
    code = ma.fields.String(required=True, metadata={"description": "stable machine-readable code"})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"description": "on 422: each refused field (`items[0].quantity`) and its message"},
    )
    available = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        metadata={"description": "on sold_out: tickets left per ticket type"},
    )

    class Meta:
        unknown = ma.INCLUDE


def field_errors(messages: Any, path: str = "") -> dict[str, str]:
    """marshmallow's nested messages as ``{"items[0].quantity": message}``, one per field."""
    if isinstance(messages, list):
        return field_errors(messages[0], path) if messages else {}
    if not isinstance(messages, Mapping):
        return {path: str(messages)}
    found: dict[str, str] = {}
    for key, value in messages.items():
        if key == SCHEMA:
            name = path
        elif isinstance(key, int):
            name = f"{path}[{key}]"
        else:
            name = f"{path}.{key}" if path else str(key)
        for field, message in field_errors(value, name).items():
            found.setdefault(field, message)
    return found


def load(schema: ma.Schema, *, before_refusing: Callable[[], object] | None = None) -> Any:
    """The request's JSON body, read by ``schema``: a 400 when it is not JSON, a 422 naming
    every refused field. ``before_refusing`` runs before either, so that a request that
    also lacks credentials is told that first (it raises the 401)."""
    try:
        return read(schema, json_body())
    except (BadRequest, Invalid):
        if before_refusing is not None:
            before_refusing()
        raise


def read(schema: ma.Schema, values: Any) -> Any:
    """``values`` (a parsed body, a form's fields, a command's arguments) read by
    ``schema``: ``Invalid`` (422) naming every refused field."""
    try:
        return schema.load(values)
    except ma.ValidationError as error:
        errors = field_errors(error.messages)
        detail = errors.get("") or str(getattr(schema, "detail", Body.detail))
        raise Invalid(detail, errors=errors) from None


def respond(schema: ma.Schema, value: Any, status: int = 200) -> Response:
    """``value`` (an object or a mapping) written through ``schema``: its fields and no other."""
    response = jsonify(schema.dump(value))
    response.status_code = status
    return response
