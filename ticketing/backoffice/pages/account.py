"""A staff member's own account: name, password, second factor, other sessions."""

from __future__ import annotations

import segno
from flask import flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from ticketing.backoffice import services
from ticketing.backoffice.access import keep_session_version, signed_in_before_totp
from ticketing.backoffice.blueprint import bp
from ticketing.backoffice.forms import CodeForm, DisplayNameForm, PasswordChangeForm
from ticketing.errors import Forbidden, Invalid
from ticketing.extensions import db, keyring
from ticketing.models import utcnow

CANDIDATE_KEY = "totp_candidate"


def _page(errors: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    email, name = services.staff_identity(db.session, keyring(), g.staff)
    db.session.rollback()
    return render_template("backoffice/account.html", email=email, display_name=name, errors=errors or {}), status


@bp.get("/account")
@signed_in_before_totp
def account_page() -> tuple[str, int]:
    return _page()


@bp.post("/account/name")
@signed_in_before_totp
def change_display_name() -> Response | tuple[str, int]:
    form = DisplayNameForm(formdata=request.form)
    if not form.validate():
        return _page(form.problems(), 422)
    services.change_display_name(db.session, keyring(), g.staff, form.display_name.data)
    flash(_("Your name is saved."))
    return redirect(url_for("backoffice.account_page"))


@bp.post("/account/password")
@signed_in_before_totp
def change_password() -> Response | tuple[str, int]:
    form = PasswordChangeForm(formdata=request.form)
    try:
        version = services.change_password(
            db.session,
            g.staff.id,
            current=form.current_password.data or "",
            new=form.password.data or "",
            new_again=form.password_again.data or "",
            now=utcnow(),
        )
    except Invalid as error:
        return _page(error.errors, 422)
    keep_session_version(version)
    flash(_("Your password is changed. Every other session of your account has ended."))
    return redirect(url_for("backoffice.account_page"))


@bp.post("/account/sessions/end")
@signed_in_before_totp
def end_other_sessions() -> Response:
    keep_session_version(services.end_other_sessions(db.session, g.staff.id))
    flash(_("Every other session of your account has ended."))
    return redirect(url_for("backoffice.account_page"))


def _totp_page(secret: str, errors: dict[str, str], status: int = 200) -> tuple[str, int]:
    email, _name = services.staff_identity(db.session, keyring(), g.staff)
    db.session.rollback()
    uri = services.totp_uri(secret, email or str(g.staff.id), g.organizer.name)
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, border=4, dark="#000", light="#fff")
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render_template("backoffice/totp.html", qr=qr, secret=grouped, errors=errors), status


@bp.get("/account/totp")
@signed_in_before_totp
def totp_setup() -> Response | tuple[str, int]:
    if g.staff.has_totp:
        return redirect(url_for("backoffice.account_page"))
    # The candidate seed rides in the signed session until a code proves the app has it.
    secret = session.get(CANDIDATE_KEY) or services.new_totp_secret()
    session[CANDIDATE_KEY] = secret
    return _totp_page(secret, {})


@bp.post("/account/totp")
@signed_in_before_totp
def totp_enable() -> Response | tuple[str, int]:
    secret = session.get(CANDIDATE_KEY)
    if not secret or g.staff.has_totp:
        return redirect(url_for("backoffice.totp_setup"))
    form = CodeForm(formdata=request.form)
    if not form.validate():
        return _totp_page(secret, form.problems(), 422)
    try:
        services.enable_totp(db.session, keyring(), g.staff.id, secret, form.code.data, utcnow())
    except Invalid as error:
        return _totp_page(secret, error.errors, 422)
    session.pop(CANDIDATE_KEY, None)
    flash(_("Second factor on: from now on you log in with your password and a code from your app."))
    return redirect(url_for("backoffice.account_page"))


@bp.post("/account/totp/remove")
@signed_in_before_totp
def totp_remove() -> Response:
    if g.organizer.require_staff_totp:
        raise Forbidden(_("Your organiser requires a second factor: it cannot be turned off."))
    services.disable_totp(db.session, g.staff.id)
    flash(_("Second factor turned off."))
    return redirect(url_for("backoffice.account_page"))
