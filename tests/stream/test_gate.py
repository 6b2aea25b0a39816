"""The endpoints a streaming server calls: nginx auth_request, nginx-rtmp on_play, MediaMTX."""

from __future__ import annotations

import datetime as dt
import uuid

from tests.stream.helpers import set_event, stream_ticket, void_ticket
from ticketing.crypto.stream import make_viewer_credential
from ticketing.stream.services import credential_from_uri


def open_screen(client, ticket):
    response = client.post(f"/watch/{ticket.token}/session")
    assert response.status_code == 200, response.get_data(as_text=True)
    playlist = response.get_json()["playlist"]
    return playlist.split("/hls/", 1)[1].split("/", 1)[0]  # the credential in the path


def auth(client, ticket, uri):
    """nginx's auth_request from the streaming server of the ticket's organiser."""
    return client.get(f"/stream/{ticket.organizer_id}/auth", headers={"X-Original-URI": uri})


def test_valid_credential_plays_playlist_and_segments(app, client):
    ticket = stream_ticket(app, client)
    credential = open_screen(client, ticket)

    playlist = auth(client, ticket, f"/hls/{credential}/{ticket.stream_name}/index.m3u8")
    segment = auth(client, ticket, f"/hls/{credential}/{ticket.stream_name}/3.ts")

    assert playlist.status_code == 204 and segment.status_code == 204
    assert playlist.get_data() == b"" and playlist.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in playlist.headers and "Vary" not in playlist.headers  # nginx may cache it
    assert client.head(f"/stream/{ticket.organizer_id}/auth", headers={"X-Original-URI": "/x"}).status_code == 401


def test_each_refusal_names_its_reason(app, client):
    ticket = stream_ticket(app, client)
    credential = open_screen(client, ticket)
    keys = app.extensions["guichet.stream_keys"]
    expired = make_viewer_credential(keys, uuid.uuid4(), 1_000_000_000)
    forged = credential[:10] + ("A" if credential[10] != "A" else "B") + credential[11:]

    answers = {
        "missing": auth(client, ticket, f"/hls/{ticket.stream_name}/index.m3u8"),
        "forged": auth(client, ticket, f"/hls/{forged}/{ticket.stream_name}/index.m3u8"),
        "expired": auth(client, ticket, f"/hls/{expired}/{ticket.stream_name}/index.m3u8"),
        "other stream": auth(client, ticket, f"/hls/{credential}/someone-else/index.m3u8"),
    }

    assert answers["missing"].status_code == 401
    assert {
        name: (r.status_code, r.headers.get("X-Guichet-Refusal")) for name, r in answers.items() if name != "missing"
    } == {
        "forged": (403, "invalid"),
        "expired": (403, "expired"),
        "other stream": (403, "invalid"),
    }


def test_refund_revokes_the_very_next_request(app, client):
    ticket = stream_ticket(app, client)
    credential = open_screen(client, ticket)
    uri = f"/hls/{credential}/{ticket.stream_name}/index.m3u8"
    assert auth(client, ticket, uri).status_code == 204

    void_ticket(app, ticket.ticket_id)

    refused = auth(client, ticket, uri)
    assert refused.status_code == 403 and refused.headers["X-Guichet-Refusal"] == "revoked"


def test_cancelled_event_revokes_and_a_newer_screen_takes_over(app, client):
    ticket = stream_ticket(app, client)
    first = open_screen(client, ticket)
    second = open_screen(app.test_client(), ticket)  # another browser: no viewer cookie

    superseded = auth(client, ticket, f"/hls/{first}/{ticket.stream_name}/index.m3u8")
    newest = auth(client, ticket, f"/hls/{second}/{ticket.stream_name}/index.m3u8")
    set_event(app, ticket.event_id, status="cancelled")
    after_cancel = auth(client, ticket, f"/hls/{second}/{ticket.stream_name}/index.m3u8")

    assert (superseded.status_code, superseded.headers["X-Guichet-Refusal"]) == (403, "revoked")
    assert newest.status_code == 204
    assert (after_cancel.status_code, after_cancel.headers["X-Guichet-Refusal"]) == (403, "revoked")


def test_rtmp_on_play_allows_with_2xx_and_refuses_with_403(app, client):
    ticket = stream_ticket(app, client)
    credential = open_screen(client, ticket)

    allowed = client.post(
        f"/stream/{ticket.organizer_id}/rtmp/on-play",
        data={"call": "play", "app": "live", "name": ticket.stream_name, "cred": credential},
    )
    refused = client.post(
        f"/stream/{ticket.organizer_id}/rtmp/on-play",
        data={"call": "play", "app": "live", "name": ticket.stream_name, "cred": "gv1nope"},
    )
    no_credential = client.post(
        f"/stream/{ticket.organizer_id}/rtmp/on-play", data={"call": "play", "name": ticket.stream_name}
    )

    assert allowed.status_code == 204
    assert refused.status_code == 403 and no_credential.status_code == 403


