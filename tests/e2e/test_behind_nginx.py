"""Rate limits behind a real nginx, configured as README's deployment section says.

Two clients connect to nginx from two loopback addresses (127.0.0.2 and 127.0.0.3); nginx
forwards to Guichet with ``X-Forwarded-For: $proxy_add_x_forwarded_for``. With
``TICKETING_TRUSTED_PROXIES=1`` each client has its own bucket, and a client that sends
its own ``X-Forwarded-For`` still lands in its real one. nginx is started here and stopped
by the pid this module started.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import IN_CI, make_app
from tests.e2e.conftest import dispose
from tests.e2e.test_stream import NGINX, _stop, free_port, port_answers, wait_until

PAIRING = "/api/v1/checkin/devices/pair"  # "10 per minute" per client
LIMIT = 10

NGINX_CONF = """
daemon off;
master_process on;
worker_processes 1;
user root;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{app_port};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


@pytest.fixture
def nginx_port(sqlite_url: str, tmp_path: Path) -> Iterator[int]:
    if not NGINX.exists():
        if IN_CI:
            pytest.fail(f"CI=true: this test must run, but {NGINX} is missing", pytrace=False)
        pytest.skip(f"{NGINX} is missing (apt-get install nginx)")
    app = make_app(tmp_path / "instance", sqlite_url, TICKETING_TRUSTED_PROXIES="1")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, name="guichet-behind-nginx", daemon=True)
    serving.start()
    root = tmp_path / "nginx"
    (root / "tmp").mkdir(parents=True)
    port = free_port()
    config = root / "nginx.conf"
    config.write_text(NGINX_CONF.format(root=root, port=port, app_port=server.server_port))
    nginx = subprocess.Popen(
        [str(NGINX), "-p", str(root), "-c", str(config), "-e", str(root / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: port_answers(port), "nginx to listen")
        yield port
    finally:
        _stop(nginx)
        server.shutdown()
        serving.join(timeout=10)
        server.server_close()
        dispose(app)


def pair_from(port: int, source: str, forwarded_for: str | None = None) -> int:
    """One pairing attempt through nginx, connecting from the loopback address ``source``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    headers = {"Content-Type": "application/json"}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    try:
        connection.request("POST", PAIRING, body=json.dumps({}), headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.e2e
def test_two_clients_behind_nginx_have_their_own_buckets(nginx_port: int) -> None:
    first = [pair_from(nginx_port, "127.0.0.2") for _ in range(LIMIT + 1)]

    second = pair_from(nginx_port, "127.0.0.3")
    first_pretending = pair_from(nginx_port, "127.0.0.2", forwarded_for="127.0.0.9")

    assert first == [422] * LIMIT + [429]
    assert second == 422
    assert first_pretending == 429
