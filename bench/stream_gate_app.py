"""The app the streaming-gate benchmark serves: Guichet itself plus one bare route.

``GET /bench/bare`` answers 204 and does nothing else; it goes through the same Flask
app, the same after-request hooks and the same gunicorn, so the ratio between it and
``GET /stream/auth`` is the cost of the gate's own work (parse, HMAC, one lookup).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Response  # noqa: E402

from ticketing import create_app  # noqa: E402
from ticketing.extensions import limiter  # noqa: E402

app = create_app()


@limiter.exempt
def bare() -> Response:
    return Response(status=204)


app.add_url_rule("/bench/bare", "bench_bare", bare)
