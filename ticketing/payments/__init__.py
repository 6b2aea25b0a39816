"""Payment providers behind one small interface (``checkout.orders.PaymentStarter``).

- ``free``: an order totalling 0 is paid at once by ``checkout.place_order``; no provider
  is involved.
- ``demo``: the embedded default when no Stripe key is set. A local page confirms or
  cancels the payment; no money moves, and every page shows a "test mode" banner.

- ``stripe``: active when ``STRIPE_SECRET_KEY`` is set (``payments/stripe.py``).

Refunds go through ``refund()`` on the provider that took the money (``services``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ticketing.checkout.models import Order
from ticketing.checkout.orders import PaymentStarter
from ticketing.payments import models as _models  # noqa: F401  (tables known to metadata and Alembic)
from ticketing.payments.stripe import RefundResult, StripeProvider
from ticketing.web import external_url


class DemoProvider:
    name = "demo"
    is_test_mode = True

    def start(self, order: Order, access_token: str) -> str:
        return external_url("payments.demo_checkout", code=order.code, token=access_token)

    def refund(self, payment_ref: str, amount_cents: int, refund_key: str, order_id: str) -> RefundResult:
        """No money moved, so none goes back: the refund succeeds at once."""
        return RefundResult(f"demo-{refund_key}", "succeeded")


def provider_from_config(config: Mapping[str, Any]) -> PaymentStarter:
    if config["PAYMENT_PROVIDER"] == "stripe":
        return StripeProvider(
            config["STRIPE_SECRET_KEY"],
            config["STRIPE_WEBHOOK_SECRET"],
            config.get("STRIPE_API_BASE"),
            config.get("STRIPE_WEBHOOK_TOLERANCE", 300),
        )
    providers: dict[str, PaymentStarter] = {"demo": DemoProvider()}
    return providers[config["PAYMENT_PROVIDER"]]
