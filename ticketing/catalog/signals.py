"""Hooks the catalogue offers to the domains after it, which it may not import.

``availability_read`` is sent before availability is shown, so that checkout can give
expired holds back to the stock first (the lazy half of hold expiry). Receivers return
how many holds they released; the sender reloads the event when any did.
"""

from __future__ import annotations

import datetime as dt
import uuid

from blinker import Namespace
from flask import current_app

signals = Namespace()
availability_read = signals.signal("availability-read")


def refresh_availability(event_id: uuid.UUID | None, now: dt.datetime) -> bool:
    """True when a receiver changed the stock and the caller should read it again.

    ``event_id=None`` refreshes every event (the list of upcoming events)."""
    results = availability_read.send(current_app._get_current_object(), event_id=event_id, now=now)
    return any(released for _receiver, released in results)
