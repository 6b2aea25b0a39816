"""API tokens: owners list, create and revoke them. A new token is shown once."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from ticketing.backoffice.access import requires
from ticketing.backoffice.blueprint import bp
from ticketing.backoffice.forms import TokenForm
from ticketing.catalog import services as catalog
from ticketing.errors import Invalid
from ticketing.extensions import db
from ticketing.models import utcnow


def _page(errors: dict[str, str] | None = None, new_token: str | None = None, label: str | None = None) -> str:
    tokens = catalog.list_api_tokens(db.session, g.organizer.id)
    return render_template(
        "backoffice/tokens.html", tokens=tokens, errors=errors or {}, new_token=new_token, new_label=label
    )


@bp.get("/tokens")
@requires("tokens")
def tokens_page() -> str:
    return _page()


@bp.post("/tokens")
@requires("tokens")
def create_token() -> str | tuple[str, int]:
    form = TokenForm(formdata=request.form)
    try:
        api_token, token = catalog.create_api_token(db.session, g.organizer.id, form.label.data or "", utcnow())
    except Invalid as error:
        return _page(errors=error.errors), 422
    # Shown on this answer only (never stored, never in a redirect's URL).
    return _page(new_token=token, label=api_token.label)


@bp.post("/tokens/<token_id>/revoke")
@requires("tokens")
def revoke_token(token_id: str) -> Response:
    api_token = catalog.revoke_api_token(db.session, g.organizer.id, token_id, utcnow())
    flash(_("Token “%(label)s” is revoked: it opens nothing any more.", label=api_token.label))
    return redirect(url_for("backoffice.tokens_page"))