def test_mediamtx_read_needs_a_credential_for_that_path(app, client):
    ticket = stream_ticket(app, client)
    credential = open_screen(client, ticket)
    base = {"user": "", "password": "", "ip": "127.0.0.1", "action": "read", "protocol": "hls", "id": None}

    by_query = client.post(
        f"/stream/{ticket.organizer_id}/mediamtx/auth",
        json={**base, "path": ticket.stream_name, "query": f"cred={credential}"},
    )
    by_token = client.post(
        f"/stream/{ticket.organizer_id}/mediamtx/auth",
        json={**base, "path": ticket.stream_name, "token": credential, "query": ""},
    )
    wrong_path = client.post(
        f"/stream/{ticket.organizer_id}/mediamtx/auth", json={**base, "path": "other", "query": f"cred={credential}"}
    )
    api_action = client.post(
        f"/stream/{ticket.organizer_id}/mediamtx/auth", json={**base, "action": "api", "path": "", "query": ""}
    )
    not_json = client.post(f"/stream/{ticket.organizer_id}/mediamtx/auth", data="nope", content_type="text/plain")

    assert by_query.status_code == 200 and by_token.status_code == 200
    assert wrong_path.status_code == 401 and api_action.status_code == 401
    assert not_json.status_code == 400


def give_to_new_organizer(app, ticket, name="Owner"):
    """Move the ticket's event to a new organiser; returns (organiser id, API token)."""
    from tests.conftest import make_organizer
    from ticketing.catalog.models import Event
    from ticketing.extensions import db

    with app.app_context():
        organizer, api_token = make_organizer(name)
        event = db.session.get(Event, ticket.event_id)
        event.organizer_id = organizer.id
        db.session.commit()
        return organizer.id, api_token


def publish(client, organizer_id, stream_name, **fields):
    body = {"user": "", "ip": "127.0.0.1", "action": "publish", "path": stream_name, "protocol": "rtmp", "id": None}
    return client.post(f"/stream/{organizer_id}/mediamtx/auth", json={**body, **fields})


def test_mediamtx_publish_needs_the_events_publisher_key(app, client):
    ticket = stream_ticket(app, client)
    organizer_id, api_token = give_to_new_organizer(app, ticket)
    issued = client.post(
        f"/api/v1/events/{ticket.event_id}/stream/publisher-key", headers={"Authorization": f"Bearer {api_token}"}
    )
    key = issued.get_json()["publisher_key"]

    with_key = publish(client, organizer_id, ticket.stream_name, password="", query=f"key={key}")
    with_password = publish(client, organizer_id, ticket.stream_name, password=key, query="")
    wrong_key = publish(client, organizer_id, ticket.stream_name, password="wrong", query="")
    viewer_cannot_publish = publish(
        client, organizer_id, ticket.stream_name, password="", query=f"cred={open_screen(client, ticket)}"
    )

    assert issued.status_code == 201 and issued.get_json()["stream_name"] == ticket.stream_name
    assert with_key.status_code == 200 and with_password.status_code == 200
    assert wrong_key.status_code == 401 and viewer_cannot_publish.status_code == 401


def two_organisers_one_stream_name(app, client):
    """Organisers A and B, each with a livestream called "live" and a viewer with a screen."""
    a, b = stream_ticket(app, client, stream_name="live"), stream_ticket(app, client, stream_name="live")
    return (a, open_screen(client, a)), (b, open_screen(client, b))


def test_with_two_organisers_using_one_stream_name_each_gate_admits_only_its_own_viewers(app, client):
    (a, credential_a), (b, credential_b) = two_organisers_one_stream_name(app, client)
    uri_a, uri_b = f"/hls/{credential_a}/live/index.m3u8", f"/hls/{credential_b}/live/index.m3u8"
    read = {"user": "", "password": "", "ip": "127.0.0.1", "action": "read", "protocol": "hls", "path": "live"}

    nginx = {
        "a at a": auth(client, a, uri_a).status_code,
        "b at b": auth(client, b, uri_b).status_code,
        "a at b": auth(client, b, uri_a).status_code,
        "b at a": auth(client, a, uri_b).status_code,
    }
    rtmp = client.post(f"/stream/{b.organizer_id}/rtmp/on-play", data={"name": "live", "cred": credential_a})
    mediamtx = client.post(f"/stream/{b.organizer_id}/mediamtx/auth", json={**read, "query": f"cred={credential_a}"})
    unknown = client.get(f"/stream/{uuid.uuid4()}/auth", headers={"X-Original-URI": uri_a})

    assert a.organizer_id != b.organizer_id
    assert nginx == {"a at a": 204, "b at b": 204, "a at b": 403, "b at a": 403}
    assert rtmp.status_code == 403 and mediamtx.status_code == 401 and unknown.status_code == 403


