"""The demo's own HLS origin: a real test stream from ffmpeg, let through by the gate only."""

from __future__ import annotations

import shutil
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from tests.conftest import IN_CI, post_form
from ticketing.catalog.models import Event
from ticketing.checkout.models import Ticket
from ticketing.crypto.stream import make_stream_token
from ticketing.extensions import db
from ticketing.stream.demo import STREAM_NAME, make_test_stream, stream_folder
from ticketing.stream.demo import bp as demo_stream


@pytest.fixture
def demo_app(app, runner):
    if shutil.which("ffmpeg") is None:
        if IN_CI:
            pytest.fail("CI=true: ffmpeg must be installed for the demo stream test", pytrace=False)
        pytest.skip("ffmpeg is missing (apt-get install ffmpeg)")
    result = runner.invoke(args=["demo", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "Livestream: on now" in result.output
    assert make_test_stream(stream_folder(app.instance_path))  # what the demo does when it starts serving
    app.register_blueprint(demo_stream)
    return app


def test_the_demo_serves_its_test_stream_to_a_viewer_the_gate_allows(demo_app, client):
    with demo_app.app_context():
        event = db.session.execute(select(Event).where(Event.mode == "livestream")).scalar_one()
        stream_url, event_id, type_id = event.stream_url, event.id, event.ticket_types[0].id
    placed = client.post(
        "/api/v1/orders",
        json={
            "event_id": str(event_id),
            "items": [{"ticket_type_id": str(type_id), "quantity": 1}],
            "email": "viewer@example.org",
        },
    ).get_json()
    pay = f"/pay/demo/{placed['code']}/{placed['access_token']}"
    assert post_form(client, pay, pay, {"action": "pay"}).status_code in (200, 302, 303)
    with demo_app.app_context():
        ticket = db.session.execute(select(Ticket).where(Ticket.event_id == event_id)).scalar_one()
        token = make_stream_token(demo_app.extensions["guichet.stream_keys"], ticket.id, event_id)

    session = client.post(f"/watch/{token}/session").get_json()
    playlist = client.get(urlsplit(session["playlist"]).path)
    credential = urlsplit(session["playlist"]).path.split("/")[3]
    first_segment = next(line for line in playlist.get_data(as_text=True).splitlines() if line.endswith(".ts"))
    segment = client.get(f"/demo-stream/hls/{credential}/{STREAM_NAME}/{first_segment}")
    forged = client.get(f"/demo-stream/hls/gv1{'A' * 48}/{STREAM_NAME}/index.m3u8")

    assert stream_url.endswith(f"/demo-stream/hls/{{credential}}/{STREAM_NAME}/index.m3u8")
    assert playlist.status_code == 200 and playlist.mimetype == "application/vnd.apple.mpegurl"
    assert segment.status_code == 200 and segment.mimetype == "video/mp2t" and len(segment.data) > 1000
    assert forged.status_code == 403


def test_without_ffmpeg_the_demo_says_what_to_install(app, runner, monkeypatch):
    monkeypatch.setattr("ticketing.stream.demo.shutil.which", lambda _name: None)

    result = runner.invoke(args=["demo", "--no-serve"])

    assert result.exit_code == 0, result.output
    assert "install ffmpeg (apt-get install ffmpeg)" in result.output
