"""What payments mail to buyers (rendered from the outbox), and refunds sent after a commit.

Used alike by the webhook, the pages, the organiser API and the CLI, so that each path
mails and refunds the same way. The buyer's address is read from the vault only to send.
"""

from __future__ import annotations

import datetime as dt
import uuid

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from ticketing.checkout.models import Order
from ticketing.crypto import derive_access_token
from ticketing.errors import N_
from ticketing.extensions import db, keyring
from ticketing.mail import OutgoingMail
from ticketing.payments.models import Refund
from ticketing.payments.services import send_refund
from ticketing.privacy.vault import read_person
from ticketing.web import external_url

CHOICE_SALT = "guichet-solidarity-choice"
SUBJECTS = {
    "late_payment_refunded": N_("Your payment for %(title)s is refunded (order %(code)s)"),
    "event_cancelled": N_("%(title)s is cancelled: refund or solidarity ticket (order %(code)s)"),
    "refund_confirmed": N_("Your refund for %(title)s (order %(code)s)"),
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


def _buyer_mail(session: Session, order: Order, template: str, **context: object) -> OutgoingMail | None:
    if order.person_id is None:
        return None
    person = read_person(session, keyring(), order.person_id)
    if person is None:
        return None
    with force_locale(order.locale):
        context.update(order=order, event=order.event, order_link=order_link(order))
        return OutgoingMail(
            to=person.email,
            subject=_(SUBJECTS[template], code=order.code, title=order.event.title),
            text=render_template(f"mail/{template}.txt", **context),
            html=render_template(f"mail/{template}.html", **context),
            language=order.locale,
        )


def render_late_payment_refunded(session: Session, order_id: uuid.UUID) -> OutgoingMail | None:
    """Why a payment that came after the tickets were gone is refunded."""
    order = session.get(Order, order_id)
    return _buyer_mail(session, order, "late_payment_refunded") if order is not None else None


def render_event_cancelled(session: Session, refund_id: uuid.UUID) -> OutgoingMail | None:
    """The cancellation, with the link where the buyer chooses refund or donation.

    Nothing to send once the choice is made or its time is over: the link would only
    answer that the choice is closed.
    """
    refund = session.get(Refund, refund_id)
    if refund is None or refund.status != "awaiting_choice":
        return None
    link = external_url("payments.solidarity_choice", token=choice_token(refund.id))
    return _buyer_mail(session, refund.order, "event_cancelled", link=link, due_at=refund.due_at)


def render_refund_confirmed(session: Session, refund_id: uuid.UUID) -> OutgoingMail | None:
    """How much comes back and when: every refund that sends money, whoever decided it.

    The money reaches the card after the provider's and the bank's delays, which Guichet
    does not see; the mail says what they usually are.
    """
    refund = session.get(Refund, refund_id)
    if refund is None or refund.amount_cents == 0 or refund.status == "failed":
        return None
    return _buyer_mail(session, refund.order, "refund_confirmed", refund=refund)


def send_refunds(refund_ids: list[uuid.UUID], now: dt.datetime) -> None:
    provider = current_app.extensions["guichet.payments"]
    for refund_id in refund_ids:
        send_refund(db.session, provider, refund_id, now)
