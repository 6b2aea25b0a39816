"""The gunicorn worker README deploys: gunicorn's sync worker, closing at once what it can.

Since gunicorn 26, a sync worker ends every connection the RFC 9112 (9.6) way: it shuts
down writing, then reads until the client closes (up to 2 s), so that request bytes left
unread in the kernel cannot turn the close into a reset that erases the answer. A sync
worker answers with ``Connection: close`` and serves one connection at a time, so it then
sits until the peer has been scheduled, has read the answer and has closed: one more
wakeup and wait on every request, and for the streaming gate that is every playlist and
segment of every viewer. On 2 shared cores, in paired runs, a bare WSGI app under
gunicorn answered a third or more requests per second without that wait, and the gate's
p99 under ``bench/stream_gate.py``'s load was a fifth lower.

This worker keeps gunicorn's way where it protects something: when request bytes are
still unread (a body the app did not read, a pipelined request), gunicorn closes as it
always does. Otherwise the answer has been sent and nothing is left to reset it, so the
connection is closed at once. Behind nginx, which sends one request per upstream
connection and nothing after it, that is every request it forwards.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from gunicorn.workers.sync import SyncWorker as GunicornSyncWorker


def nothing_unread(client: socket.socket) -> bool:
    """True when the kernel holds no request byte the app has not read (or the peer has
    closed): a close now sends FIN, never RST."""
    if isinstance(client, ssl.SSLSocket):
        return False  # TLS records may be pending: gunicorn's way
    try:
        return client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return True
    except OSError:
        return False


class SyncWorker(GunicornSyncWorker):
    """``gunicorn -k ticketing.serving.SyncWorker``: gunicorn's sync worker, and after an
    answer with nothing left unread, the connection closed at once.

    gunicorn's ``handle`` still ends with its graceful close; on a socket closed here that
    finds nothing to shut down and returns (tests/test_serving.py runs both cases under a
    real gunicorn).
    """

    def handle_request(self, listener: Any, req: Any, client: socket.socket, addr: Any) -> None:
        super().handle_request(listener, req, client, addr)
        if nothing_unread(client):
            client.close()
