"""Links shown beside each ticket, contributed by the domains that come after checkout.

Checkout may not import ``stream`` (nor ``tickets``), yet its order page, order mail and
orders API must show a "Watch" link per stream ticket. Those domains register a linker
here at app creation; checkout asks the registry and renders whatever links come back.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app

from ticketing.checkout.models import Ticket

TicketLinker = Callable[[Ticket], "str | None"]
REGISTRY = "guichet.ticket_links"


def register_ticket_link(app: Flask, name: str, linker: TicketLinker) -> None:
    """``linker(ticket)`` returns an absolute URL, or None when the ticket has no such link."""
    app.extensions.setdefault(REGISTRY, {})[name] = linker


def ticket_links(ticket: Ticket) -> dict[str, str]:
    """``{"watch": url, ...}`` for one ticket, in registration order."""
    linkers: dict[str, TicketLinker] = current_app.extensions.get(REGISTRY, {})
    return {name: url for name, linker in linkers.items() if (url := linker(ticket))}
