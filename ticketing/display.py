"""Template filters: money and times as a reader in this locale expects them."""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

from babel.dates import get_timezone, get_timezone_location
from babel.numbers import format_currency, get_currency_precision
from flask import Flask
from flask_babel import format_datetime, get_locale
from flask_babel import gettext as _

from ticketing.forms import timezone_or_none

PATTERNS = {
    "long": "EEEE d MMMM y, HH:mm",
    "short": "d MMM y, HH:mm",
    "time": "HH:mm",
    "day": "EEE d MMM",
    "date": "EEEE d MMMM y",
}
# Styles that name no hour need no time zone.
DATE_ONLY = ("day", "date")


def money(amount_cents: int, currency: str) -> str:
    """Integer minor units to text: 1250 EUR -> "12,50 €" in French; JPY has no decimals."""
    digits = get_currency_precision(currency)
    return format_currency(amount_cents / (10**digits), currency, locale=str(get_locale() or "en"))


def currency_digits(currency: str) -> int:
    """Decimal places of a currency's minor unit (2 for EUR, 0 for JPY), for pages' scripts."""
    return int(get_currency_precision(currency))


def zone_city(zone_name: str) -> str:
    """The zone's city as readers call it in their language: "Paris", "Bruxelles", "New York"."""
    try:
        return get_timezone_location(get_timezone(zone_name), locale=str(get_locale() or "en"), return_city=True)
    except LookupError:
        return zone_name


def local_time(value: dt.datetime | None, zone_name: str = "UTC", style: str = "long") -> str:
    """An instant in the event's own time zone, the one on the poster, named the way people
    say it ("20:00, Paris time"), not by its database name ("Europe/Paris")."""
    if value is None:
        return ""
    zone = timezone_or_none(zone_name) or ZoneInfo("UTC")
    text = format_datetime(value.astimezone(zone).replace(tzinfo=None), PATTERNS.get(style, style), rebase=False)
    if style in DATE_ONLY:
        return text
    return _("%(time)s, %(city)s time", time=text, city=zone_city(zone_name))


def minutes_left(until: dt.datetime, now: dt.datetime) -> int:
    """Whole minutes until ``until``, rounded up, never below 0: "held for 10 minutes"."""
    return max(0, math.ceil((until - now).total_seconds() / 60))


def register_filters(app: Flask) -> None:
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.globals["minutes_left"] = minutes_left
    app.jinja_env.globals["currency_digits"] = currency_digits
