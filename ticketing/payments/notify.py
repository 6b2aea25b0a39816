"""What happens after a payment transaction commits: mails, and refunds sent to the provider.

Used alike by the webhook, the pages, the organiser API and the CLI, so that each path
mails and refunds the same way. The buyer's address is read from the vault only to send.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer

from ticketing.checkout.models import Order
from ticketing.checkout.notify import send_order_paid_mail
from ticketing.crypto import derive_access_token
from ticketing.errors import N_
from ticketing.extensions import db, keyring
from ticketing.mail import MailFailed, OutgoingMail, send_mail
from ticketing.payments.models import Refund
from ticketing.payments.services import EventOutcome, send_refund
from ticketing.privacy.vault import read_person
from ticketing.web import external_url

log = logging.getLogger(__name__)

CHOICE_SALT = "guichet-solidarity-choice"
SUBJECTS = {
    "late_payment_refunded": N_("Your payment for %(title)s is refunded (order %(code)s)"),
    "event_cancelled": N_("%(title)s is cancelled: refund or solidarity ticket (order %(code)s)"),
}


def _choice_signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=CHOICE_SALT)


def choice_token(refund_id: uuid.UUID) -> str:
    """A signed link key naming one refund: it reveals nothing and cannot be guessed."""
    return str(_choice_signer().dumps(str(refund_id)))


def refund_id_from_token(token: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(_choice_signer().loads(token)))
    except (BadSignature, ValueError):
        return None


def order_link(order: Order) -> str:
    token = derive_access_token(keyring().link_key, order.id)
    return external_url("checkout.order_page", code=order.code, token=token)


def _mail_buyer(order: Order, template: str, **context: object) -> bool:
    if order.person_id is None:
        return False
    person = read_person(db.session, keyring(), order.person_id)
    if person is None:
        return False
    with force_locale(order.locale):
        context.update(order=order, event=order.event, order_link=order_link(order))
        mail = OutgoingMail(
            to=person.email,
            subject=_(SUBJECTS[template], code=order.code, title=order.event.title),
            text=render_template(f"mail/{template}.txt", **context),
            html=render_template(f"mail/{template}.html", **context),
            language=order.locale,
        )
    try:
        send_mail(mail, current_app.config, current_app.instance_path)
    except MailFailed as error:
        log.warning("mail %s for order %s not sent: %s", template, order.code, error)
        return False
    log.info("order %s: %s mailed", order.code, template)
    return True


def send_refunds(refund_ids: list[uuid.UUID], now: dt.datetime) -> None:
    provider = current_app.extensions["guichet.payments"]
    for refund_id in refund_ids:
        send_refund(db.session, provider, refund_id, now)


def finish_event(outcome: EventOutcome, now: dt.datetime) -> None:
    """Side effects of a handled provider event, after its commit."""
    if outcome.paid_order_id is not None:
        order = outcome.paid_order or db.session.get(Order, outcome.paid_order_id)
        if order is not None:
            send_order_paid_mail(order, derive_access_token(keyring().link_key, order.id))
    send_refunds(outcome.refund_ids, now)
    if outcome.late_refund_order_id is not None:
        order = db.session.get(Order, outcome.late_refund_order_id)
        if order is not None:
            _mail_buyer(order, "late_payment_refunded")
    db.session.rollback()


def send_cancellation_mails(refund_ids: list[uuid.UUID]) -> int:
    """Tell every buyer of a cancelled event, with the link where they choose."""
    sent = 0
    for refund_id in refund_ids:
        refund = db.session.get(Refund, refund_id)
        if refund is None:
            continue
        link = external_url("payments.solidarity_choice", token=choice_token(refund.id))
        sent += _mail_buyer(
            refund.order,
            "event_cancelled",
            link=link,
            due_at=refund.due_at,
        )
    db.session.rollback()
    return sent
