"""Hooks the catalogue offers to the domains after it, which it may not import.

``stale_holds_asked`` is sent before availability is shown. A hold that expired still
counts in ``TicketType.reserved`` until a write gives it back (checkout's order path, a
payment, ``flask expire-holds``); checkout answers, per ticket type, how many tickets such
holds keep, and the catalogue shows them as available. Showing a page never writes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from blinker import Namespace
from flask import current_app

from ticketing.catalog.models import Event

signals = Namespace()
stale_holds_asked = signals.signal("stale-holds-asked")


def show_live_availability(events: Sequence[Event], now: dt.datetime) -> None:
    """Count only live holds in these events' availability (``TicketType.available``)."""
    ticket_types = [ticket_type for event in events for ticket_type in event.ticket_types]
    if not ticket_types:
        return
    stale: dict[uuid.UUID, int] = {}
    answers = stale_holds_asked.send(current_app._get_current_object(), event_ids=[e.id for e in events], now=now)
    for _receiver, by_type in answers:
        for type_id, quantity in by_type.items():
            stale[type_id] = stale.get(type_id, 0) + quantity
    for ticket_type in ticket_types:
        ticket_type.stale_held = stale.get(ticket_type.id, 0)
