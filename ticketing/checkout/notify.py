"""Mails about orders, sent after the transaction commits.

The address is decrypted from the vault only for the moment of sending. A failed send is
logged by order code and reported to the caller; it never undoes the order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _

from ticketing.checkout.models import Order
from ticketing.checkout.presenter import ticket_presenter
from ticketing.extensions import db, keyring
from ticketing.mail import MailFailed, OutgoingMail, send_mail
from ticketing.privacy.vault import read_person
from ticketing.web import external_url

log = logging.getLogger(__name__)


def _deliver(mail: OutgoingMail, what: str) -> bool:
    try:
        send_mail(mail, current_app.config, current_app.instance_path)
    except MailFailed as error:
        log.warning("mail for %s not sent: %s", what, error)
        return False
    return True


def send_order_paid_mail(order: Order, access_token: str) -> bool:
    """The buyer's tickets: a link to the order page, in the language they bought in."""
    if order.person_id is None:
        return False
    person = read_person(db.session, keyring(), order.person_id)
    if person is None:
        return False
    link = external_url("checkout.order_page", code=order.code, token=access_token)
    with force_locale(order.locale):
        subject = _("Your tickets for %(title)s (order %(code)s)", title=order.event.title, code=order.code)
        presenter = ticket_presenter()
        images = []
        qr_ids = {}
        for ticket in order.tickets:
            png = presenter.qr_png(ticket)
            if png:
                qr_ids[ticket.id] = f"ticket-{ticket.id.hex}@guichet"
                images.append((qr_ids[ticket.id], png))
        context = {"order": order, "event": order.event, "link": link, "name": person.name, "qr_ids": qr_ids}
        mail = OutgoingMail(
            to=person.email,
            subject=subject,
            text=render_template("mail/order_paid.txt", **context),
            html=render_template("mail/order_paid.html", **context),
            language=order.locale,
            inline_images=tuple(images),
        )
    sent = _deliver(mail, f"order {order.code}")
    if sent:
        log.info("order %s: tickets mailed", order.code)
    return sent


def send_order_links(email: str, orders: Sequence[tuple[Order, str]], locale: str) -> bool:
    """Answer a "find my orders" request: every order of this address, one link each."""
    links = [(order, external_url("checkout.order_page", code=order.code, token=token)) for order, token in orders]
    with force_locale(locale):
        mail = OutgoingMail(
            to=email,
            subject=_("Your Guichet orders"),
            text=render_template("mail/order_links.txt", links=links),
            html=render_template("mail/order_links.html", links=links),
            language=locale,
        )
    return _deliver(mail, f"{len(links)} order links")
