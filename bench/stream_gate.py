"""Streaming gate as a viewer sees it: HLS segments per second through nginx with the
cached ``auth_request`` of README, against the same nginx serving the same files with no
gate at all.

Run: ``.venv/bin/python bench/stream_gate.py`` (about a minute; ``--help`` lists the knobs).
Needs the local PostgreSQL, nginx (``/usr/sbin/nginx``) and wrk (``apt-get install wrk``).

1. (Re)creates the database ``guichet_bench_stream``, migrates it, and seeds a livestream
   event with 200 paid tickets, each with an open screen (a viewer session) and its
   viewer credential, as the watch page would get them.
2. Writes an HLS folder (a playlist and segments of random bytes: nginx serves files, the
   content does not matter) and starts Guichet under gunicorn (sync workers, 2 x cores +
   1, as README deploys them) and one nginx with two locations over the same files:
   ``/hls/<credential>/<stream>/<file>`` with README's ``auth_request`` and its decision
   cache (5 s for an allowed viewer), and ``/plain/<credential>/<stream>/<file>`` with
   no gate.
3. Drives each location in turn with wrk: one thread and one connection per viewer
   (200 by default), each with its own credential, every request a segment; the two
   configurations alternate for ``--rounds`` rounds. Before each gated run, one request
   per viewer spread over 5 s makes the viewers' decisions age out at different moments,
   as an audience that joined over a few seconds would.
4. Prints segments/s and latency for each run, nginx's CPU per segment, how many
   questions reached Guichet (gunicorn's access log) and the CPU its workers used, the
   ratio gated / ungated with its target (at least 80%), and the machine.

A measurement, not a test: exit code 0 whatever the figures, non-zero when the run broke.
Everything it starts is stopped by pid.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from harness import (  # noqa: E402
    DEPLOYED_WORKER,
    HOST,
    GunicornServer,
    RunBroken,
    children_of,
    cpu_model,
    cpu_seconds,
    die_with_parent,
    empty_database,
    free_port,
    package_version,
    production_environ,
    verdict,
)

DATABASE = "guichet_bench_stream"
SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432"
DATABASE_URL = f"{SERVER_URL}/{DATABASE}"
NGINX = Path("/usr/sbin/nginx")
STREAM = "benchlive"
ALLOWED_SECONDS = 5  # README's proxy_cache_valid for an allowed decision

TARGET_RATIO = 0.80  # gated segments/s at least 80% of ungated (issue 15)


# --------------------------------------------------------------------------- database


@dataclass
class Seed:
    organizer_id: uuid.UUID
    credentials: list[str]


def seed(app: Any, viewers: int) -> Seed:
    """A published livestream with ``viewers`` paid tickets, each watched on one screen."""
    from flask_migrate import upgrade

    from ticketing.catalog.models import Event, TicketType
    from ticketing.catalog.services import create_organizer
    from ticketing.checkout.models import Order, Ticket
    from ticketing.crypto import hash_token, new_token
    from ticketing.crypto.stream import make_viewer_credential
    from ticketing.extensions import db
    from ticketing.models import utcnow
    from ticketing.stream.models import ViewerSession

    keys = app.extensions["guichet.stream_keys"]
    with app.app_context():
        upgrade()
        now = utcnow()
        organizer, _token = create_organizer(db.session, "Bench organiser", now)
        event = Event(
            organizer_id=organizer.id,
            title="Bench livestream",
            starts_at=now - dt.timedelta(minutes=5),
            ends_at=now + dt.timedelta(hours=3),
            mode="livestream",
            status="published",
            stream_name=STREAM,
            stream_url=f"http://{HOST}:9/hls/{{credential}}/{STREAM}/index.m3u8",
        )
        db.session.add(event)
        db.session.flush()
        ticket_type = TicketType(
            event_id=event.id, name="Stream", price_cents=0, capacity=viewers, grants_entry=False, grants_stream=True
        )
        order = Order(
            code="BENCH",
            access_token_hash=hash_token("bench"),
            event_id=event.id,
            status="paid",
            currency="EUR",
            subtotal_cents=0,
            fee_cents=0,
            total_cents=0,
            provider="demo",
            hold_expires_at=now,
            paid_at=now,
        )
        db.session.add_all([ticket_type, order])
        db.session.flush()
        tickets = [
            Ticket(id=uuid.uuid4(), order_id=order.id, event_id=event.id, ticket_type_id=ticket_type.id, created_at=now)
            for _ in range(viewers)
        ]
        db.session.add_all(tickets)
        db.session.flush()
        # Screens that keep sending heartbeats: alive for the whole run.
        screens = [
            ViewerSession(
                ticket_id=ticket.id,
                cookie_hash=hash_token(new_token()),
                started_at=now,
                last_seen_at=now,
                expires_at=now + dt.timedelta(hours=2),
            )
            for ticket in tickets
        ]
        db.session.add_all(screens)
        db.session.commit()
        closes = int(event.ends_at.timestamp())
        credentials = [make_viewer_credential(keys, screen.id, closes) for screen in screens]
        organizer_id = organizer.id
        db.session.remove()
        db.engine.dispose()
    return Seed(organizer_id, credentials)


# --------------------------------------------------------------------------- files and nginx


def write_hls(folder: Path, segments: int, segment_bytes: int) -> list[str]:
    """A live-looking playlist and its segments; returns the segment file names."""
    stream = folder / STREAM
    stream.mkdir(parents=True)
    names = [f"{number}.ts" for number in range(segments)]
    for name in names:
        (stream / name).write_bytes(os.urandom(segment_bytes))
    playlist = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0"]
    for name in names:
        playlist += ["#EXTINF:2.000,", name]
    (stream / "index.m3u8").write_text("\n".join(playlist) + "\n")
    return names


# README's "nginx in front of HLS" http block, plus an ungated location over the same files.
NGINX_CONF = """
daemon off;
master_process on;
{user}worker_processes {nginx_workers};
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}

