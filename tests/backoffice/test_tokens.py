"""API tokens: made and revoked by owners, shown once, any live one opens every
organiser API route; tokens from before migration 0011 keep working; a lost one is
replaced from the command line."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask_migrate import upgrade

from tests.backoffice.helpers import log_in, make_venue
from tests.conftest import dispose, make_app, make_event, post_form
from tests.privacy.test_no_personal_data_outside_vault import raw_database_bytes
from ticketing.catalog.models import ApiToken, Organizer
from ticketing.crypto import hash_token
from ticketing.extensions import db
from ticketing.models import new_id, utcnow

NEW_TOKEN = re.compile(r'id="new-token">([A-Za-z0-9_-]+)<')


def organiser_routes(event_id: str) -> list[tuple[str, str]]:
    """One organiser-authenticated route of each API module (catalog, check-in, payments, stream)."""
    return [
        ("GET", "/api/v1/organizer/events"),
        ("GET", f"/api/v1/checkin/events/{event_id}/stats"),
        ("GET", "/api/v1/checkin/devices"),
        ("GET", f"/api/v1/events/{event_id}/refunds"),
    ]


def call(client, method: str, url: str, token: str):  # type: ignore[no-untyped-def]
    return client.open(url, method=method, headers={"Authorization": f"Bearer {token}"})


def test_an_owner_makes_a_token_that_is_shown_once_and_opens_every_organiser_route(app, client):
    venue = make_venue(app)
    with app.app_context():
        event_id = str(make_event(organizer=db.session.get(Organizer, venue.organizer_id)).id)
    log_in(client, venue.owner.email)

    made = post_form(client, "/manage/tokens", "/manage/tokens", {"label": "Box office laptop"})
    token = NEW_TOKEN.search(made.get_data(as_text=True)).group(1)
    listed = client.get("/manage/tokens").get_data(as_text=True)
    answers = {url: call(client, method, url, token).status_code for method, url in organiser_routes(event_id)}
    first = {url: call(client, method, url, venue.api_token).status_code for method, url in organiser_routes(event_id)}
    stream_key = call(client, "POST", f"/api/v1/events/{event_id}/stream/publisher-key", token)

    assert made.status_code == 200
    assert token not in listed and "Box office laptop" in listed
    assert set(answers.values()) == {200}, answers
    assert set(first.values()) == {200}, first
    assert stream_key.status_code not in (401, 403)
    assert token.encode() not in raw_database_bytes(app)
    with app.app_context():
        made_token = db.session.execute(sa.select(ApiToken).where(ApiToken.label == "Box office laptop")).scalar_one()
    assert made_token.token_hash == hash_token(token) and made_token.last_used_at is not None


def test_a_revoked_token_opens_nothing_and_the_others_still_work(app, client):
    venue = make_venue(app)
    with app.app_context():
        event_id = str(make_event(organizer=db.session.get(Organizer, venue.organizer_id)).id)
        first_id = db.session.execute(
            sa.select(ApiToken.id).where(ApiToken.organizer_id == venue.organizer_id)
        ).scalar()
    log_in(client, venue.owner.email)
    made = post_form(client, "/manage/tokens", "/manage/tokens", {"label": "Spare"})
    spare = NEW_TOKEN.search(made.get_data(as_text=True)).group(1)

    revoked = post_form(client, "/manage/tokens", f"/manage/tokens/{first_id}/revoke", {})

    assert revoked.status_code == 302
    for method, url in organiser_routes(event_id):
        assert call(client, method, url, venue.api_token).status_code == 401, url
        assert call(client, method, url, spare).status_code == 200, url


def test_a_token_needs_a_label(app, client):
    venue = make_venue(app)
    log_in(client, venue.owner.email)

    refused = post_form(client, "/manage/tokens", "/manage/tokens", {"label": "  "})

    assert refused.status_code == 422
    assert NEW_TOKEN.search(refused.get_data(as_text=True)) is None


def test_a_lost_token_is_replaced_from_the_command_line(app, client, runner):
    venue = make_venue(app)

    result = runner.invoke(args=["replace-api-token", "Salle Test"])
    new_token = re.search(r"New API token \(store it now, it is not shown again\): (\S+)", result.output).group(1)

    assert result.exit_code == 0, result.output
    assert "1 token(s) revoked" in result.output
    assert call(client, "GET", "/api/v1/organizer/events", venue.api_token).status_code == 401
    assert call(client, "GET", "/api/v1/organizer/events", new_token).status_code == 200
    unknown = runner.invoke(args=["replace-api-token", "No Such Venue"])
    assert unknown.exit_code != 0 and "No organiser has this id or name." in unknown.output


def test_tokens_issued_before_migration_0011_keep_working(empty_database, tmp_path):
    app = make_app(tmp_path / "instance", empty_database)
    old_token = "a-token-printed-by-create-organizer-before-0011"
    organizer = sa.table(
        "organizer",
        sa.column("id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("api_token_hash", sa.String()),
        sa.column("created_at", sa.DateTime()),
    )
    try:
        with app.app_context():
            upgrade(revision="0008_vault_statistics")
            db.session.execute(
                organizer.insert().values(
                    id=new_id(),
                    name="Old venue",
                    api_token_hash=hash_token(old_token),
                    created_at=utcnow().replace(tzinfo=None),
                )
            )
            db.session.commit()

            upgrade()
            db.session.remove()

        answer = call(app.test_client(), "GET", "/api/v1/organizer/events", old_token)
        with app.app_context():
            [migrated] = db.session.execute(sa.select(ApiToken)).scalars().all()
    finally:
        dispose(app)

    assert answer.status_code == 200
    assert migrated.label == "First token" and migrated.revoked_at is None
