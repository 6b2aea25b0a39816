"""Payment providers behind one small interface (``checkout.services.PaymentStarter``).

- ``free``: an order totalling 0 is paid at once by ``checkout.place_order``; no provider
  is involved.
- ``demo``: the embedded default when no Stripe key is set. A local page confirms or
  cancels the payment; no money moves, and every page shows a "test mode" banner.

Stripe plugs in here as another provider (issue 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ticketing.checkout.models import Order
from ticketing.checkout.services import PaymentStarter
from ticketing.web import external_url


class DemoProvider:
    name = "demo"
    is_test_mode = True

    def start(self, order: Order, access_token: str) -> str:
        return external_url("payments.demo_checkout", code=order.code, token=access_token)


def provider_from_config(config: Mapping[str, Any]) -> PaymentStarter:
    providers: dict[str, PaymentStarter] = {"demo": DemoProvider()}
    return providers[config["PAYMENT_PROVIDER"]]
