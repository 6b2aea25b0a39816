"""Parsing untrusted input, for HTML forms and JSON bodies alike. Imports no domain.

Every rule failure is collected per field and raised once as ``Invalid``, so the buyer
or the API client sees every problem at once, next to the field it concerns.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import gettext as _

from ticketing.errors import Invalid

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
TRUE_WORDS = {"1", "true", "on", "yes"}
FALSE_WORDS = {"0", "false", "off", "no", ""}
MAX_INT = 2**31 - 1


def timezone_or_none(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def is_utf8_encodable(value: str) -> bool:
    """JSON may carry lone surrogates (``"\\ud800"``); they cannot be encrypted, indexed or
    stored, so they are refused here rather than failing deep inside a service."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class FieldParser:
    """Reads typed values from a mapping; collects errors instead of stopping at the first."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.payload = payload
        self.errors: dict[str, str] = {}

    def has(self, name: str) -> bool:
        return name in self.payload

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def text(
        self,
        name: str,
        *,
        required: bool = False,
        max_length: int = 200,
        multiline: bool = False,
        default: str | None = None,
    ) -> str | None:
        raw = self.payload.get(name)
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            if required:
                self.fail(name, _("This field is required."))
            return default
        if not isinstance(raw, str):
            self.fail(name, _("Must be text."))
            return default
        value = raw.strip()
        if len(value) > max_length:
            self.fail(name, _("Must be at most %(n)d characters.", n=max_length))
            return default
        control = CONTROL_CHARACTERS.search(value) or (not multiline and ("\n" in value or "\r" in value))
        if control or not is_utf8_encodable(value):
            self.fail(name, _("Contains characters that are not allowed."))
            return default
        return value

    def email(self, name: str = "email", *, required: bool = True) -> str | None:
        value = self.text(name, required=required, max_length=254)
        if value is not None and not EMAIL_PATTERN.match(value):
            self.fail(name, _("Enter a valid email address, like name@example.org."))
            return None
        return value

    def integer(
        self,
        name: str,
        *,
        required: bool = False,
        minimum: int = 0,
        maximum: int = MAX_INT,
        default: int | None = None,
    ) -> int | None:
        raw = self.payload.get(name)
        if raw is None or raw == "":
            if required:
                self.fail(name, _("This field is required."))
            return default
        if isinstance(raw, bool):
            self.fail(name, _("Must be a whole number."))
            return default
        if isinstance(raw, str) and re.fullmatch(r"\s*-?\d{1,12}\s*", raw):
            value = int(raw)
        elif isinstance(raw, int):
            value = raw
        else:
            self.fail(name, _("Must be a whole number."))
            return default
        if value < minimum or value > maximum:
            self.fail(name, _("Must be between %(low)d and %(high)d.", low=minimum, high=maximum))
            return default
        return value

    def boolean(self, name: str, *, default: bool | None = None) -> bool | None:
        raw = self.payload.get(name)
        if raw is None:
            return default
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return raw.strip().lower() in TRUE_WORDS
        self.fail(name, _("Must be true or false."))
        return default

    def choice(self, name: str, choices: Sequence[str], *, default: str | None = None) -> str | None:
        value = self.text(name, max_length=64)
        if value is None:
            return default
        if value not in choices:
            self.fail(name, _("Must be one of: %(choices)s.", choices=", ".join(choices)))
            return default
        return value

    def instant(self, name: str, *, zone: ZoneInfo, required: bool = False) -> dt.datetime | None:
        """An ISO 8601 time; without an offset it is read in the event's own time zone."""
        value = self.text(name, required=required, max_length=40)
        if value is None:
            return None
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            self.fail(name, _("Must be a date and time like 2026-12-31T20:30:00+01:00."))
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone)
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:  # year 1 or 9999 shifted past the calendar's edge
            self.fail(name, _("Must be a date and time like 2026-12-31T20:30:00+01:00."))
            return None

    def finish(self) -> None:
        if self.errors:
            raise Invalid(_("Some fields need attention."), errors=self.errors)
