"""``flask`` commands of the back office: the first owner's login link, a lost API token."""

from __future__ import annotations

import datetime as dt
import uuid

import click
from flask import Flask, current_app, url_for
from flask.cli import with_appcontext

from ticketing.backoffice import services
from ticketing.catalog.services import find_organizer, replace_api_tokens
from ticketing.errors import GuichetError
from ticketing.extensions import db, keyring
from ticketing.models import utcnow
from ticketing.web import link_context

DEMO_OWNER_EMAIL = "demo-owner@guichet.invalid"


def register(app: Flask) -> None:
    app.cli.add_command(replace_api_token)
    app.cli.add_command(staff_login_link)


def owner_login_token(organizer_id: uuid.UUID, email: str, now: dt.datetime) -> str:
    """A one-time link token for this organiser's owner: a new invited owner the first
    time, a fresh link (setting a new password) for an existing account afterwards."""
    staff = services.find_staff_by_email(db.session, keyring(), email)
    db.session.rollback()
    if staff is None:
        _staff, token = services.create_staff(
            db.session, keyring(), organizer_id, email, "owner", now, link_lifetime=services.FIRST_LOGIN_LIFETIME
        )
        return token
    if staff.organizer_id != organizer_id:
        raise click.ClickException("this address already has a staff account with another organiser")
    purpose = "invite" if staff.status == "invited" else "reset"
    return services.issue_link(db.session, staff.id, purpose, now, services.FIRST_LOGIN_LIFETIME)


def login_link(token: str, base_url: str | None = None) -> str:
    """The absolute link: on ``base_url`` (the demo's own address) or TICKETING_BASE_URL."""
    app = current_app._get_current_object()
    context = app.test_request_context(base_url=base_url + "/") if base_url else link_context(app)
    with context:
        return url_for("backoffice.link_page", token=token, _external=True)


@click.command("replace-api-token")
@with_appcontext
@click.argument("organizer")
@click.option("--label", default="Replaced from the command line", show_default=True, help="The new token's label.")
def replace_api_token(organizer: str, label: str) -> None:
    """For a lost API token: revoke every live token of ORGANIZER (id or exact name) and
    print a new one (shown once; only its hash is kept)."""
    try:
        found = find_organizer(db.session, organizer)
        revoked, token = replace_api_tokens(db.session, found.id, label, utcnow())
    except GuichetError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Organiser {found.name!r} (id {found.id}): {revoked} token(s) revoked.")
    click.echo(f"New API token (store it now, it is not shown again): {token}")


@click.command("staff-login-link")
@with_appcontext
@click.argument("email")
@click.option("--turn-off-totp", is_flag=True, help="Also turn off the account's second factor (a lost phone).")
def staff_login_link(email: str, turn_off_totp: bool) -> None:
    """Print a new one-time link (24 hours) for the staff account of EMAIL, to choose a
    password: an owner whose first link expired, or the last owner locked out. Every
    older link of the account stops working."""
    staff = services.find_staff_by_email(db.session, keyring(), email)
    db.session.rollback()
    if staff is None:
        raise click.ClickException("no staff account has this address")
    if turn_off_totp:
        services.disable_totp(db.session, staff.id)
    purpose = "invite" if staff.status == "invited" else "reset"
    token = services.issue_link(db.session, staff.id, purpose, utcnow(), services.FIRST_LOGIN_LIFETIME)
    click.echo(f"One-time link for staff {staff.id} (valid 24 hours): {login_link(token)}")
    if not current_app.config["BASE_URL"]:
        click.echo("  (TICKETING_BASE_URL is not set: check that the link names the site's address)")
