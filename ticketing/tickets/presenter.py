"""The tickets domain's answer to ``checkout.presenter.TicketPresenter``."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from markupsafe import Markup

from ticketing.checkout.models import Ticket
from ticketing.extensions import keyring
from ticketing.tickets.qr import qr_png, qr_svg
from ticketing.tickets.services import ticket_code


class QrTicketPresenter:
    """Only valid tickets of paid orders get a code: a voided ticket shows no QR.

    Pages and mails draw codes only for tickets that admit at the door: nothing scans a
    livestream-only ticket, whose way in is its watch link. The API still gives every
    valid ticket's payload, as before.
    """

    def _code(self, ticket: Ticket) -> str | None:
        if ticket.status != "valid" or ticket.order.status != "paid":
            return None
        return ticket_code(keyring(), ticket)

    def _door_code(self, ticket: Ticket) -> str | None:
        return self._code(ticket) if ticket.ticket_type.grants_entry else None

    def api_fields(self, ticket: Ticket) -> dict[str, Any]:
        return {"qr_payload": self._code(ticket)}

    def qr_svg(self, ticket: Ticket) -> Markup | None:
        code = self._door_code(ticket)
        return qr_svg(code, _("QR code of the ticket %(type)s", type=ticket.ticket_type.name)) if code else None

    def qr_png(self, ticket: Ticket) -> bytes | None:
        code = self._door_code(ticket)
        return qr_png(code) if code else None
