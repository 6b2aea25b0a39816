"""What untrusted text may hold: the rules the API's schemas (``ticketing.schema``) and the
pages' forms (``ticketing.webforms``, through the same schema fields) both apply. Imports
no domain."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
