"""What placing orders costs a client, so that nobody can hold a sale's stock or flood
strangers' inboxes for free.

Three limits, on the buy form and ``POST /api/v1/orders`` alike, counted in the limiter's
storage (Redis in production, so every worker counts together):

- orders per client: every attempt counts;
- tickets held per client: an unpaid order charges its ticket count to a budget that
  lasts one hold period; a client that has used it up is refused until its holds run out
  or are paid, however it splits its orders. (The order that crosses the budget still
  goes through, so a client holds at most the budget plus one order.)
- orders per address: an address receives the mails of a few orders an hour at most,
  whoever places them.

Clients are keyed by a keyed hash of their address (``extensions.client_fingerprint``),
addresses by a keyed hash of the email: the limiter's storage holds neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app
from flask_babel import ngettext
from limits import RateLimitItem, parse

from ticketing.errors import N_, GuichetError
from ticketing.extensions import client_fingerprint, email_fingerprint, limiter, not_an_email

ORDERS_PER_CLIENT = "20 per minute; 120 per hour"
HELD_TICKETS_PER_CLIENT = 20
ORDERS_PER_ADDRESS = "10 per hour; 30 per day"
HELD_SCOPE = "held-tickets"


class TooManyHeld(GuichetError):
    status = 429
    code = "too_many_held"
    title = N_("Too many tickets held")


def _placed_an_order(response: Any) -> bool:
    return response.status_code in (201, 303)


# Shared by the buy form and the API: one budget per client (or address), whichever is used.
_ORDERS = limiter.shared_limit(ORDERS_PER_CLIENT, scope="orders")
_ADDRESS = limiter.shared_limit(
    ORDERS_PER_ADDRESS,
    scope="order-address",
    key_func=email_fingerprint,
    exempt_when=not_an_email,
    deduct_when=_placed_an_order,
)


def order_limits(view: Callable[..., Any]) -> Callable[..., Any]:
    """The per-client and per-address limits of placing an order."""
    return _ORDERS(_ADDRESS(view))


def _held_budget() -> RateLimitItem:
    return parse(f"{HELD_TICKETS_PER_CLIENT} per {current_app.config['HOLD_MINUTES']} minutes")


def check_hold_budget() -> None:
    """Refuse a client that already holds its budget of unpaid tickets."""
    if not limiter.enabled:
        return
    if not limiter.limiter.test(_held_budget(), HELD_SCOPE, client_fingerprint()):
        minutes = current_app.config["HOLD_MINUTES"]
        raise TooManyHeld(
            ngettext(
                "You already hold the most tickets one buyer may hold while paying. Pay for them, or wait "
                "until their hold ends (at most %(num)d minute), before holding more.",
                "You already hold the most tickets one buyer may hold while paying. Pay for them, or wait "
                "until their hold ends (at most %(num)d minutes), before holding more.",
                minutes,
            )
        )


def charge_hold(tickets: int) -> None:
    """An unpaid order now holds these tickets for this client."""
    if limiter.enabled:
        limiter.limiter.hit(_held_budget(), HELD_SCOPE, client_fingerprint(), cost=tickets)
