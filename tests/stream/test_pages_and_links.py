"""Watch links on the order page, in the mail and the API; the watch page; settings; keys."""

from __future__ import annotations

import datetime as dt
import email
import json
import logging
import re

import pytest

from config import ConfigError, ProductionConfig
from tests.conftest import make_organizer, outbox, published_event
from tests.stream.helpers import set_event, stream_ticket, void_ticket
from ticketing.crypto.keys import generate_key_file
from ticketing.crypto.stream import read_stream_token
from ticketing.extensions import db
from ticketing.log_redaction import RedactSecretPaths

JSON = {"Accept": "application/json"}
WATCH = re.compile(r"(https?://[^\s\"<>]+/watch/[A-Za-z0-9_.\-]+)")


def test_order_api_page_and_mail_carry_a_watch_link_per_stream_ticket(app, client):
    ticket = stream_ticket(app, client)

    api_link = ticket.order["tickets"][0]["links"]["watch"]
    page = client.get(f"/orders/{ticket.code}/{ticket.access_token}").get_data(as_text=True)
    [mail] = outbox(app)
    message = email.message_from_bytes(mail.read_bytes())
    parts = [
        p.get_payload(decode=True).decode()
        for p in message.walk()
        if p.get_content_type() in ("text/plain", "text/html")
    ]
    mail_links = {link for part in parts for link in WATCH.findall(part)}

    keys = app.extensions["guichet.stream_keys"]
    named = {read_stream_token(keys, link.rsplit("/", 1)[1]) for link in mail_links | {api_link}}
    assert named == {(ticket.ticket_id, ticket.event_id)}  # tokens carry their signing second
    assert len(parts) == 2 and all(WATCH.search(part) for part in parts)
    assert f'href="{api_link}"' in page and ">Watch</a>" in page
    assert client.get(api_link.replace("http://localhost", "")).status_code == 200


def test_in_person_ticket_and_voided_ticket_have_no_watch_link(app, client):
    event = published_event(app, price_cents=0, fee_cents=0, mode="in_person")
    body = {
        "event_id": str(event.id),
        "items": [{"ticket_type_id": str(event.type_id), "quantity": 1}],
        "email": "a@example.org",
    }
    placed = client.post("/api/v1/orders", json=body).get_json()
    streamed = stream_ticket(app, client)
    void_ticket(app, streamed.ticket_id)

    in_person = client.get(
        f"/api/v1/orders/{placed['code']}", headers={"Authorization": f"Bearer {placed['access_token']}"}
    )
    voided = client.get(f"/api/v1/orders/{streamed.code}", headers={"Authorization": f"Bearer {streamed.access_token}"})

    assert in_person.get_json()["tickets"][0]["links"] == {}
    assert voided.get_json()["tickets"][0]["links"] == {}


def test_watch_page_before_the_start_shows_a_countdown(app, client):
    ticket = stream_ticket(app, client, starts_in=dt.timedelta(days=3))

    page = client.get(f"/watch/{ticket.token}")

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-open="false"' in html and 'id="countdown"' in html
    assert client.post(f"/watch/{ticket.token}/session", headers=JSON).get_json()["code"] == "not_yet"


def test_watch_page_csp_allows_the_stream_origin_only_there(app, client):
    ticket = stream_ticket(app, client, stream_url="https://video.example.org:8443/hls/{credential}/c/index.m3u8")

    watch = client.get(f"/watch/{ticket.token}")
    home = client.get("/")

    csp = watch.headers["Content-Security-Policy"]
    assert "media-src 'self' blob: https://video.example.org:8443;" in csp
    assert "connect-src 'self' https://video.example.org:8443;" in csp
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp
    assert "video.example.org" not in home.headers["Content-Security-Policy"]
    assert 'src="/static/vendor/hls.js/hls.min.js"' in watch.get_data(as_text=True)


def test_watch_page_refusals_are_pages_with_their_reason(app, client):
    expired = stream_ticket(app, client)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    set_event(app, expired.event_id, starts_at=past, ends_at=past + dt.timedelta(hours=2))
    revoked = stream_ticket(app, client)
    void_ticket(app, revoked.ticket_id)

    answers = {
        "expired": client.get(f"/watch/{expired.token}"),
        "revoked": client.get(f"/watch/{revoked.token}"),
        "invalid": client.get("/watch/not-a-token"),
        "api": client.post(f"/watch/{revoked.token}/session", headers=JSON),
    }

    assert answers["expired"].status_code == 410 and "expired" in answers["expired"].get_data(as_text=True)
    assert answers["revoked"].status_code == 410 and "refunded" in answers["revoked"].get_data(as_text=True)
    assert answers["invalid"].status_code == 404
    assert answers["api"].get_json()["code"] == "revoked"


