"""ticketing.serving.SyncWorker under a real gunicorn: it closes at once after an answer
with nothing unread, and keeps gunicorn's graceful close when request bytes are unread."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ticketing.serving import nothing_unread

ROOT = Path(__file__).resolve().parent.parent
LINGER_SECONDS = 2.0  # gunicorn's close_graceful: how long it waits for the client to close


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    """One worker, so a worker that waits on a client makes the next client wait too."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "1", "-k", "ticketing.serving.SyncWorker",
         "-b", f"127.0.0.1:{port}", "--log-level", "warning", "tests.serving_app:app"],
        cwd=ROOT, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"gunicorn did not start: {process.communicate()[1].decode()[-2000:]}")
            time.sleep(0.1)
    yield port
    process.terminate()
    _out, errors = process.communicate(timeout=30)
    assert b"Traceback" not in errors and b"[ERROR]" not in errors, errors.decode()


def _read_to_end(client: socket.socket) -> tuple[bytes, str]:
    """Everything the server sent, and how the connection ended: "eof" (FIN) or "reset"."""
    received = b""
    try:
        while chunk := client.recv(65536):
            received += chunk
    except ConnectionResetError:
        return received, "reset"
    return received, "eof"


def test_a_get_is_answered_and_the_worker_does_not_wait_for_the_client_to_close(server: int) -> None:
    first = socket.create_connection(("127.0.0.1", server))
    first.sendall(b"GET / HTTP/1.1\r\nHost: gate\r\n\r\n")
    answer, end = _read_to_end(first)
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"GET answered\n") and end == "eof"

    # The first client never closes. gunicorn's own sync worker would sit reading from it
    # for LINGER_SECONDS before taking the next connection; this one is free already.
    second = socket.create_connection(("127.0.0.1", server))
    second.settimeout(LINGER_SECONDS * 0.75)
    second.sendall(b"GET / HTTP/1.1\r\nHost: gate\r\n\r\n")
    try:
        answer, end = _read_to_end(second)
    except TimeoutError:
        pytest.fail("the worker waited for the first client to close before answering the second")
    assert answer.endswith(b"GET answered\n") and end == "eof"
    first.close()
    second.close()


def test_a_request_body_left_unread_gets_gunicorns_graceful_close_not_a_reset(server: int) -> None:
    body = b"x" * 32768  # in the kernel's buffers, never read by the app
    client = socket.create_connection(("127.0.0.1", server))
    client.sendall(b"POST / HTTP/1.1\r\nHost: gate\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    time.sleep(0.3)  # the answer and the close happen before the client reads anything

    answer, end = _read_to_end(client)

    assert answer.endswith(b"POST answered\n")
    assert end == "eof"  # closed with unread bytes, the kernel would have sent a reset
    client.close()


def test_nothing_unread_reads_the_kernel_buffer_without_consuming_it() -> None:
    server_side, client_side = socket.socketpair()
    with server_side, client_side:
        assert nothing_unread(server_side)
        client_side.sendall(b"more")
        assert not nothing_unread(server_side)
        assert server_side.recv(4) == b"more"  # a peek: still there to read
        client_side.shutdown(socket.SHUT_WR)
        assert nothing_unread(server_side)  # the peer has closed: a close sends no reset
