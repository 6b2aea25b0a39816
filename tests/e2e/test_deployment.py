"""The deployment kit, stood up on loopback with the real programs: nginx with
``deploy/nginx/guichet.conf`` (TLS with a certificate made here, HTTP/2), two gunicorn
instances of the app with ``deploy/gunicorn.conf.py`` as its upstreams, PostgreSQL, Redis
for the rate limits, an SMTP server, and the background worker.

Through nginx: a flash sale across both instances, with one instance killed (SIGKILL) in
the middle of it; a rate limit counted across both instances and keyed on each client's
own address; the tickets mails sent by the worker; request logs without a token or an
address. Everything started here is stopped by the pid this test started.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from config import ProductionConfig
from tests.conftest import IN_CI, PG_URL, self_signed_certificate
from tests.e2e.test_mail_smtp import CollectingHandler
from tests.e2e.test_stream import NGINX, _stop, free_port, port_answers, wait_until
from ticketing.crypto.keys import key_environ

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
REDIS_URL = "redis://127.0.0.1:6379/7"  # a database of its own, emptied first
CAPACITY = 40
BUYERS = 30
ORDERS_PER_BUYER = 3
PAIRING = "/api/v1/checkin/devices/pair"  # "10 per minute" per client
PAIRING_LIMIT = 10

pytestmark = pytest.mark.e2e

NGINX_CONF = """
daemon off;
master_process on;
worker_processes 2;
user root;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    include {root}/guichet.conf;
}}
"""


def _skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true: the deployment test must run, but {reason}", pytrace=False)
    pytest.skip(reason)


def render_site(root: Path, https_port: int, http_port: int, app_ports: list[int], cert: Path, key: Path) -> str:
    """``deploy/nginx/guichet.conf`` with this machine's ports, paths and certificate: only
    the values an administrator replaces change; every directive is the shipped one."""
    site = (DEPLOY / "nginx" / "guichet.conf").read_text()
    replacements = {
        "    server 127.0.0.1:8000 max_fails=1 fail_timeout=5s;": "\n".join(
            f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in app_ports
        ),
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "    listen [::]:443 ssl http2;\n": "",
        "    listen [::]:80;\n": "",
        "/etc/letsencrypt/live/tickets.example.org/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/tickets.example.org/privkey.pem": str(key),
        "/var/log/nginx/": f"{root}/",
        "/srv/guichet/app/static/": f"{ROOT}/static/",
        "/var/www/letsencrypt": f"{root}/acme",
        "/etc/nginx/snippets/guichet-proxy.conf": str(DEPLOY / "nginx" / "guichet-proxy.conf"),
    }
    for shipped, here in replacements.items():
        assert shipped in site, f"deploy/nginx/guichet.conf no longer has {shipped!r}"
        site = site.replace(shipped, here)
    return site


@dataclass
class Stack:
    url_port: int
    root: Path
    environ: dict[str, str]
    database_url: str
    smtp: CollectingHandler
    apps: list[subprocess.Popen[bytes]]
    worker: subprocess.Popen[bytes]
    event_id: str = ""
    free_type: str = ""
    paid_event_id: str = ""
    paid_type: str = ""
    logs: list[Path] = field(default_factory=list)


def _database(url: str) -> Iterator[str]:
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"{admin.url.database}_deploy"
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _flask(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _seed(environ: dict[str, str]) -> tuple[str, str, str, str]:
    """An organiser and two events on sale, written through the app's own services."""
    from ticketing import create_app
    from ticketing.catalog import services
    from ticketing.extensions import db
    from ticketing.models import utcnow

    app = create_app(ProductionConfig(environ))
    now = utcnow()
    ids = []
    with app.app_context():
        organizer, _token = services.create_organizer(db.session, "Salle du déploiement", now)
        for title, price in (("Free rehearsal", 0), ("Paid concert", 1500)):
            event = services.create_event(
                db.session,
                organizer,
                {
                    "title": title,
                    "starts_at": now + dt.timedelta(days=5),
                    "ends_at": now + dt.timedelta(days=5, hours=2),
                },
                now,
            )
            ticket_type = services.add_ticket_type(
                db.session, event, {"name": "Place", "price_cents": price, "capacity": CAPACITY}, now
            )
            services.publish_event(db.session, event, now)
            ids += [str(event.id), str(ticket_type.id)]
        db.session.remove()
        db.engine.dispose()
    return ids[0], ids[1], ids[2], ids[3]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    if not NGINX.exists():
        _skip_or_fail(f"{NGINX} is missing (apt-get install nginx)")
    if not PG_URL:
        _skip_or_fail("TICKETING_TEST_DATABASE_URL is not set")
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).flushdb()
    except redis.RedisError as error:
        _skip_or_fail(f"Redis does not answer on 127.0.0.1:6379 ({type(error).__name__})")
    handler = CollectingHandler()
    smtp = Controller(handler, hostname="127.0.0.1", port=free_port())
    smtp.start()
    database = _database(PG_URL)
    database_url = next(database)
    root = tmp_path / "deploy"
    (root / "tmp").mkdir(parents=True)
    (root / "acme").mkdir()
    https_port, http_port = free_port(), free_port()
    app_ports = [free_port(), free_port()]
    environ = {
        **key_environ(),
        "TICKETING_ENV": "production",
        "TICKETING_INSTANCE_PATH": str(root / "instance"),
        "TICKETING_DATABASE_URL": database_url,
        "TICKETING_BASE_URL": f"https://127.0.0.1:{https_port}",
        "TICKETING_TRUSTED_PROXIES": "1",
        "TICKETING_RATELIMIT_STORAGE_URL": REDIS_URL,
        "TICKETING_ALLOW_DEMO_PAYMENTS": "true",  # a test instance: nobody pays
        "TICKETING_PAYMENT_PROVIDER": "demo",
        "TICKETING_MAIL_DELIVERY": "worker",
        "TICKETING_SMTP_HOST": "127.0.0.1",
        "TICKETING_SMTP_PORT": str(smtp.port),
        "TICKETING_SMTP_STARTTLS": "false",
        "TICKETING_LOG_LEVEL": "WARNING",
    }
    migrated = _flask(environ, "db", "upgrade")
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    event_id, free_type, paid_event_id, paid_type = _seed(environ)
    cert, key = self_signed_certificate(root, "127.0.0.1")
    (root / "guichet.conf").write_text(render_site(root, https_port, http_port, app_ports, cert, key))
    (root / "nginx.conf").write_text(NGINX_CONF.format(root=root))
    apps = []
    logs = []
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for port in app_ports:
            log = root / f"gunicorn-{port}.log"
            logs.append(log)
            with log.open("wb") as output:
                apps.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "gunicorn",
                            "-c",
                            str(DEPLOY / "gunicorn.conf.py"),
                            "-b",
                            f"127.0.0.1:{port}",
                            "-w",
                            "2",
                            "wsgi:app",
                        ],  # fmt: skip
                        cwd=ROOT,
                        env={**os.environ, **environ},
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # SIGKILL reaches the master and its workers
                    )
                )
        processes += apps
        worker_log = root / "worker.log"
        logs.append(worker_log)
        with worker_log.open("wb") as output:
            worker = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--interval", "0.5"],
                cwd=ROOT,
                env={**os.environ, **environ},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(worker)
        nginx = subprocess.Popen(
            [str(NGINX), "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "nginx-error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        processes.append(nginx)
        for port in [*app_ports, https_port]:
            wait_until(lambda port=port: port_answers(port), f"port {port} to answer")
        wait_until(lambda: _get(https_port, "/healthz")[0] == 200, "the app's health through nginx")
        yield Stack(
            https_port, root, environ, database_url, handler, apps, worker,
            event_id, free_type, paid_event_id, paid_type, logs,
        )  # fmt: skip
    finally:
        for process in processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    _stop(process)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        smtp.stop()
        next(database, None)


def _connection(port: int, source: str = "127.0.0.1") -> http.client.HTTPSConnection:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the certificate was made by this test
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=context, source_address=(source, 0))


def _get(port: int, path: str) -> tuple[int, bytes]:
    connection = _connection(port)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        connection.close()


def _post(port: int, path: str, body: dict[str, Any], source: str) -> tuple[int, dict[str, Any]]:
    connection = _connection(port, source)
    try:
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        raw = response.read()
    except OSError:
        return 0, {}
    finally:
        connection.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, {}


def _rows(database_url: str, sql: str, **parameters: Any) -> list[Any]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(sql), parameters).all()
    finally:
        engine.dispose()


