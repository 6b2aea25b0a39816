"""Links shown beside each ticket, contributed by the domains that come after checkout.

Checkout may not import ``stream`` (nor ``tickets``), yet its order page, order mail and
orders API must show a "Watch" link per stream ticket, and when it opens. Those domains
register a linker here at app creation; checkout asks the registry and renders whatever
links come back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask import Flask, current_app

from ticketing.checkout.models import Ticket

TicketLinker = Callable[[Ticket], "str | None"]
LinkOpening = Callable[[Ticket], "dt.datetime | None"]
REGISTRY = "guichet.ticket_links"
OPENINGS = "guichet.ticket_link_openings"


def register_ticket_link(app: Flask, name: str, linker: TicketLinker, opens_at: LinkOpening | None = None) -> None:
    """``linker(ticket)`` returns an absolute URL, or None when the ticket has no such link;
    ``opens_at(ticket)``, when given, the instant from which the link works."""
    app.extensions.setdefault(REGISTRY, {})[name] = linker
    if opens_at is not None:
        app.extensions.setdefault(OPENINGS, {})[name] = opens_at


def ticket_links(ticket: Ticket) -> dict[str, str]:
    """``{"watch": url, ...}`` for one ticket, in registration order."""
    linkers: dict[str, TicketLinker] = current_app.extensions.get(REGISTRY, {})
    return {name: url for name, linker in linkers.items() if (url := linker(ticket))}


def ticket_link_opens_at(ticket: Ticket, name: str) -> dt.datetime | None:
    """When the ticket's ``name`` link starts to work; None when it has no opening time."""
    opening: LinkOpening | None = current_app.extensions.get(OPENINGS, {}).get(name)
    return opening(ticket) if opening else None
