"""Organiser settings: who sells and who holds the buyers' data, and the staff policy."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from ticketing.backoffice.access import requires
from ticketing.backoffice.blueprint import bp
from ticketing.backoffice.forms import SecurityForm, SettingsForm
from ticketing.catalog import services as catalog
from ticketing.errors import Invalid
from ticketing.extensions import db
from ticketing.models import utcnow


def _page(errors: dict[str, str], form: dict[str, str] | None = None) -> str:
    organizer = g.organizer
    values = form or {name: getattr(organizer, name) for name in catalog.SETTINGS_FIELDS}
    return render_template("backoffice/settings.html", errors=errors, form=values)


@bp.get("/settings")
@requires("settings")
def settings_page() -> str:
    return _page({})


@bp.post("/settings")
@requires("settings")
def save_settings() -> Response | tuple[str, int]:
    form = SettingsForm(formdata=request.form)
    payload = {name: getattr(form, name).data for name in catalog.SETTINGS_FIELDS}
    try:
        catalog.update_organizer_settings(db.session, g.organizer.id, payload, utcnow())
    except Invalid as error:
        return _page(error.errors, {name: value or "" for name, value in payload.items()}), 422
    flash(_("Settings saved. Buyers see them on event pages, order pages, mails and the privacy page."))
    return redirect(url_for("backoffice.settings_page"))


@bp.post("/settings/security")
@requires("settings")
def save_security() -> Response:
    form = SecurityForm(formdata=request.form)
    required = bool(form.require_staff_totp.data)
    catalog.set_staff_totp_requirement(db.session, g.organizer.id, required)
    if required:
        flash(_("Every staff member now needs a second factor; those without one set it up at their next page."))
    else:
        flash(_("A second factor is now optional for staff."))
    return redirect(url_for("backoffice.settings_page"))