http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
    proxy_cache_path {root}/cache levels=1 keys_zone=guichet_gate:10m max_size=50m inactive=2m use_temp_path=off;

    server {{
        listen {host}:{port} backlog=4096;

        location ~ ^/hls/(?<cred>[^/]+)/(?<stream>[A-Za-z0-9_-]+)/(?<file>[^/]+)$ {{
            auth_request /_guichet_auth;
            add_header Access-Control-Allow-Origin * always;
            add_header Cache-Control no-cache;
            alias {root}/hls/$stream/$file;
        }}

        location ~ ^/plain/(?<cred>[^/]+)/(?<stream>[A-Za-z0-9_-]+)/(?<file>[^/]+)$ {{
            add_header Access-Control-Allow-Origin * always;
            add_header Cache-Control no-cache;
            alias {root}/hls/$stream/$file;
        }}

        location = /_guichet_auth {{
            internal;
            proxy_pass http://{host}:{app_port}/stream/{organizer_id}/auth;
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
            open_file_cache max=10000 inactive=1m;
            access_log off;
        }}
    }}
}}
"""


class Nginx:
    """One nginx under test, started in its own session and stopped by pid."""

    def __init__(self, root: Path, config: str) -> None:
        self.root = root
        (root / "tmp").mkdir(exist_ok=True)
        (root / "nginx.conf").write_text(config)
        self.process = subprocess.Popen(
            [str(NGINX), "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "error.log")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(root / "nginx.stderr").open("wb"),
            start_new_session=True,
            preexec_fn=die_with_parent,  # safe: the benchmark runs no threads
        )

    def wait_ready(self, url: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RunBroken(f"nginx exited with {self.process.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                time.sleep(0.05)
        raise RunBroken(f"nginx did not serve {url} within {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        texts = [(self.root / name).read_text(errors="replace") for name in ("nginx.stderr", "error.log")]
        return "\n".join(text for text in texts if text)[-2000:] or "(no log)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def nginx_version() -> str:
    output = subprocess.run([str(NGINX), "-v"], capture_output=True, text=True, check=False).stderr
    return output.strip().split("/", 1)[-1] or "?"


# --------------------------------------------------------------------------- load


# One wrk thread per viewer, each with one connection and its own credential: a viewer's
# player asks for its own segments one after another, as a real one does.
WRK_SCRIPT = """
local credentials = {{{credentials}}}
local segments = {{{segments}}}
local prefix = "{prefix}"
local stream = "{stream}"
local next_viewer = 0
setup = function(thread)
  next_viewer = next_viewer + 1
  thread:set("credential", credentials[((next_viewer - 1) % #credentials) + 1])
  thread:set("first", next_viewer)
end
init = function(args)
  i = first
end
request = function()
  i = i + 1
  return wrk.format("GET", prefix .. credential .. "/" .. stream .. "/" .. segments[(i % #segments) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format("p50_us %d\\np99_us %d\\n", latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Run:
    name: str
    segments_per_s: float
    requests: int
    non_2xx: int
    socket_errors: str
    p50_ms: float
    p99_ms: float
    guichet_questions: int
    guichet_cpu: float
    nginx_cpu: float
    seconds: int


def wrk_script(folder: Path, prefix: str, credentials: list[str], segments: list[str]) -> Path:
    path = folder / f"{prefix.strip('/')}.lua"
    path.write_text(
        WRK_SCRIPT.format(
            credentials=", ".join(f'"{c}"' for c in credentials),
            segments=", ".join(f'"{s}"' for s in segments),
            prefix=prefix,
            stream=STREAM,
        )
    )
    return path


def run_wrk(base: str, script: Path, viewers: int, seconds: int) -> dict[str, Any]:
    command = [
        shutil.which("wrk") or "/usr/bin/wrk",
        "-t", str(viewers), "-c", str(viewers), "-d", f"{seconds}s",
        "--timeout", "10s", "-s", str(script), base,
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout

    def number(pattern: str) -> float:
        found = re.search(pattern, output)
        if found is None:
            raise RunBroken(f"wrk printed no {pattern!r}:\n{output}")
        return float(found.group(1))

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rate": number(r"Requests/sec:\s+([\d.]+)"),
        "requests": int(number(r"(\d+) requests in")),
        "p50_ms": number(r"p50_us (\d+)") / 1000,
        "p99_ms": number(r"p99_us (\d+)") / 1000,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "none",
    }


def stagger_decisions(base: str, credentials: list[str], segment: str) -> None:
    """One request per viewer, spread over one decision lifetime: viewers who joined at
    different moments, whose decisions then age out (and are asked again) at different
    moments. Without it every viewer's decision would be refreshed in the same instant,
    which is a load no audience makes."""
    step = ALLOWED_SECONDS / len(credentials)
    started = time.monotonic()
    for number, credential in enumerate(credentials):
        time.sleep(max(0.0, started + number * step - time.monotonic()))
        with urllib.request.urlopen(f"{base}/hls/{credential}/{STREAM}/{segment}", timeout=10) as response:  # noqa: S310
            response.read()


def gate_questions(guichet: GunicornServer) -> int:
    """Requests to the gate so far, from gunicorn's access log (nginx's cache misses)."""
    log = guichet.log_path.with_name("guichet-access.log")
    return log.read_text().count("/auth ") if log.exists() else 0


def measure(name: str, base: str, script: Path, args: argparse.Namespace, nginx: Nginx, guichet: GunicornServer) -> Run:
    assert guichet.process is not None
    workers, nginx_workers = children_of(guichet.process.pid), children_of(nginx.process.pid)
    asked_before, cpu_before, nginx_before = gate_questions(guichet), cpu_seconds(workers), cpu_seconds(nginx_workers)
    result = run_wrk(base, script, args.viewers, args.seconds)
    return Run(
        name=name,
        segments_per_s=result["rate"],
        requests=result["requests"],
        non_2xx=result["non_2xx"],
        socket_errors=result["socket_errors"],
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        guichet_questions=gate_questions(guichet) - asked_before,
        guichet_cpu=cpu_seconds(workers) - cpu_before,
        nginx_cpu=cpu_seconds(nginx_workers) - nginx_before,
        seconds=args.seconds,
    )


# --------------------------------------------------------------------------- report


def report(runs: list[Run], args: argparse.Namespace, pg_version: str, segment_names: list[str]) -> None:
    gated = [run for run in runs if run.name == "gated"]
    ungated = [run for run in runs if run.name == "no gate"]
    gated_rate = sum(run.segments_per_s for run in gated) / len(gated)
    ungated_rate = sum(run.segments_per_s for run in ungated) / len(ungated)
    ratio = gated_rate / ungated_rate
    cores = len(os.sched_getaffinity(0))
    print()
    print(f"Streaming gate benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    system = f"{platform.system()} {platform.release()}"
    print(f"  machine        {cpu_model()}, {os.cpu_count()} cores ({cores} usable), {system}")
    print(
        f"  python         {platform.python_version()}; Flask {package_version('flask')}, "
        f"gunicorn {package_version('gunicorn')}"
    )
    print(f"  database       PostgreSQL {pg_version} on {HOST} (database {DATABASE})")
    print(f"  Guichet        gunicorn -w {args.workers} -k {args.worker_class}, production config")
    print(f"  nginx          {nginx_version()}, {args.nginx_workers} worker process(es); README's cached auth_request")
    print(f"                 (allowed decisions kept {ALLOWED_SECONDS} s, refusals 1 min)")
    files = f"{len(segment_names)} files of {args.segment_kib} KiB"
    print(f"  load           wrk, {args.viewers} viewers: one thread and one connection each, its own credential;")
    print(f"                 every request a segment ({files}); {args.seconds} s per run")
    print()
    print("Runs (n = segments answered)")
    for run in runs:
        per_viewer = (
            f"; Guichet was asked {run.guichet_questions} times (once per viewer every "
            f"{run.seconds * args.viewers / run.guichet_questions:.1f} s) and used {run.guichet_cpu:.2f} CPU-s"
            if run.name == "gated" and run.guichet_questions
            else ""
        )
        print(
            f"  {run.name:<8} {run.segments_per_s:>9,.0f} segments/s   "
            f"p50 {run.p50_ms:7.2f} ms   p99 {run.p99_ms:7.2f} ms   "
            f"(n = {run.requests:,}; non-2xx {run.non_2xx}; socket errors {run.socket_errors})"
        )
        nginx_per_segment = run.nginx_cpu * 1e6 / max(1, run.requests)
        print(f"           nginx used {nginx_per_segment:.0f} us of CPU per segment{per_viewer}")
    print()
    print(f"  gated / no gate   {gated_rate:,.0f} / {ungated_rate:,.0f} segments/s = {ratio:.0%}")
    print(f"  target            >= {TARGET_RATIO:.0%}: {verdict(ratio >= TARGET_RATIO)}")
    if any(run.non_2xx for run in runs):
        print("  WARNING: some answers were not 200: the figures include refusals or errors")


# --------------------------------------------------------------------------- main


def main() -> int:
    cores = len(os.sched_getaffinity(0))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=200, help="viewers, one connection each (default 200)")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each run (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each configuration, alternating (default 2)")
    # 2-second segments (README's hls_fragment) of a 2 Mbit/s stream.
    parser.add_argument("--segment-kib", type=int, default=512, help="size of a segment (default 512 KiB)")
    parser.add_argument("--segments", type=int, default=6, help="segments in the playlist (default 6)")
    parser.add_argument("--nginx-workers", type=int, default=cores, help=f"nginx worker processes (default {cores})")
    parser.add_argument(
        "--workers", type=int, default=2 * cores + 1, help=f"gunicorn workers (default 2 x cores + 1 = {2 * cores + 1})"
    )
    parser.add_argument(
        "--worker-class", default=DEPLOYED_WORKER, help=f"gunicorn worker class (default {DEPLOYED_WORKER})"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    for tool in (str(NGINX), shutil.which("wrk")):
        if not tool or not Path(tool).exists():
            print("needs nginx and wrk: apt-get install nginx wrk", file=sys.stderr)
            return 2

    print(f"preparing database {DATABASE} ({args.viewers} viewers) ...", flush=True)
    pg_version = empty_database(SERVER_URL, DATABASE)["server_version"].split()[0]
    with tempfile.TemporaryDirectory(prefix="guichet-bench-stream-") as scratch:
        root = Path(scratch)
        environ = production_environ(root / "instance", DATABASE_URL, TICKETING_RATELIMIT_ENABLED="false")
        os.environ.update(environ)
        from config import ProductionConfig
        from ticketing import create_app

        seeded = seed(create_app(ProductionConfig(environ)), args.viewers)
        segment_names = write_hls(root / "hls", args.segments, args.segment_kib * 1024)
        guichet = GunicornServer(
            "guichet",
            "wsgi:app",
            ROOT,
            environ,
            root / "gunicorn.log",
            ["-w", str(args.workers), "-k", args.worker_class, "--log-level", "warning"]
            + ["--access-logfile", str(root / "guichet-access.log")],
        )
        port = free_port()
        nginx: Nginx | None = None
        runs: list[Run] = []
        try:
            guichet.start()
            guichet.wait_ready(expected_workers=args.workers)
            config = NGINX_CONF.format(
                # Started as root, nginx's workers would read the scratch folder as nobody.
                user=f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else "",
                nginx_workers=args.nginx_workers,
                root=root,
                host=HOST,
                port=port,
                app_port=guichet.port,
                organizer_id=seeded.organizer_id,
                allowed_seconds=ALLOWED_SECONDS,
            )
            nginx = Nginx(root, config)
            base = f"http://{HOST}:{port}"
            first = f"/{seeded.credentials[0]}/{STREAM}/{segment_names[0]}"
            nginx.wait_ready(base + "/plain" + first)
            nginx.wait_ready(base + "/hls" + first)  # the gate answered 204 through nginx
            scripts = {
                "no gate": wrk_script(root, "/plain/", seeded.credentials, segment_names),
                "gated": wrk_script(root, "/hls/", seeded.credentials, segment_names),
            }
            print("warming up (2 s each) ...", flush=True)
            for script in scripts.values():
                run_wrk(base, script, args.viewers, 2)
            for round_number in range(args.rounds):
                for name, script in scripts.items():
                    print(f"round {round_number + 1}/{args.rounds}: {name} ...", flush=True)
                    if name == "gated":  # the decisions aged out during the other run
                        stagger_decisions(base, seeded.credentials, segment_names[0])
                    runs.append(measure(name, base, script, args, nginx, guichet))
        finally:
            if nginx is not None:
                nginx.stop()
            guichet.stop()
    report(runs, args, pg_version, segment_names)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
    except (RunBroken, sa.exc.OperationalError, subprocess.CalledProcessError) as error:
        print(f"\nthe run broke: {error}", file=sys.stderr)
        sys.exit(2)
