"""The streaming gate with real parts: nginx (RTMP module, HLS, auth_request, secure_link),
ffmpeg pushing a live test pattern, ffprobe reading it, and the watch page in Chromium.

Everything listens on 127.0.0.1 on free ports, writes under a temporary folder, and is
stopped by the pid this module started. Outside CI a missing nginx, RTMP module or ffmpeg
skips these tests with the reason; with ``CI=true`` it fails them.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from werkzeug.serving import make_server

from tests.conftest import IN_CI, make_app, make_event
from tests.e2e.conftest import dispose, wait_for_js
from ticketing.catalog.models import Event
from ticketing.checkout.models import Ticket
from ticketing.crypto.stream import make_viewer_credential, nginx_secure_link, read_viewer_credential
from ticketing.extensions import db

pytestmark = pytest.mark.e2e

NGINX = Path("/usr/sbin/nginx")
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"
STREAM = "e2econcert"
SECURE_LINK_SECRET = "e2e-secure-link-secret-0123456789abcdef"
READY_TIMEOUT = 40.0
# How long nginx keeps an "allowed" decision here (README documents 5 s): the revocation delay.
ALLOWED_SECONDS = 2
# Once a decision aged out, one request is still served on it while nginx asks again in the
# background (README): time for that request and for nginx and the app, on a busy machine.
ANSWER_SLACK_SECONDS = 1.0


def _tools_or_skip() -> None:
    missing = [str(path) for path in (NGINX, RTMP_MODULE, Path(FFMPEG), Path(FFPROBE)) if not path.exists()]
    if not missing:
        return
    reason = f"{', '.join(missing)} missing (apt-get install nginx libnginx-mod-rtmp ffmpeg)"
    if IN_CI:
        pytest.fail(f"CI=true: streaming tests must run, but {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = READY_TIMEOUT) -> None:
    """Poll ``condition`` (a file, a port) every 50 ms until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < deadline:
        if condition():
            return
        pause.wait(0.05)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def port_answers(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


NGINX_CONF = """
load_module {rtmp_module};
daemon off;
master_process on;
worker_processes 1;
user root;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 256; }}

rtmp {{
    server {{
        listen 127.0.0.1:{rtmp_port};
        application live {{
            live on;
            allow publish 127.0.0.1;
            deny publish all;
            on_play http://127.0.0.1:{app_port}/stream/{organizer_id}/rtmp/on-play;
            hls on;
            hls_path {root}/hls;
            hls_nested on;
            hls_fragment 1s;
            hls_playlist_length 6s;
        }}
    }}
}}

http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
    proxy_cache_path {root}/cache levels=1 keys_zone=guichet_gate:1m max_size=10m inactive=2m use_temp_path=off;

    server {{
        listen 127.0.0.1:{http_port};

        # Gate mode: README's configuration, with a shorter allowed-decision lifetime.
        location ~ ^/hls/(?<cred>[^/]+)/(?<stream>[A-Za-z0-9_-]+)/(?<file>[^/]+)$ {{
            auth_request /_guichet_auth;
            add_header Access-Control-Allow-Origin * always;
            add_header Cache-Control no-cache;
            alias {root}/hls/$stream/$file;
        }}
        location = /_guichet_auth {{
            internal;
            proxy_pass http://127.0.0.1:{app_port}/stream/{organizer_id}/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_cache guichet_gate;
            proxy_cache_key "$cred/$stream";
            proxy_cache_valid 204 {allowed_seconds}s;
            proxy_cache_valid 401 403 1m;
            proxy_cache_lock on;
            proxy_cache_use_stale updating;
            proxy_cache_background_update on;
            proxy_ignore_headers Cache-Control;
            open_file_cache max=1000 inactive=1m;
        }}

        # Signed-URL mode: nginx checks the MD5 itself, Guichet is not asked.
        location ~ ^/signed/(?<sl_hash>[\\w-]+)\\.(?<sl_expires>\\d+)/(?<sl_stream>[\\w-]+)/(?<sl_file>[^/]+)$ {{
            secure_link $sl_hash,$sl_expires;
            secure_link_md5 "$sl_expires$sl_stream {organizer_id} {secure_link_secret}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 410; }}
            add_header Access-Control-Allow-Origin * always;
            alias {root}/hls/$sl_stream/$sl_file;
        }}
    }}
}}
"""


class GateQuestions:
    """WSGI middleware: the ``X-Original-URI`` of every auth_request nginx sent to the app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.uris: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").endswith("/auth"):
            with self.lock:
                self.uris.append(environ.get("HTTP_X_ORIGINAL_URI", ""))
        return self.app(environ, start_response)

    def about(self, credential: str) -> list[str]:
        with self.lock:
            return [uri for uri in self.uris if credential in uri]


@dataclass
class StreamingStack:
    app: Any
    gate: GateQuestions
    app_url: str
    hls_url: str
    rtmp_url: str
    event_id: Any
    ticket_type_id: Any
    organizer_id: Any
    root: Path


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def stack(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamingStack]:
    """Guichet on loopback, nginx in front of an HLS folder, ffmpeg publishing a test pattern."""
    _tools_or_skip()
    root = tmp_path_factory.mktemp("streaming")
    (root / "tmp").mkdir()
    (root / "hls").mkdir()
    database = root / "guichet.sqlite3"
    shutil.copy(sqlite_template, database)
    http_port, rtmp_port = free_port(), free_port()
    app = make_app(
        root / "instance",
        f"sqlite:///{database}",
        TICKETING_STREAM_SECURE_LINK_SECRET=SECURE_LINK_SECRET,
        TICKETING_STREAM_HEARTBEAT_SECONDS="2",
    )
    with app.app_context():
        event = make_event(
            capacity=50, price_cents=0, fee_cents=0, mode="livestream", starts_in=dt.timedelta(minutes=5)
        )
        event.stream_name = STREAM
        event.stream_url = f"http://127.0.0.1:{http_port}/hls/{{credential}}/{STREAM}/index.m3u8"
        db.session.commit()
        event_id, ticket_type_id, organizer_id = event.id, event.ticket_types[0].id, event.organizer_id
    gate = GateQuestions(app.wsgi_app)
    app.wsgi_app = gate  # type: ignore[method-assign]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, name="guichet-stream-server", daemon=True)
    serving.start()
    config = root / "nginx.conf"
    config.write_text(
        NGINX_CONF.format(
            rtmp_module=RTMP_MODULE,
            root=root,
            rtmp_port=rtmp_port,
            http_port=http_port,
            app_port=server.server_port,
            secure_link_secret=SECURE_LINK_SECRET,
            organizer_id=organizer_id,
            allowed_seconds=ALLOWED_SECONDS,
        )
    )
    nginx = subprocess.Popen(
        [str(NGINX), "-p", str(root), "-c", str(config), "-e", str(root / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    ffmpeg = None
    try:
        wait_until(lambda: port_answers(http_port) and port_answers(rtmp_port), "nginx to listen")
        ffmpeg = subprocess.Popen(
            [
                FFMPEG, "-hide_banner", "-loglevel", "error", "-re",
                "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
                "-profile:v", "baseline", "-g", "25", "-keyint_min", "25",
                "-c:a", "aac", "-b:a", "64k",
                "-f", "flv", f"rtmp://127.0.0.1:{rtmp_port}/live/{STREAM}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        playlist = root / "hls" / STREAM / "index.m3u8"
        wait_until(lambda: playlist.exists() and playlist.read_text().count(".ts") >= 3, "three HLS segments")
        yield StreamingStack(
            app=app,
            gate=gate,
            app_url=f"http://127.0.0.1:{server.server_port}",
            hls_url=f"http://127.0.0.1:{http_port}",
            rtmp_url=f"rtmp://127.0.0.1:{rtmp_port}/live/{STREAM}",
            event_id=event_id,
            ticket_type_id=ticket_type_id,
            organizer_id=organizer_id,
            root=root,
        )
    finally:
        if ffmpeg is not None:
            _stop(ffmpeg, signal.SIGINT)
        _stop(nginx, signal.SIGQUIT)
        server.shutdown()
        serving.join(timeout=10)
        server.server_close()
        dispose(app)


def buy_stream_ticket(stack: StreamingStack) -> tuple[str, Any]:
    """A free order through the API; returns the watch URL and the ticket id."""
    client = stack.app.test_client()
    body = {
        "event_id": str(stack.event_id),
        "items": [{"ticket_type_id": str(stack.ticket_type_id), "quantity": 1}],
        "email": "viewer@example.org",
    }
    placed = client.post("/api/v1/orders", json=body, base_url=stack.app_url).get_json()
    order = client.get(
        f"/api/v1/orders/{placed['code']}",
        headers={"Authorization": f"Bearer {placed['access_token']}"},
        base_url=stack.app_url,
    ).get_json()
    [ticket] = order["tickets"]
    return ticket["links"]["watch"], ticket["id"]


def open_screen(stack: StreamingStack, watch_url: str) -> str:
    """What the watch page does first: ask Guichet for a screen; returns the playlist URL."""
    path = watch_url.split("://", 1)[1].split("/", 1)[1]
    started = stack.app.test_client().post(f"/{path}/session", base_url=stack.app_url)
    assert started.status_code == 200, started.get_data(as_text=True)
    return started.get_json()["playlist"]


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback only
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def ffprobe(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FFPROBE, "-v", "error", "-rw_timeout", "10000000", "-show_entries", "stream=codec_name", "-of", "json", url],
        capture_output=True,
        text=True,
        timeout=60,
    )


def codecs(result: subprocess.CompletedProcess[str]) -> set[str]:
    assert result.returncode == 0, result.stderr
    return {stream["codec_name"] for stream in json.loads(result.stdout)["streams"]}


def test_valid_credential_reads_the_live_stream_through_nginx(stack: StreamingStack) -> None:
    watch_url, _ticket_id = buy_stream_ticket(stack)
    playlist = open_screen(stack, watch_url)

    result = ffprobe(playlist)

    assert codecs(result) == {"h264", "aac"}
    assert playlist.startswith(stack.hls_url + "/hls/gv1")


def test_expired_forged_and_revoked_credentials_get_403(stack: StreamingStack) -> None:
    watch_url, _ticket_id = buy_stream_ticket(stack)
    first = open_screen(stack, watch_url)
    second = open_screen(stack, watch_url)  # no cookie: another screen, which takes over
    credential = first.split("/hls/", 1)[1].split("/", 1)[0]
    with stack.app.app_context():
        keys = stack.app.extensions["guichet.stream_keys"]
        session_id = read_viewer_credential(keys, credential)[0]
        expired = make_viewer_credential(keys, session_id, int(time.time()) - 1)
    forged = credential[:-4] + ("AAAA" if not credential.endswith("AAAA") else "BBBB")

    statuses = {
        "expired": http_status(first.replace(credential, expired)),
        "forged": http_status(first.replace(credential, forged)),
        "revoked": http_status(first),
        "newest": http_status(second),
    }
    probe = ffprobe(first.replace(credential, forged))

    assert statuses == {"expired": 403, "forged": 403, "revoked": 403, "newest": 200}
    assert probe.returncode != 0 and "403" in probe.stderr


def credential_of(playlist: str) -> str:
    return playlist.split("/hls/", 1)[1].split("/", 1)[0]


def segment_urls(playlist: str) -> list[str]:
    with urllib.request.urlopen(playlist, timeout=10) as response:  # noqa: S310 - loopback only
        lines = response.read().decode().splitlines()
    return [urllib.parse.urljoin(playlist, line) for line in lines if line and not line.startswith("#")]


def test_many_segment_requests_inside_the_cache_window_cost_one_gate_request(stack: StreamingStack) -> None:
    watch_url, _ticket_id = buy_stream_ticket(stack)
    playlist = open_screen(stack, watch_url)
    segments = segment_urls(playlist)  # the first request: nginx asks Guichet and keeps the answer

    statuses = [http_status(url) for url in [playlist, *segments] * 3]

    assert len(segments) >= 3 and set(statuses) == {200}
    assert len(stack.gate.about(credential_of(playlist))) == 1


def test_a_cached_decision_opens_only_the_stream_it_was_made_for(stack: StreamingStack) -> None:
    watch_url, _ticket_id = buy_stream_ticket(stack)
    playlist = open_screen(stack, watch_url)
    assert http_status(playlist) == 200  # allowed, and kept for this credential and this stream

    other = http_status(playlist.replace(f"/{STREAM}/", "/otherstream/"))

    assert other == 403  # Guichet was asked (404 would mean the cached decision let it through)
    assert len(stack.gate.about(credential_of(playlist))) == 2


def test_after_a_refund_the_viewer_is_refused_within_the_cache_lifetime(stack: StreamingStack) -> None:
    watch_url, ticket_id = buy_stream_ticket(stack)
    playlist = open_screen(stack, watch_url)
    segment = segment_urls(playlist)[0]
    assert http_status(playlist) == 200

    with stack.app.app_context():
        db.session.execute(update(Ticket).where(Ticket.id == uuid.UUID(ticket_id)).values(status="voided"))
        db.session.commit()

    wait_until(
        lambda: http_status(playlist) == 403, "the refund to reach nginx", ALLOWED_SECONDS + ANSWER_SLACK_SECONDS
    )
    assert http_status(segment) == 403
    assert ffprobe(playlist).returncode != 0


def test_a_screen_taken_over_is_refused_within_the_cache_lifetime_and_refusals_are_kept(
    stack: StreamingStack,
) -> None:
    watch_url, _ticket_id = buy_stream_ticket(stack)
    first = open_screen(stack, watch_url)
    assert http_status(first) == 200

    second = open_screen(stack, watch_url)  # another browser: it takes the ticket's one screen

    wait_until(lambda: http_status(first) == 403, "the takeover to reach nginx", ALLOWED_SECONDS + ANSWER_SLACK_SECONDS)
    asked_before = len(stack.gate.about(credential_of(first)))
    refused_again = [http_status(first) for _ in range(5)]
    assert refused_again == [403] * 5
    assert len(stack.gate.about(credential_of(first))) == asked_before  # the refusal came from nginx's cache
    assert http_status(second) == 200


def test_rtmp_on_play_asks_guichet(stack: StreamingStack) -> None:
    watch_url, _ticket_id = buy_stream_ticket(stack)
    credential = open_screen(stack, watch_url).split("/hls/", 1)[1].split("/", 1)[0]

    allowed = ffprobe(f"{stack.rtmp_url}?cred={credential}")
    refused = ffprobe(f"{stack.rtmp_url}?cred=gv1forged")

    assert codecs(allowed) == {"h264", "aac"}
    assert refused.returncode != 0


def test_signed_url_mode_is_checked_by_nginx_alone(stack: StreamingStack) -> None:
    with stack.app.app_context():
        db.session.execute(
            update(Event)
            .where(Event.id == stack.event_id)
            .values(stream_access="signed_url", stream_url=f"{stack.hls_url}/signed/{{credential}}/{STREAM}/index.m3u8")
        )
        db.session.commit()
    try:
        watch_url, _ticket_id = buy_stream_ticket(stack)
        playlist = open_screen(stack, watch_url)
        digest, expires = playlist.split("/signed/", 1)[1].split("/", 1)[0].split(".")
        past = int(time.time()) - 5
        expired = playlist.replace(
            f"{digest}.{expires}", f"{nginx_secure_link(SECURE_LINK_SECRET, stack.organizer_id, STREAM, past)}.{past}"
        )
        forged = playlist.replace(f"{digest}.", f"{digest[:-2]}xx.")
        signed_path = playlist.split("://", 1)[1].split("/", 1)[1]
        gate = stack.app.test_client().get(
            f"/stream/{stack.organizer_id}/auth", headers={"X-Original-URI": "/" + signed_path}
        )

        result = ffprobe(playlist)

        assert codecs(result) == {"h264", "aac"}
        assert http_status(expired) == 410 and http_status(forged) == 403
        assert gate.status_code == 401  # the gate would refuse this URL: nginx alone let it through
    finally:
        with stack.app.app_context():
            db.session.execute(
                update(Event)
                .where(Event.id == stack.event_id)
                .values(stream_access="gate", stream_url=f"{stack.hls_url}/hls/{{credential}}/{STREAM}/index.m3u8")
            )
            db.session.commit()


# Predicates are functions, not expression strings: Playwright evals strings, which the CSP forbids.
PLAYING = "() => document.getElementById('player').currentTime > 2"


def _watch(page: Any, seen: list[str], problems: list[str]) -> None:
    page.on("request", lambda request: seen.append(request.url))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))


def test_watch_page_plays_and_a_second_screen_takes_over(stack: StreamingStack, browser: Any) -> None:
    watch_url, _ticket_id = buy_stream_ticket(stack)
    seen: list[str] = []
    problems: list[str] = []
    first_context, second_context = browser.new_context(), browser.new_context()
    try:
        first = first_context.new_page()
        _watch(first, seen, problems)
        first.goto(watch_url)
        h264 = first.evaluate("() => MediaSource.isTypeSupported('video/mp4; codecs=\"avc1.42E01E,mp4a.40.2\"')")
        assert h264, "this Chromium cannot play H.264 through Media Source Extensions"
        wait_for_js(first, PLAYING, timeout_ms=30_000)

        second = second_context.new_page()
        _watch(second, seen, problems)
        second.goto(watch_url)
        wait_for_js(second, PLAYING, timeout_ms=30_000)

        wait_for_js(
            first, "() => document.getElementById('watch-status').textContent.includes('another screen')", 15_000
        )
        assert first.locator("#watch").get_attribute("data-state") == "stopped"
        assert first.locator("#player").is_hidden()
        playing_at = second.evaluate("() => document.getElementById('player').currentTime")
        wait_for_js(second, f"() => document.getElementById('player').currentTime > {playing_at} + 1", 15_000)
    finally:
        first_context.close()
        second_context.close()

    assert all(url.startswith(("http://127.0.0.1:", "blob:", "data:")) for url in seen), seen
    assert not [text for text in problems if "Content Security Policy" in text], problems
