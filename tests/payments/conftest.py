"""A local Stripe: pytest-httpserver answering the endpoints Guichet uses with objects
shaped like Stripe's documented ones, and recording what the SDK really sent.

It keeps Stripe's idempotency rule: a request repeating an ``Idempotency-Key`` gets the
first response back, so a retried call never makes a second object.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.conftest import app_on

WEBHOOK_SECRET = "whsec_test_guichet"


def unflatten(body: str) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0][c]=v``) back into nested dicts."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return result


@dataclass
class FakeStripe:
    server: HTTPServer
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    by_key: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    refund_status: str = "succeeded"
    refund_error: dict[str, Any] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: itertools.count = field(default_factory=itertools.count)

    @property
    def base(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def sent(self, method: str, path: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        return [(headers, body) for m, p, headers, body in self.requests if m == method and p == path]

    def _remember(self, request: Request) -> tuple[str | None, dict[str, Any]]:
        body = unflatten(request.get_data(as_text=True))
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self.lock:
            self.requests.append((request.method, request.path, headers, body))
        return headers.get("idempotency-key"), body

    def _answer(self, key: str | None, make: Any) -> Response:
        with self.lock:
            if key and key in self.by_key:
                status, payload = self.by_key[key]
            else:
                status, payload = make()
                if key:
                    self.by_key[key] = (status, payload)
        return Response(json.dumps(payload), status=status, content_type="application/json")

    def create_session(self, request: Request) -> Response:
        key, body = self._remember(request)

        def make() -> tuple[int, dict[str, Any]]:
            session_id = f"cs_test_{next(self.counter)}{uuid.uuid4().hex[:12]}"
            items = body.get("line_items", {})
            total = sum(int(i["price_data"]["unit_amount"]) * int(i["quantity"]) for i in items.values())
            session = {
                "id": session_id,
                "object": "checkout.session",
                "amount_subtotal": total,
                "amount_total": total,
                "currency": body.get("currency"),
                "customer": None,
                "customer_email": None,
                "expires_at": int(body["expires_at"]),
                "livemode": False,
                "metadata": body.get("metadata", {}),
                "mode": "payment",
                "payment_intent": None,
                "payment_status": "unpaid",
                "status": "open",
                "success_url": body.get("success_url"),
                "cancel_url": body.get("cancel_url"),
                "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            }
            self.sessions[session_id] = session
            return 200, session

        return self._answer(key, make)

    def get_session(self, request: Request) -> Response:
        self._remember(request)
        session_id = request.path.rsplit("/", 1)[-1]
        session = self.sessions.get(session_id)
        if session is None:
            error = {"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such"}}
            return Response(json.dumps(error), status=404, content_type="application/json")
        return Response(json.dumps(session), status=200, content_type="application/json")

    def create_refund(self, request: Request) -> Response:
        key, body = self._remember(request)

        def make() -> tuple[int, dict[str, Any]]:
            if self.refund_error is not None:
                return 400, {"error": self.refund_error}
            refund_id = f"re_test_{next(self.counter)}{uuid.uuid4().hex[:12]}"
            refund = {
                "id": refund_id,
                "object": "refund",
                "amount": int(body["amount"]),
                "currency": "eur",
                "payment_intent": body.get("payment_intent"),
                "metadata": body.get("metadata", {}),
                "status": self.refund_status,
                "failure_reason": "expired_or_canceled_card" if self.refund_status == "failed" else None,
            }
            self.refunds[refund_id] = refund
            return 200, refund

        return self._answer(key, make)

    def complete(self, session_id: str, payment_intent: str = "pi_test_1") -> dict[str, Any]:
        """What Stripe's session looks like once the buyer paid."""
        session = self.sessions[session_id]
        session.update(status="complete", payment_status="paid", payment_intent=payment_intent)
        return session


@pytest.fixture
def fake_stripe(httpserver: HTTPServer) -> FakeStripe:
    fake = FakeStripe(httpserver)
    httpserver.expect_request("/v1/checkout/sessions", method="POST").respond_with_handler(fake.create_session)
    httpserver.expect_request(re.compile(r"^/v1/checkout/sessions/[^/]+$"), method="GET").respond_with_handler(
        fake.get_session
    )
    httpserver.expect_request("/v1/refunds", method="POST").respond_with_handler(fake.create_refund)
    return fake


def _stripe_app(database: str, instance: Path, fake_stripe: FakeStripe, **overrides: str):  # type: ignore[no-untyped-def]
    return app_on(
        database,
        instance,
        STRIPE_SECRET_KEY="sk_test_guichet",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=fake_stripe.base,
        TICKETING_BASE_URL="https://tickets.example.org",
        **overrides,
    )


@pytest.fixture
def stripe_app(database: str, tmp_path: Path, fake_stripe: FakeStripe, app_environ: dict[str, str]):  # type: ignore[no-untyped-def]
    yield from _stripe_app(database, tmp_path / "instance", fake_stripe, **app_environ)


def sign(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header exactly as Stripe makes it."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def stripe_event(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> str:
    return json.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex}",
            "object": "event",
            "api_version": "2024-06-20",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
            "data": {"object": obj},
        }
    )


def deliver(client, payload: str, signature: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/json", "Stripe-Signature": signature or sign(payload)}
    return client.post("/payments/stripe/webhook", data=payload, headers=headers)
