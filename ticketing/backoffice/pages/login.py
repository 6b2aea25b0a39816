"""Logging in and out, the second-factor step, forgotten passwords and one-time links."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from ticketing.backoffice import services
from ticketing.backoffice.access import (
    end_session,
    pending_staff_id,
    public,
    safe_next,
    start_pending,
    start_session,
)
from ticketing.backoffice.blueprint import bp, pending_fingerprint
from ticketing.backoffice.forms import CodeForm, LoginForm, SetPasswordForm
from ticketing.backoffice.mails import send_staff_link
from ticketing.backoffice.models import StaffMember
from ticketing.catalog.models import Organizer
from ticketing.errors import GuichetError, Invalid
from ticketing.extensions import db, email_fingerprint, keyring, limiter, not_an_email
from ticketing.models import utcnow
from ticketing.web import external_url
from ticketing.webforms import EmailForm

# Per client, and per account (a keyed hash of the address: the limiter's storage never
# holds it). Wrong and right attempts both count: a person types a password a few times.
LOGIN_PER_CLIENT = "20 per minute; 100 per hour"
LOGIN_PER_ACCOUNT = "5 per minute; 30 per hour"


def _landing(staff: StaffMember, next_url: str | None) -> Response:
    return redirect(safe_next(next_url) or url_for("backoffice.home"))


@bp.get("/login")
@public
def login() -> str:
    return render_template("backoffice/login.html", errors={}, form={}, next=safe_next(request.args.get("next")))


@bp.post("/login")
@public
@limiter.limit(LOGIN_PER_CLIENT)
@limiter.limit(LOGIN_PER_ACCOUNT, key_func=email_fingerprint, exempt_when=not_an_email)
def login_submit() -> Response | tuple[str, int]:
    form = LoginForm(formdata=request.form)
    next_url = safe_next(request.form.get("next"))
    if not form.validate():
        return render_template("backoffice/login.html", errors=form.problems(), form=request.form, next=next_url), 422
    staff = services.check_password(db.session, keyring(), form.email.data, form.password.data)
    if staff is None:
        message = _("This email address and password do not match an account.")
        return render_template(
            "backoffice/login.html", errors={}, message=message, form={"email": form.email.data}, next=next_url
        ), 401
    now = utcnow()
    organizer = db.session.get(Organizer, staff.organizer_id)
    if staff.has_totp:
        start_pending(staff, now, next_url)
        return redirect(url_for("backoffice.login_code"))
    start_session(staff, now)
    current_app.logger.info("staff %s logged in", staff.id)
    if organizer is not None and organizer.require_staff_totp:
        return redirect(url_for("backoffice.totp_setup"))
    return _landing(staff, next_url)


@bp.get("/login/code")
@public
def login_code() -> Response | str:
    if pending_staff_id(utcnow()) is None:
        return redirect(url_for("backoffice.login"))
    return render_template("backoffice/login_code.html", errors={})


@bp.post("/login/code")
@public
@limiter.limit(LOGIN_PER_CLIENT)
@limiter.limit(LOGIN_PER_ACCOUNT, key_func=pending_fingerprint)
def login_code_submit() -> Response | tuple[str, int]:
    now = utcnow()
    pending = pending_staff_id(now)
    if pending is None:
        flash(_("Your login took too long. Please start again."))
        return redirect(url_for("backoffice.login"))
    staff_id, version, next_url = pending
    form = CodeForm(formdata=request.form)
    if not form.validate():
        return render_template("backoffice/login_code.html", errors=form.problems()), 422
    if not services.verify_totp(db.session, keyring(), staff_id, form.code.data, now):
        message = _("This code does not match, or was used already. Type the newest code from your app.")
        return render_template("backoffice/login_code.html", errors={"code": message}), 401
    staff = db.session.get(StaffMember, staff_id, populate_existing=True)
    if staff is None or not staff.is_active or staff.session_version != version:
        end_session()
        return redirect(url_for("backoffice.login"))
    start_session(staff, now)
    current_app.logger.info("staff %s logged in with a second factor", staff.id)
    return _landing(staff, next_url)


@bp.post("/logout")
@public
def logout() -> Response:
    end_session()
    flash(_("You are logged out."))
    return redirect(url_for("backoffice.login"))


@bp.get("/password/forgot")
@public
def forgot_password() -> str:
    return render_template("backoffice/forgot.html", errors={}, form={})


@bp.post("/password/forgot")
@public
@limiter.limit("10 per minute; 30 per hour")
@limiter.limit("3 per hour", key_func=email_fingerprint, exempt_when=not_an_email)
def forgot_password_submit() -> tuple[str, int] | str:
    form = EmailForm(formdata=request.form)
    if not form.validate():
        return render_template("backoffice/forgot.html", errors=form.problems(), form=request.form), 422
    found = services.reset_link_for(db.session, keyring(), form.email.data, utcnow())
    if found is not None:
        staff, token = found
        organizer = db.session.get(Organizer, staff.organizer_id)
        send_staff_link(
            to=form.email.data,
            staff_id=staff.id,
            purpose="reset",
            link=external_url("backoffice.link_page", token=token),
            organizer_name=organizer.name if organizer else "",
            lifetime=services.LINK_LIFETIMES["reset"],
        )
    # The same page whether or not the address has an account.
    return render_template("backoffice/forgot_sent.html")


@bp.get("/link/<token>")
@public
def link_page(token: str) -> tuple[str, int] | str:
    try:
        staff, link = services.open_link(db.session, token, utcnow())
    except GuichetError as error:
        return render_template("backoffice/link_invalid.html", message=error.message), error.status
    email, _name = services.staff_identity(db.session, keyring(), staff)
    db.session.rollback()
    return render_template(
        "backoffice/set_password.html", purpose=link.purpose, email=email, token=token, errors={}, form={}
    )


@bp.post("/link/<token>")
@public
@limiter.limit("10 per minute")
def link_submit(token: str) -> Response | tuple[str, int]:
    form = SetPasswordForm(formdata=request.form)
    try:
        staff, link = services.open_link(db.session, token, utcnow())
    except GuichetError as error:
        return render_template("backoffice/link_invalid.html", message=error.message), error.status
    purpose = link.purpose
    email, _name = services.staff_identity(db.session, keyring(), staff)
    db.session.rollback()

    def again(errors: dict[str, str], status: int = 422) -> tuple[str, int]:
        return render_template(
            "backoffice/set_password.html",
            purpose=purpose,
            email=email,
            token=token,
            errors=errors,
            form={"display_name": request.form.get("display_name", "")},
        ), status

    if not form.validate():
        return again(form.problems())
    try:
        staff = services.use_link(
            db.session,
            keyring(),
            token,
            password=form.password.data or "",
            password_again=form.password_again.data or "",
            display_name=form.display_name.data if purpose == "invite" else None,
            now=utcnow(),
        )
    except Invalid as error:
        return again(error.errors)
    except GuichetError as error:
        return render_template("backoffice/link_invalid.html", message=error.message), error.status
    session.pop("totp_candidate", None)
    flash(_("Your password is set."))
    if staff.has_totp:
        start_pending(staff, utcnow(), None)
        return redirect(url_for("backoffice.login_code"))
    start_session(staff, utcnow())
    return redirect(url_for("backoffice.home"))
