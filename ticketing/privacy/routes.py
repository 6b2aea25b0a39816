"""The privacy page, the "my data" email request, and the my-data pages with their
export and erase actions, reached by an order link or by an emailed link."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from sqlalchemy import select

from ticketing.catalog.models import Event
from ticketing.extensions import db, email_fingerprint, keyring, limiter, not_an_email
from ticketing.mail import MailFailed, OutgoingMail, send_mail
from ticketing.models import utcnow
from ticketing.privacy import services
from ticketing.privacy.person_links import person_links
from ticketing.privacy.vault import email_indexes, find_person_ids
from ticketing.web import external_url
from ticketing.webforms import ConfirmForm, EmailForm

bp = Blueprint("privacy", __name__)


@bp.get("/privacy")
def privacy_page() -> str:
    """Generated from what is really configured, so it cannot drift from the truth."""
    now = utcnow()
    events = (
        db.session.execute(
            select(Event).where(Event.status == "published", Event.ends_at > now).order_by(Event.starts_at)
        )
        .scalars()
        .all()
    )
    return render_template(
        "privacy/privacy.html",
        events=events,
        max_retention_days=current_app.config["MAX_RETENTION_DAYS"],
        link_minutes=services.LINK_MAX_AGE // 60,
        errors={},
        form={},
    )


@bp.post("/privacy/request")
@limiter.limit("10 per minute; 30 per hour")
@limiter.limit("3 per hour", key_func=email_fingerprint, exempt_when=not_an_email)
def request_my_data() -> str | tuple[str, int]:
    form = EmailForm(formdata=request.form)
    if not form.validate():
        return render_template("privacy/request.html", errors=form.problems(), form=request.form), 422
    email = form.email.data
    indexes = email_indexes(keyring(), email)
    held = bool(find_person_ids(db.session, indexes))
    db.session.rollback()
    locale = str(get_locale() or "en")
    with force_locale(locale):
        if not held:
            # The owner of the address gets an answer too; the requester sees the same page.
            mail = OutgoingMail(
                to=email,
                subject=_("Your personal data at Guichet"),
                text=render_template("mail/privacy_nothing.txt"),
                language=locale,
            )
        else:
            token = services.make_request_token(current_app.config["SECRET_KEY"], indexes, utcnow())
            link = external_url("privacy.my_data_by_link", token=token)
            mail = OutgoingMail(
                to=email,
                subject=_("Your personal data at Guichet"),
                text=render_template("mail/privacy_link.txt", link=link, minutes=services.LINK_MAX_AGE // 60),
                language=locale,
            )
    try:
        send_mail(mail, current_app.config, current_app.instance_path)
    except MailFailed as error:
        current_app.logger.warning("privacy request mail not sent: %s", error)
    return render_template("privacy/request_sent.html")


def _my_data_page(requester: services.Requester, **urls: str) -> str:
    export = services.export_person(db.session, keyring(), person_links(), requester, now=utcnow())
    return render_template("privacy/my_data.html", export=export, **urls)


def _receipt_page(receipt: services.Receipt, status: int = 200) -> tuple[str, int]:
    return render_template("privacy/erased.html", receipt=receipt), status


@bp.get("/privacy/my-data/<token>")
def my_data_by_link(token: str) -> str:
    requester = services.requester_from_token(db.session, current_app.config["SECRET_KEY"], token, utcnow())
    db.session.rollback()
    return _my_data_page(
        requester,
        export_url=external_url("privacy.export_by_link", token=token),
        erase_url=external_url("privacy.erase_by_link", token=token),
    )


@bp.get("/privacy/my-data/<token>/export.json")
def export_by_link(token: str) -> Response:
    requester = services.requester_from_token(db.session, current_app.config["SECRET_KEY"], token, utcnow())
    return _download(services.export_person(db.session, keyring(), person_links(), requester, now=utcnow()))


@bp.post("/privacy/my-data/<token>/erase")
def erase_by_link(token: str) -> tuple[str, int]:
    _confirmed()
    requester = services.requester_from_token(db.session, current_app.config["SECRET_KEY"], token, utcnow())
    receipt = services.erase_person(db.session, person_links(), requester, route="email_link", now=utcnow())
    return _receipt_page(receipt)


@bp.get("/orders/<code>/<token>/my-data")
def my_data_by_order(code: str, token: str) -> str:
    requester = services.requester_from_order(db.session, person_links(), code, token)
    db.session.rollback()
    return _my_data_page(
        requester,
        export_url=external_url("privacy.export_by_order", code=code, token=token),
        erase_url=external_url("privacy.erase_by_order", code=code, token=token),
        order_url=external_url("checkout.order_page", code=code, token=token),
    )


@bp.get("/orders/<code>/<token>/my-data.json")
def export_by_order(code: str, token: str) -> Response:
    requester = services.requester_from_order(db.session, person_links(), code, token)
    return _download(services.export_person(db.session, keyring(), person_links(), requester, now=utcnow()))


@bp.post("/orders/<code>/<token>/erase")
def erase_by_order(code: str, token: str) -> tuple[str, int]:
    _confirmed()
    requester = services.requester_from_order(db.session, person_links(), code, token)
    receipt = services.erase_person(db.session, person_links(), requester, route="order_link", now=utcnow())
    return _receipt_page(receipt)


def _confirmed() -> None:
    """Erasure cannot be undone: the form asks for an explicit tick first."""
    ConfirmForm(formdata=request.form).confirmed(_("Tick the box to confirm that you want your personal data erased."))


def _download(export: dict[str, Any]) -> Response:
    response = jsonify(export)
    response.headers["Content-Disposition"] = 'attachment; filename="guichet-my-data.json"'
    return response
