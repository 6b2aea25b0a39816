"""Staff: owners invite people with a role, change roles, and remove accounts."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from ticketing.backoffice import services
from ticketing.backoffice.access import requires
from ticketing.backoffice.blueprint import bp
from ticketing.backoffice.forms import InviteForm, RoleForm
from ticketing.backoffice.mails import send_staff_link
from ticketing.backoffice.models import ROLES
from ticketing.errors import Conflict, Invalid
from ticketing.extensions import db, keyring
from ticketing.models import utcnow
from ticketing.privacy.person_links import person_links
from ticketing.web import external_url


def _page(errors: dict[str, str] | None = None, form: dict[str, str] | None = None) -> str:
    members = services.list_staff(db.session, keyring(), g.organizer.id)
    db.session.rollback()
    return render_template(
        "backoffice/staff.html", members=members, roles=ROLES, errors=errors or {}, form=form or {"role": "manager"}
    )


@bp.get("/staff")
@requires("staff")
def staff_page() -> str:
    return _page()


def _mail_invitation(email: str, staff_id, token: str) -> bool:  # type: ignore[no-untyped-def]
    return send_staff_link(
        to=email,
        staff_id=staff_id,
        purpose="invite",
        link=external_url("backoffice.link_page", token=token),
        organizer_name=g.organizer.name,
        lifetime=services.LINK_LIFETIMES["invite"],
    )


@bp.post("/staff/invite")
@requires("staff")
def invite_staff() -> Response | tuple[str, int]:
    form = InviteForm(formdata=request.form)
    submitted = {"email": request.form.get("email", ""), "role": request.form.get("role", "")}
    if not form.validate():
        return _page(form.problems(), submitted), 422
    try:
        staff, token = services.create_staff(
            db.session, keyring(), g.organizer.id, form.email.data, form.role.data or "", utcnow()
        )
    except (Invalid, Conflict) as error:
        return _page(error.errors or {"email": error.message}, submitted), error.status
    if _mail_invitation(form.email.data, staff.id, token):
        flash(_("Invitation sent. The link in it works once, for 7 days."))
    else:
        flash(_("The invitation could not be mailed. Send it again from the list below."))
    return redirect(url_for("backoffice.staff_page"))


@bp.post("/staff/<staff_id>/resend")
@requires("staff")
def resend_invitation(staff_id: str) -> Response:
    staff = services.get_staff(db.session, g.organizer.id, staff_id)
    if staff.status != "invited":
        flash(_("This person has already accepted the invitation."))
        return redirect(url_for("backoffice.staff_page"))
    email, _name = services.staff_identity(db.session, keyring(), staff)
    token = services.issue_link(db.session, staff.id, "invite", utcnow())
    if email and _mail_invitation(email, staff.id, token):
        flash(_("Invitation sent again; the earlier link no longer works."))
    else:
        flash(_("The invitation could not be mailed. Try again later."))
    return redirect(url_for("backoffice.staff_page"))


@bp.post("/staff/<staff_id>/role")
@requires("staff")
def change_role(staff_id: str) -> Response:
    form = RoleForm(formdata=request.form)
    services.change_role(db.session, g.organizer.id, staff_id, form.role.data or "")
    flash(_("Role changed."))
    return redirect(url_for("backoffice.staff_page"))


@bp.post("/staff/<staff_id>/totp/reset")
@requires("staff")
def reset_staff_totp(staff_id: str) -> Response:
    """For a member who lost their phone: they set up a new second factor at next login."""
    staff = services.get_staff(db.session, g.organizer.id, staff_id)
    services.disable_totp(db.session, staff.id)
    flash(_("Their second factor is turned off; they can set up a new one."))
    return redirect(url_for("backoffice.staff_page"))


@bp.post("/staff/<staff_id>/remove")
@requires("staff")
def remove_staff(staff_id: str) -> Response:
    services.remove_staff(db.session, person_links(), g.organizer.id, staff_id, utcnow())
    flash(_("Access removed, and their email address and name erased."))
    if str(g.staff.id) == staff_id:
        return redirect(url_for("backoffice.login"))
    return redirect(url_for("backoffice.staff_page"))
