"""Small factories for the privacy tests: a purchase through the API, and a look at the vault."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient


def buy(client: FlaskClient, event: Any, email: str, quantity: int = 1, **person: str) -> dict[str, Any]:
    response = client.post(
        "/api/v1/orders",
        json={
            "event_id": str(event.id),
            "items": [{"ticket_type_id": str(event.type_id), "quantity": quantity}],
            "email": email,
            **person,
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def erase_by_api(client: FlaskClient, order: dict[str, Any]):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/privacy/erasure?order={order['code']}",
        headers={"Authorization": f"Bearer {order['access_token']}"},
    )


def export_by_api(client: FlaskClient, order: dict[str, Any]):  # type: ignore[no-untyped-def]
    return client.get(
        f"/api/v1/privacy/export?order={order['code']}",
        headers={"Authorization": f"Bearer {order['access_token']}"},
    )


def order_path(order: dict[str, Any]) -> str:
    return f"/orders/{order['code']}/{order['access_token']}"


def held_records(app: Flask, email: str) -> list[Any]:
    """The live person records of this address (one per order), oldest first."""
    from ticketing.extensions import db, keyring
    from ticketing.privacy.vault import email_indexes, find_person_ids

    with app.app_context():
        found = find_person_ids(db.session, email_indexes(keyring(), email))
        db.session.rollback()
        return found
