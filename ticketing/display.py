"""Template filters: money and times as a reader in this locale expects them."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from babel.numbers import format_currency, get_currency_precision
from flask import Flask
from flask_babel import format_datetime, get_locale

from ticketing.forms import timezone_or_none


def money(amount_cents: int, currency: str) -> str:
    """Integer minor units to text: 1250 EUR -> "12,50 €" in French; JPY has no decimals."""
    digits = get_currency_precision(currency)
    return format_currency(amount_cents / (10**digits), currency, locale=str(get_locale() or "en"))


def local_time(value: dt.datetime | None, zone_name: str = "UTC", style: str = "long") -> str:
    """An instant shown in the event's own time zone, the one on the poster."""
    if value is None:
        return ""
    zone = timezone_or_none(zone_name) or ZoneInfo("UTC")
    patterns = {
        "long": "EEEE d MMMM y, HH:mm",
        "short": "d MMM y, HH:mm",
        "time": "HH:mm",
        "day": "EEE d MMM",
    }
    return format_datetime(value.astimezone(zone).replace(tzinfo=None), patterns.get(style, style), rebase=False)


def register_filters(app: Flask) -> None:
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["local_time"] = local_time