def test_with_two_organisers_using_one_stream_name_each_publisher_key_opens_its_own_stream(app, client):
    (a, _credential_a), (b, _credential_b) = two_organisers_one_stream_name(app, client)
    organizer_a, token_a = give_to_new_organizer(app, a, "A")
    organizer_b, token_b = give_to_new_organizer(app, b, "B")
    key_a, key_b = (
        client.post(
            f"/api/v1/events/{ticket.event_id}/stream/publisher-key", headers={"Authorization": f"Bearer {token}"}
        ).get_json()["publisher_key"]
        for ticket, token in ((a, token_a), (b, token_b))
    )

    answers = {
        "a's key at a": publish(client, organizer_a, "live", password=key_a).status_code,
        "b's key at b": publish(client, organizer_b, "live", password=key_b).status_code,
        "a's key at b": publish(client, organizer_b, "live", password=key_a).status_code,
        "b's key at a": publish(client, organizer_a, "live", password=key_b).status_code,
    }

    assert answers == {"a's key at a": 200, "b's key at b": 200, "a's key at b": 401, "b's key at a": 401}


def test_credential_is_found_in_nested_and_flat_hls_paths():
    credential = "gv1" + "A" * 48

    nested = credential_from_uri(f"/hls/{credential}/concert/12.ts?x=1")
    flat_playlist = credential_from_uri(f"/hls/{credential}/concert.m3u8")
    flat_segment = credential_from_uri(f"/hls/{credential}/my-show-12.ts")
    none = credential_from_uri("/hls/concert/index.m3u8")

    assert (nested.credential, nested.stream_name) == (credential, "concert")
    assert flat_playlist.stream_name == "concert" and flat_segment.stream_name == "my-show"
    assert none.credential is None


def test_signed_url_mode_hands_out_an_expiring_secure_link(app, client, monkeypatch):
    ticket = stream_ticket(
        app, client, stream_access="signed_url", stream_url="https://edge.example/hls/{credential}/concert/index.m3u8"
    )
    from ticketing.stream.services import StreamPolicy

    current = app.extensions["guichet.stream_policy"]
    app.extensions["guichet.stream_policy"] = StreamPolicy(
        current.opens_before, current.grace, secure_link_secret="edge-secret", signed_url_seconds=300
    )

    playlist = client.post(f"/watch/{ticket.token}/session").get_json()["playlist"]

    credential = playlist.split("/hls/", 1)[1].split("/", 1)[0]
    digest, expires = credential.split(".")
    from ticketing.crypto.stream import nginx_secure_link

    assert digest == nginx_secure_link("edge-secret", ticket.organizer_id, ticket.stream_name, int(expires))
    assert 150 <= int(expires) - dt.datetime.now(dt.UTC).timestamp() <= 300
    again = client.post(f"/watch/{ticket.token}/heartbeat").get_json()["playlist"]
    assert again == playlist or int(again.split("/hls/", 1)[1].split("/", 1)[0].split(".")[1]) == int(expires) + 150


def test_a_killed_database_connection_answers_503_once_then_the_gate_decides_again(postgres_url, tmp_path):
    import sqlalchemy as sa

    from tests.conftest import app_on

    apps = app_on(postgres_url, tmp_path / "instance")
    app = next(apps)
    client = app.test_client()
    ticket = stream_ticket(app, client)
    uri = f"/hls/{open_screen(client, ticket)}/{ticket.stream_name}/index.m3u8"
    assert auth(client, ticket, uri).status_code == 204  # the pool now holds a connection
    admin = sa.create_engine(postgres_url)
    try:
        with admin.begin() as connection:
            killed = connection.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar()

        after_kill = auth(client, ticket, uri)
        next_one = auth(client, ticket, uri)
    finally:
        admin.dispose()
        next(apps, None)

    assert killed >= 1
    assert (after_kill.status_code, after_kill.headers["Retry-After"]) == (503, "2")
    assert next_one.status_code == 204


def test_the_gate_answers_503_when_the_database_is_unreachable(tmp_path):
    from tests.conftest import make_app

    app = make_app(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2")
    keys = app.extensions["guichet.stream_keys"]
    credential = make_viewer_credential(keys, uuid.uuid4(), int(dt.datetime.now(dt.UTC).timestamp()) + 600)

    response = app.test_client().get(
        f"/stream/{uuid.uuid4()}/auth", headers={"X-Original-URI": f"/hls/{credential}/live/index.m3u8"}
    )

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"


NESTED_JSON = "[" * 20_000 + "]" * 20_000  # far deeper than the JSON decoder recurses, under 64 KiB


def test_deeply_nested_json_to_mediamtx_auth_is_a_400_not_a_logged_500(app, client, caplog):
    response = client.post(f"/stream/{uuid.uuid4()}/mediamtx/auth", data=NESTED_JSON, content_type="application/json")

    assert response.status_code == 400
    assert "unexpected" not in caplog.text and "Traceback" not in caplog.text
