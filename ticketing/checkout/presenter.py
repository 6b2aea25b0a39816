"""How checkout shows a ticket's QR code without importing the tickets domain.

``tickets`` comes after ``checkout`` in the dependency order, yet the order page, the
order mail and ``GET /api/v1/orders/<code>`` show each ticket's signed QR code. Checkout
declares this protocol; ``create_app`` puts the tickets domain's implementation in
``app.extensions["guichet.ticket_presenter"]`` (as it does for the payment provider).
Without one, tickets show without a QR code.
"""

from __future__ import annotations

from typing import Any, Protocol

from flask import current_app
from markupsafe import Markup

from ticketing.checkout.models import Ticket


class TicketPresenter(Protocol):
    def api_fields(self, ticket: Ticket) -> dict[str, Any]:
        """Extra JSON fields for a paid ticket (its QR payload)."""

    def qr_svg(self, ticket: Ticket) -> Markup | None:
        """An inline ``<svg>`` of the ticket's QR code."""

    def qr_png(self, ticket: Ticket) -> bytes | None:
        """A PNG of the ticket's QR code, for mail."""


class NoPresenter:
    def api_fields(self, ticket: Ticket) -> dict[str, Any]:
        return {}

    def qr_svg(self, ticket: Ticket) -> Markup | None:
        return None

    def qr_png(self, ticket: Ticket) -> bytes | None:
        return None


def ticket_presenter() -> TicketPresenter:
    return current_app.extensions.get("guichet.ticket_presenter") or NoPresenter()
