"""Mails about orders: the tickets mail (queued, rendered here) and "find my orders" (sent directly).

The address is decrypted from the vault only for the moment of sending. A failed send is
logged and never undoes the order: the tickets mail stays in the outbox and is retried
(see ``ticketing.mail.queue``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from ticketing.catalog.calendar import calendar_file
from ticketing.checkout.models import Order
from ticketing.checkout.orders import WITH_LINES_AND_TICKETS
from ticketing.checkout.presenter import ticket_presenter
from ticketing.checkout.ticket_links import ticket_link_opens_at, ticket_links
from ticketing.crypto import derive_access_token
from ticketing.extensions import keyring
from ticketing.mail import MailFailed, OutgoingMail, send_mail
from ticketing.models import utcnow
from ticketing.privacy.vault import has_earlier_record, read_person
from ticketing.web import external_url

log = logging.getLogger(__name__)


def _deliver(mail: OutgoingMail, what: str) -> bool:
    try:
        send_mail(mail, current_app.config, current_app.instance_path)
    except MailFailed as error:
        log.warning("mail for %s not sent: %s", what, error)
        return False
    return True


def render_order_paid(session: Session, order_id: uuid.UUID) -> OutgoingMail | None:
    """The buyer's tickets (QR codes and the order link), in the language they bought in.

    Nothing to send once the buyer was erased, or the order is gone or no longer paid (a
    retry that comes after a refund must not mail voided tickets). The link is derived
    from the order id, so the outbox row needs nothing but the id.
    """
    order = session.execute(
        select(Order)
        .where(Order.id == order_id)
        .options(*WITH_LINES_AND_TICKETS)
        .execution_options(populate_existing=True)
    ).scalar()
    if order is None or order.status != "paid" or order.person_id is None:
        return None
    person = read_person(session, keyring(), order.person_id)
    if person is None:
        return None
    token = derive_access_token(keyring().link_key, order.id)
    link = external_url("checkout.order_page", code=order.code, token=token)
    with force_locale(order.locale):
        if has_earlier_record(session, order.person_id):
            subject = _("Your tickets for %(title)s (order %(code)s)", title=order.event.title, code=order.code)
        else:
            # The first mail to an address names no text an organiser chose: an order placed
            # with a stranger's address cannot put an event's title in their inbox's list.
            subject = _("Your tickets (order %(code)s)", code=order.code)
        presenter = ticket_presenter()
        images = []
        qr_ids = {}
        door_tickets = []
        for ticket in order.tickets:
            png = presenter.qr_png(ticket)
            if png:
                qr_ids[ticket.id] = f"ticket-{ticket.id.hex}@guichet"
                images.append((qr_ids[ticket.id], png))
                door_tickets.append(ticket)
        # A livestream-only order's mail says nothing of a door: no codes, venue or doors time.
        watch_links = [
            (ticket, url, ticket_link_opens_at(ticket, "watch"))
            for ticket in order.tickets
            if (url := ticket_links(ticket).get("watch"))
        ]
        event = order.event
        context = {
            "order": order,
            "event": event,
            "link": link,
            "name": person.name,
            "qr_ids": qr_ids,
            "door_tickets": door_tickets,
            "watch_links": watch_links,
            "venue": ", ".join(part for part in (event.venue_name, " ".join(event.venue_address.split())) if part),
        }
        return OutgoingMail(
            to=person.email,
            subject=subject,
            text=render_template("mail/order_paid.txt", **context),
            html=render_template("mail/order_paid.html", **context),
            language=order.locale,
            inline_images=tuple(images),
            attachments=(("event.ics", "text/calendar", calendar_file(event, order.locale, utcnow())),),
        )


def send_order_links(email: str, orders: Sequence[tuple[Order, str]], locale: str) -> bool:
    """Answer a "find my orders" request: every order of this address, one link each."""
    links = [(order, external_url("checkout.order_page", code=order.code, token=token)) for order, token in orders]
    with force_locale(locale):
        mail = OutgoingMail(
            to=email,
            subject=_("Your Guichet orders"),
            text=render_template("mail/order_links.txt", links=links),
            html=render_template("mail/order_links.html", links=links, language=locale),
            language=locale,
        )
    return _deliver(mail, f"{len(links)} order links")
