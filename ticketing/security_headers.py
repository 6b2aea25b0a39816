"""The headers every response carries: a strict Content Security Policy, no framing,
no referrer, no sniffing, and no caching of pages that hold a secret link. Imports no
domain."""

from __future__ import annotations

from flask import Flask, Response, current_app, request

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; media-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Pages and API answers that show an order link, a payment page or personal data.
NEVER_STORED = ("/orders/", "/pay/", "/refunds/", "/api/v1/orders", "/privacy/my-data", "/api/v1/privacy")


def content_security_policy(app: Flask) -> str:
    """The strict policy; with Stripe, form-action also allows Stripe's checkout origin.

    Chromium applies form-action to every redirect that follows a form POST, so the 303
    from "Buy" (via /pay/stripe/...) to checkout.stripe.com is blocked without it.
    """
    if app.config.get("PAYMENT_PROVIDER") == "stripe":
        return CONTENT_SECURITY_POLICY.replace("form-action 'self'", "form-action 'self' https://checkout.stripe.com")
    return CONTENT_SECURITY_POLICY


def add_security_headers(response: Response) -> Response:
    """``after_request``: a view may set its own policy (the watch page names its stream origin)."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy(current_app))
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
    if request.path == "/door":
        # The scanner page reads QR codes from the camera; every other page keeps it off.
        headers["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=(), interest-cohort=()"
    if request.path.startswith(NEVER_STORED):
        headers["Cache-Control"] = "no-store"
    return response
