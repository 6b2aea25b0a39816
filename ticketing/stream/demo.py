"""The demo's own HLS origin, so that ``flask demo`` has a stream to watch without nginx.

``flask demo`` makes a short test stream with ffmpeg (a test card and a tone) into the
instance folder once, when it starts serving, and serves it from the app at
``/demo-stream/hls/<credential>/<stream>/<file>``: every playlist and segment is let
through only when the gate's own check (``services.check_viewer_credential``, the one
nginx's ``auth_request`` asks) allows that viewer's credential. Production never has this
route: an organiser's streaming server serves the video (README, "Livestream").
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, send_from_directory

from ticketing.extensions import db
from ticketing.models import utcnow
from ticketing.stream import services

STREAM_NAME = "demo"
SECONDS = 30
TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}

bp = Blueprint("demo_stream", __name__, url_prefix="/demo-stream")


def stream_folder(instance_path: str) -> Path:
    return Path(instance_path) / "demo-stream"


def can_make_test_stream() -> bool:
    return shutil.which("ffmpeg") is not None


def make_test_stream(folder: Path) -> bool:
    """Half a minute of test card and tone as HLS (a VOD playlist); False without ffmpeg.

    Made once: a folder with its playlist is kept from one demo run to the next.
    """
    if (folder / "index.m3u8").exists():
        return True
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={SECONDS}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "50",
        "-c:a", "aac", "-b:a", "64k",
        "-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod",
        "-hls_segment_filename", str(folder / "%03d.ts"), str(folder / "index.m3u8"),
    ]  # fmt: skip
    subprocess.run(command, check=True, timeout=300)  # noqa: S603 - a fixed command line, no input
    return True


@bp.get("/hls/<credential>/<stream>/<file>")
def hls(credential: str, stream: str, file: str) -> Response:
    """One playlist or segment, if the gate lets this credential watch this stream."""
    suffix = Path(file).suffix
    if stream != STREAM_NAME or suffix not in TYPES:
        abort(404)
    organizer_id: uuid.UUID = current_app.config["DEMO_STREAM_ORGANIZER"]
    keys = current_app.extensions["guichet.stream_keys"]
    refusal = services.check_viewer_credential(db.session, keys, organizer_id, credential, stream, utcnow())
    db.session.rollback()
    if refusal:
        response = Response(status=403)
        response.headers["X-Guichet-Refusal"] = refusal
        return response
    response = send_from_directory(stream_folder(current_app.instance_path), file, mimetype=TYPES[suffix])
    response.headers["Cache-Control"] = "no-cache"
    return response