def test_viewer_cookie_is_random_httponly_strict_and_scoped(app, client):
    ticket = stream_ticket(app, client)

    response = client.post(f"/watch/{ticket.token}/session")

    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("guichet_viewer=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and f"Path=/watch/{ticket.token}" in cookie
    assert len(cookie.split(";")[0].split("=", 1)[1]) >= 40


def test_watch_token_is_cut_from_request_logs():
    record = logging.LogRecord(
        "werkzeug",
        logging.INFO,
        "",
        0,
        '%s - "GET /watch/%s HTTP/1.1" 200',
        ("127.0.0.1", "POST /watch/abc.def.ghi/heartbeat HTTP/1.1"),
        None,
    )

    RedactSecretPaths().filter(record)

    assert "abc.def" not in str(record.args) and "/watch/[token]" in record.args[1]


def organiser_event(app, client):
    with app.app_context():
        organizer, token = make_organizer("Owner")
    created = client.post(
        "/api/v1/events",
        json={
            "title": "Live",
            "starts_at": "2030-01-01T20:00:00+01:00",
            "ends_at": "2030-01-01T22:00:00+01:00",
            "mode": "livestream",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    return created.get_json()["id"], {"Authorization": f"Bearer {token}"}


def test_organiser_sets_stream_settings_through_the_api(app, client):
    event_id, headers = organiser_event(app, client)
    settings = {
        "stream_url": "https://video.example.org/hls/{credential}/gala/index.m3u8",
        "stream_name": "gala",
        "stream_access": "signed_url",
        "stream_max_screens": 2,
        "stream_screen_policy": "refuse_new",
        "stream_replay_until": "2030-01-08T22:00:00+01:00",
    }

    changed = client.patch(f"/api/v1/events/{event_id}", json=settings, headers=headers)

    body = changed.get_json()
    assert changed.status_code == 200
    assert {name: body[name] for name in settings} == {**settings, "stream_replay_until": "2030-01-08T21:00:00Z"}
    assert body["stream_publisher_key_set"] is False


def test_bad_stream_settings_get_field_errors(app, client):
    event_id, headers = organiser_event(app, client)

    bad = client.patch(
        f"/api/v1/events/{event_id}",
        json={
            "stream_url": "ftp://x/{credential}",
            "stream_name": "a b",
            "stream_max_screens": 0,
            "stream_screen_policy": "all",
        },
        headers=headers,
    )

    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]) == {"stream_url", "stream_name", "stream_max_screens", "stream_screen_policy"}


@pytest.mark.parametrize(
    "stream_url",
    [
        "https://v.example;script-src/hls/{credential}/gala/index.m3u8",  # a directive through the host
        "https://v.example%3Bscript-src/hls/{credential}/gala/index.m3u8",
        "https://user:secret@v.example/hls/{credential}/gala/index.m3u8",
        "https://v.example:0/hls/{credential}/gala/index.m3u8",
        "https://v.example:70000/hls/{credential}/gala/index.m3u8",
        "https://v.example:/hls/{credential}/gala/index.m3u8",
        "https://-v.example/hls/{credential}/gala/index.m3u8",
        "https://v.example/hls/x{credential}/gala/index.m3u8",  # not a whole segment
        "https://v.example/hls/{credential}/{credential}/index.m3u8",
        "https://v.example/hls/gala/index.m3u8",  # no placeholder
        "https://v.example/hls/{credential}/gala/index.m3u8#x",
        "https://v.example/hls/{credential}/ga la/index.m3u8",
        "https://v.example/hls/{credential}/gala'/index.m3u8\"",
        "javascript://v.example/{credential}/x",
    ],
)
def test_a_stream_url_that_is_not_strictly_a_url_is_refused_with_a_422(app, client, stream_url):
    event_id, headers = organiser_event(app, client)

    refused = client.patch(f"/api/v1/events/{event_id}", json={"stream_url": stream_url}, headers=headers)

    assert refused.status_code == 422
    assert set(refused.get_json()["errors"]) == {"stream_url"}


@pytest.mark.parametrize(
    "stream_url",
    [
        "https://video.example.org:8443/hls/{credential}/gala/index.m3u8",
        "http://127.0.0.1:8080/hls/{credential}/gala.m3u8",
        "https://[2001:db8::1]:8888/gala/index.m3u8?cred={credential}",
        "https://xn--bcher-kva.example/live/gala/index.m3u8?a=1&cred={credential}",
    ],
)
def test_stream_urls_of_every_documented_shape_are_accepted(app, client, stream_url):
    event_id, headers = organiser_event(app, client)

    accepted = client.patch(f"/api/v1/events/{event_id}", json={"stream_url": stream_url}, headers=headers)

    assert accepted.status_code == 200, accepted.get_data(as_text=True)
    assert accepted.get_json()["stream_url"] == stream_url


def test_a_stream_url_stored_before_the_checks_adds_nothing_to_the_watch_page_policy(app, client):
    ticket = stream_ticket(app, client)
    set_event(app, ticket.event_id, stream_url="https://v.example;script-src 'unsafe-inline'/{credential}/x/i.m3u8")

    watch = client.get(f"/watch/{ticket.token}")

    csp = watch.headers["Content-Security-Policy"]
    assert watch.status_code == 200
    assert "v.example" not in csp and "unsafe-inline" not in csp
    assert [d.split()[0] for d in csp.split("; ")].count("script-src") == 1
    assert "connect-src 'self';" in csp and "media-src 'self' blob:;" in csp


def test_stream_name_belongs_to_one_event(app, client):
    first, headers = organiser_event(app, client)
    second = client.post(
        "/api/v1/events",
        json={"title": "Other", "starts_at": "2030-02-01T20:00:00Z", "ends_at": "2030-02-01T22:00:00Z"},
        headers=headers,
    ).get_json()["id"]
    assert client.patch(f"/api/v1/events/{first}", json={"stream_name": "gala"}, headers=headers).status_code == 200

    taken = client.patch(f"/api/v1/events/{second}", json={"stream_name": "gala"}, headers=headers)

    assert taken.status_code == 409 and taken.get_json()["code"] == "stream_name_taken"


def test_stream_names_are_each_organisers_own(app, client):
    first, headers_a = organiser_event(app, client)
    other_organisers, headers_b = organiser_event(app, client)
    assert client.patch(f"/api/v1/events/{first}", json={"stream_name": "gala"}, headers=headers_a).status_code == 200

    same_name = client.patch(f"/api/v1/events/{other_organisers}", json={"stream_name": "gala"}, headers=headers_b)
    created = client.post(
        "/api/v1/events",
        json={
            "title": "B again",
            "starts_at": "2030-02-01T20:00:00Z",
            "ends_at": "2030-02-01T22:00:00Z",
            "stream_name": "gala",
        },
        headers=headers_b,
    )

    assert same_name.status_code == 200 and same_name.get_json()["stream_name"] == "gala"
    assert created.status_code == 409 and created.get_json()["code"] == "stream_name_taken"  # B's own, now


def test_the_database_keeps_stream_names_unique_per_organiser(app):
    from sqlalchemy.exc import IntegrityError

    from ticketing.catalog.models import Event

    first, second = published_event(app), published_event(app)  # two organisers
    with app.app_context():
        one, two = db.session.get(Event, first.id), db.session.get(Event, second.id)
        one.stream_name = two.stream_name = "gala"
        db.session.commit()  # two organisers, one name: allowed
        third = Event(**{c: getattr(one, c) for c in ("organizer_id", "title", "starts_at", "ends_at")})
        third.stream_name = "gala"
        db.session.add(third)

        with pytest.raises(IntegrityError):
            db.session.commit()  # the same organiser twice: refused even past the service's check
        db.session.rollback()


def test_publisher_key_needs_a_stream_name_and_the_owner(app, client):
    event_id, headers = organiser_event(app, client)
    with app.app_context():
        _stranger, stranger_token = make_organizer("Stranger")

    without_name = client.post(f"/api/v1/events/{event_id}/stream/publisher-key", headers=headers)
    client.patch(f"/api/v1/events/{event_id}", json={"stream_name": "gala"}, headers=headers)
    stranger = client.post(
        f"/api/v1/events/{event_id}/stream/publisher-key", headers={"Authorization": f"Bearer {stranger_token}"}
    )
    owner = client.post(f"/api/v1/events/{event_id}/stream/publisher-key", headers=headers)

    assert without_name.status_code == 409 and stranger.status_code == 404
    assert owner.status_code == 201 and len(owner.get_json()["publisher_key"]) >= 40
    [listed] = client.get("/api/v1/organizer/events", headers=headers).get_json()["events"]
    assert listed["stream_publisher_key_set"] is True


def test_production_refuses_to_start_without_stream_secrets():
    environ = {
        "TICKETING_DATABASE_URL": "postgresql://x/y",
        "TICKETING_BASE_URL": "https://tickets.example.org",
        "TICKETING_SECRET_KEY": "s" * 40,
        "TICKETING_MASTER_KEYS": "m1:" + "A" * 43,
        "TICKETING_BLIND_INDEX_KEY": "A" * 43,
        "TICKETING_SIGNING_KEY": "s1:" + "A" * 43,
    }

    with pytest.raises(ConfigError, match="TICKETING_STREAM_SECRETS"):
        ProductionConfig(environ)


def test_older_key_file_gets_a_stream_secret_added_and_keeps_its_keys(tmp_path):
    path = tmp_path / "keys.json"
    first = generate_key_file(path)
    older = {name: value for name, value in first.items() if name != "stream_secrets"}
    path.write_text(json.dumps(older))
    path.chmod(0o600)

    upgraded = generate_key_file(path)

    assert {name: upgraded[name] for name in older} == older
    assert len(upgraded["stream_secrets"]) >= 32
    assert json.loads(path.read_text()) == upgraded and generate_key_file(path) == upgraded
    assert path.stat().st_mode & 0o777 == 0o600


def test_stream_keys_come_from_the_environment_when_set(app, tmp_path):
    from tests.conftest import make_app

    secrets = "a" * 40 + "," + "b" * 40
    configured = make_app(
        tmp_path / "other", "sqlite:///" + str(tmp_path / "x.sqlite3"), TICKETING_STREAM_SECRETS=secrets
    )

    assert configured.extensions["guichet.keyring"].stream_secrets == ("a" * 40, "b" * 40)
    with configured.app_context():
        db.engine.dispose()


def test_event_with_no_stream_url_yet_answers_without_a_playlist(app, client):
    ticket = stream_ticket(app, client)
    set_event(app, ticket.event_id, stream_url="")

    started = client.post(f"/watch/{ticket.token}/session")

    assert started.status_code == 200 and started.get_json()["playlist"] is None


def test_generate_keys_prints_stream_secrets_that_production_accepts(runner, tmp_path):
    from ticketing import create_app

    printed = runner.invoke(args=["generate-keys"]).output
    environ = dict(line.split("=", 1) for line in printed.strip().splitlines())
    environ.update(
        TICKETING_DATABASE_URL=f"sqlite:///{tmp_path / 'p.sqlite3'}",
        TICKETING_INSTANCE_PATH=str(tmp_path / "p"),
        TICKETING_BASE_URL="https://tickets.example.org",
        TICKETING_ALLOW_DEMO_PAYMENTS="true",
    )

    app = create_app(ProductionConfig(environ))

    assert app.extensions["guichet.keyring"].stream_secrets == (environ["TICKETING_STREAM_SECRETS"],)


def test_closing_the_page_gives_the_screen_back_at_once(app, client):
    ticket = stream_ticket(app, client, stream_screen_policy="refuse_new")
    other = app.test_client()
    assert client.post(f"/watch/{ticket.token}/session").status_code == 200
    assert other.post(f"/watch/{ticket.token}/session", headers=JSON).get_json()["code"] == "screen_limit"

    closed = client.post(f"/watch/{ticket.token}/end")

    assert closed.status_code == 204
    assert other.post(f"/watch/{ticket.token}/session").status_code == 200
    told = client.post(f"/watch/{ticket.token}/heartbeat", headers=JSON)
    assert told.status_code == 403 and told.get_json()["code"] == "session_expired"


def test_heartbeat_keeps_the_playlist_and_tells_the_replaced_screen(app, client):
    ticket = stream_ticket(app, client)
    first = client.post(f"/watch/{ticket.token}/session").get_json()["playlist"]

    kept = client.post(f"/watch/{ticket.token}/heartbeat").get_json()["playlist"]
    app.test_client().post(f"/watch/{ticket.token}/session")
    told = client.post(f"/watch/{ticket.token}/heartbeat", headers=JSON)

    assert kept == first  # gate mode: the player keeps its URL, no reload
    assert told.status_code == 409 and told.get_json()["detail"] == "This ticket is now playing on another screen."


def test_watch_page_speaks_french(app, client):
    ticket = stream_ticket(app, client, starts_in=dt.timedelta(days=3))

    page = client.get(f"/watch/{ticket.token}", headers={"Accept-Language": "fr"}).get_data(as_text=True)

    assert "La diffusion ouvre le" in page and "heure locale à Paris" in page
    assert 'data-msg-opens-in="La diffusion ouvre dans {countdown}, à ' in page
