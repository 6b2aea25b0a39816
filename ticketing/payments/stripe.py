"""Stripe Checkout, refunds and webhook verification through the official SDK.

Stripe gets what a payment needs and nothing more: amounts, currency, what is bought, and
the order id in metadata. No name, postcode or email is sent and no Customer is created;
Checkout asks the buyer for the email it wants for its own receipt.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import stripe

from ticketing.checkout.models import Order
from ticketing.errors import Unavailable
from ticketing.web import external_url

log = logging.getLogger(__name__)

CHECKOUT_ORIGIN = "https://checkout.stripe.com"
# Stripe refuses a Checkout Session that expires sooner than 30 minutes after it is made.
STRIPE_MINIMUM_SESSION = dt.timedelta(minutes=45)
STRIPE_MAXIMUM_SESSION = dt.timedelta(hours=23, minutes=30)


class PaymentProviderError(Unavailable):
    code = "payment_provider_unavailable"
    title = "Payment provider unavailable"


class WebhookRejected(Exception):
    """Unsigned, wrongly signed, stale or malformed: answered 400, nothing changes."""


@dataclass(frozen=True)
class RefundResult:
    provider_ref: str
    status: str  # succeeded, pending or failed, in Stripe's words
    failure: str | None = None


@dataclass(frozen=True)
class CheckoutSession:
    session_id: str
    url: str


def session_expiry(order: Order) -> dt.datetime:
    """The hold's end, kept within what Stripe accepts.

    Computed from the order alone, so a retried request sends the very same parameters
    with the same idempotency key. A session may outlive a short hold; a payment that then
    arrives is handled like any late payment (tickets if still there, else a refund).
    """
    earliest = order.created_at + STRIPE_MINIMUM_SESSION
    latest = order.created_at + STRIPE_MAXIMUM_SESSION
    return min(max(order.hold_expires_at, earliest), latest)


def _fee_label(locale: str) -> str:
    return "Frais de service" if locale == "fr" else "Service fee"


class StripeProvider:
    name = "stripe"

    def __init__(self, secret_key: str, webhook_secret: str, api_base: str | None, tolerance: int = 300) -> None:
        base_addresses: dict[str, str] = {}
        if api_base:
            base_addresses = {"api": api_base, "files": api_base, "connect": api_base}
        self.client = stripe.StripeClient(secret_key, base_addresses=base_addresses, max_network_retries=1)  # type: ignore[arg-type]
        self.webhook_secret = webhook_secret
        self.tolerance = tolerance
        self.is_test_mode = secret_key.startswith(("sk_test_", "rk_test_"))

    def start(self, order: Order, access_token: str) -> str:
        """A local address that makes the Checkout Session when the buyer goes there.

        Creating it lazily keeps the order page from calling Stripe on every view.
        """
        return external_url("payments.stripe_checkout", code=order.code, token=access_token)

    def create_checkout_session(self, order: Order, access_token: str) -> CheckoutSession:
        currency = order.currency.lower()
        line_items: list[dict[str, Any]] = [
            {
                "quantity": line.quantity,
                "price_data": {
                    "currency": currency,
                    "unit_amount": line.unit_price_cents,
                    "product_data": {"name": f"{order.event.title} — {line.ticket_type.name}"},
                },
            }
            for line in order.lines
            if line.unit_price_cents > 0
        ]
        if order.fee_cents > 0:
            line_items.append(
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency,
                        "unit_amount": order.fee_cents,
                        "product_data": {"name": _fee_label(order.locale)},
                    },
                }
            )
        order_page = external_url("checkout.order_page", code=order.code, token=access_token)
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": line_items,
            "currency": currency,
            "expires_at": int(session_expiry(order).timestamp()),
            "success_url": order_page + "?payment=returned",
            "cancel_url": order_page + "?payment=cancelled",
            "metadata": {"order_id": str(order.id)},
            "payment_intent_data": {"metadata": {"order_id": str(order.id)}},
            "customer_creation": "if_required",
            "locale": order.locale if order.locale in ("en", "fr") else "auto",
        }
        try:
            created = self.client.v1.checkout.sessions.create(
                params,  # type: ignore[arg-type]
                options={"idempotency_key": f"guichet-checkout-{order.id}"},
            )
        except stripe.StripeError as error:
            log.warning("order %s: Stripe refused the checkout session (%s)", order.code, type(error).__name__)
            raise PaymentProviderError(_payment_unavailable()) from None
        if not created.url:
            raise PaymentProviderError(_payment_unavailable())
        return CheckoutSession(created.id, created.url)

    def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        try:
            found = self.client.v1.checkout.sessions.retrieve(session_id)
        except stripe.StripeError as error:
            raise PaymentProviderError(f"Stripe did not answer ({type(error).__name__})") from None
        return found.to_dict()

    def refund(self, payment_ref: str, amount_cents: int, refund_key: str, order_id: str) -> RefundResult:
        """Refund through Stripe; the key makes a retried call land on the same refund."""
        try:
            made = self.client.v1.refunds.create(
                {"payment_intent": payment_ref, "amount": amount_cents, "metadata": {"order_id": order_id}},
                options={"idempotency_key": refund_key},
            )
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as error:
            # Stripe may or may not have it: the same key next time finds out.
            raise PaymentProviderError(f"Stripe did not answer ({type(error).__name__})") from None
        except stripe.StripeError as error:
            code = getattr(error, "code", None) or type(error).__name__
            return RefundResult("", "failed", str(code)[:200])
        failure = getattr(made, "failure_reason", None)
        return RefundResult(made.id, str(made.status), str(failure) if failure else None)

    def verify_webhook(self, payload: bytes, signature: str | None) -> Mapping[str, Any]:
        """The event, if Stripe signed this exact payload recently; else ``WebhookRejected``."""
        if not signature:
            raise WebhookRejected("no Stripe-Signature header")
        # The SDK's own check (signature and timestamp tolerance), then a plain JSON parse:
        # the SDK's construct_event also builds StripeObjects, which cost more than the
        # rest of the webhook's Python, only for us to turn them back into dicts.
        try:
            stripe.WebhookSignature.verify_header(payload, signature, self.webhook_secret, self.tolerance)
        except stripe.SignatureVerificationError:
            raise WebhookRejected("bad or stale signature") from None
        except UnicodeDecodeError:
            raise WebhookRejected("malformed payload") from None
        try:
            body = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            raise WebhookRejected("malformed payload") from None
        if (
            not isinstance(body, Mapping)
            or not isinstance(body.get("id"), str)
            or not isinstance(body.get("type"), str)
        ):
            raise WebhookRejected("not an event")
        data = body.get("data")
        if not isinstance(data, Mapping) or not isinstance(data.get("object"), Mapping):
            raise WebhookRejected("event without data.object")
        return body


def _payment_unavailable() -> str:
    from flask_babel import gettext as _

    return _("The payment service is not answering. Your tickets are still held; try again in a minute.")