def test_the_deployment_kit_sells_through_nginx_across_two_app_servers_one_of_them_killed(stack: Stack) -> None:
    port = stack.url_port
    # A rate limit is counted across both instances (Redis) and keyed on the real client.
    pairing = [
        _post(port, PAIRING, {"pairing_code": "NOPE-NOPE-NOPE"}, "127.0.0.50")[0] for _ in range(PAIRING_LIMIT + 1)
    ]
    another_client = _post(port, PAIRING, {"pairing_code": "NOPE-NOPE-NOPE"}, "127.0.0.51")[0]
    assert pairing == [401] * PAIRING_LIMIT + [429]
    assert another_client == 401

    # The flash sale: free and paid tickets, one app server killed once it is under way.
    answers: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()
    started = threading.Barrier(BUYERS)
    killed = threading.Event()

    def buyer(n: int) -> None:
        source = f"127.0.1.{n + 1}"
        started.wait(timeout=30)
        for k in range(ORDERS_PER_BUYER):
            free = (n + k) % 2 == 0
            body = {
                "event_id": stack.event_id if free else stack.paid_event_id,
                "items": [{"ticket_type_id": stack.free_type if free else stack.paid_type, "quantity": 1}],
                "email": f"buyer{n}-{k}@example.org",
            }
            answer = _post(port, "/api/v1/orders", body, source)
            with lock:
                answers.append(answer)
                if len(answers) == BUYERS and not killed.is_set():
                    killed.set()
                    os.killpg(stack.apps[0].pid, signal.SIGKILL)

    threads = [threading.Thread(target=buyer, args=(n,)) for n in range(BUYERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert killed.is_set() and stack.apps[0].wait(timeout=10) == -signal.SIGKILL

    statuses = sorted({status for status, _body in answers})
    placed = {body["code"]: body["status"] for status, body in answers if status == 201}
    assert len(answers) == BUYERS * ORDERS_PER_BUYER
    assert set(statuses) <= {201, 409, 502}, statuses  # 502: a request the killed server had taken
    assert sum(1 for status, _ in answers if status == 201) > BUYERS, "nginx did not move on to the live server"

    # Nothing oversold; every order answered 201 is in the database as it was answered.
    stock = _rows(
        stack.database_url,
        "SELECT t.id, t.capacity, t.reserved, t.sold, "
        "(SELECT count(*) FROM ticket k WHERE k.ticket_type_id = t.id) AS tickets FROM ticket_type t",
    )
    for _type_id, capacity, reserved, sold, tickets in stock:
        assert reserved + sold <= capacity and tickets == sold
    stored = dict(_rows(stack.database_url, "SELECT code, status FROM orders"))
    assert {code: stored.get(code) for code in placed} == placed
    held = _rows(
        stack.database_url,
        "SELECT coalesce(sum(l.quantity), 0) FROM orders o JOIN order_line l ON l.order_id = o.id "
        "WHERE o.status = 'pending'",
    )[0][0]
    [(reserved_total,)] = _rows(stack.database_url, "SELECT sum(reserved) FROM ticket_type")
    assert reserved_total == held  # a request killed mid-way left no hold behind

    # Holds run out: the worker's job (run here by hand, as an operator would) gives them back.
    engine = sa.create_engine(stack.database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE orders SET hold_expires_at = now() - interval '1 minute' WHERE status = 'pending'")
        )
    engine.dispose()
    expired = _flask(stack.environ, "expire-holds")
    assert expired.returncode == 0, expired.stderr[-2000:]
    assert _rows(stack.database_url, "SELECT sum(reserved) FROM ticket_type")[0][0] == 0

    # The worker mails the tickets of every paid order, once.
    paid = {code for code, status in stored.items() if status == "paid"}
    wait_until(lambda: len(stack.smtp.envelopes) >= len(paid), f"{len(paid)} tickets mails", timeout=90)
    mailed = {code for message in stack.smtp.messages() for code in paid if code in str(message["Subject"])}
    assert mailed == paid and len(stack.smtp.envelopes) == len(paid)

    # nginx's request log holds neither a token nor a client's address.
    order_code = next(iter(placed))
    _get(port, f"/orders/{order_code}/not-the-real-token")
    access = (stack.root / "guichet.access.log").read_text()
    assert f"/orders/{order_code}/[token]" in access
    assert "not-the-real-token" not in access
    assert "127.0." not in access
