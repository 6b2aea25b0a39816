"""Production never sells through the demo provider, whose "payment" is a button, unless
the operator states that the instance is a test one; such an instance says so on every page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import config
from tests.conftest import CSRF_FIELD, make_event
from tests.test_security import production_environ
from ticketing import create_app
from ticketing.extensions import db

SITE = "https://tickets.example.org"
BANNER = "Test mode: payments are simulated and no money moves."


def without_stripe(tmp_path: Path, **changes: str) -> dict[str, str]:
    environ = production_environ(tmp_path, **changes)
    del environ["STRIPE_SECRET_KEY"], environ["STRIPE_WEBHOOK_SECRET"]
    return environ


def test_production_without_stripe_keys_refuses_to_start_and_says_how(tmp_path):
    with pytest.raises(config.ConfigError) as refused:
        config.ProductionConfig(without_stripe(tmp_path))

    assert "STRIPE_SECRET_KEY" in str(refused.value)
    assert "TICKETING_ALLOW_DEMO_PAYMENTS=true" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_production_refuses_the_demo_provider_named_explicitly(tmp_path):
    with pytest.raises(config.ConfigError, match="TICKETING_ALLOW_DEMO_PAYMENTS"):
        config.ProductionConfig(production_environ(tmp_path, TICKETING_PAYMENT_PROVIDER="demo"))


@pytest.mark.parametrize("value", ["", "false", "0"])
def test_anything_but_an_explicit_yes_keeps_the_demo_provider_out_of_production(tmp_path, value):
    with pytest.raises(config.ConfigError, match="TICKETING_ALLOW_DEMO_PAYMENTS"):
        config.ProductionConfig(without_stripe(tmp_path, TICKETING_ALLOW_DEMO_PAYMENTS=value))


def test_development_keeps_the_demo_provider_without_being_asked(tmp_path):
    settings = config.DevelopmentConfig({"TICKETING_INSTANCE_PATH": str(tmp_path)})

    assert settings.PAYMENT_PROVIDER == "demo"


def test_a_production_test_instance_shows_the_test_banner_on_every_page(tmp_path, sqlite_template):
    database = tmp_path / "prod.sqlite3"
    shutil.copy(sqlite_template, database)
    app = create_app(
        config.ProductionConfig(
            without_stripe(
                tmp_path, TICKETING_ALLOW_DEMO_PAYMENTS="true", TICKETING_DATABASE_URL=f"sqlite:///{database}"
            )
        )
    )
    with app.app_context():
        event = make_event()
        event_id, type_id = str(event.id), str(event.ticket_types[0].id)
    client = app.test_client()
    placed = client.post(
        "/api/v1/orders",
        base_url=SITE,
        json={"event_id": event_id, "email": "a@example.org", "items": [{"ticket_type_id": type_id, "quantity": 1}]},
    ).get_json()
    event_page = client.get(f"/events/{event_id}", base_url=SITE)
    csrf = CSRF_FIELD.search(event_page.get_data(as_text=True)).group(1)

    pages = {
        "events": client.get("/", base_url=SITE),
        "event": event_page,
        "event with errors": client.post(
            f"/events/{event_id}/orders", base_url=SITE, data={"csrf_token": csrf, "email": "not an address"}
        ),
        "order": client.get(placed["payment"]["url"].replace("/pay/demo/", "/orders/"), base_url=SITE),
        "demo payment": client.get(placed["payment"]["url"], base_url=SITE),
        "find my orders": client.get("/orders/find", base_url=SITE),
        "privacy": client.get("/privacy", base_url=SITE),
        "not found": client.get("/no-such-page", base_url=SITE),
    }

    assert placed["payment"]["provider"] == "demo"
    assert {name: page.status_code for name, page in pages.items()} == {
        "events": 200,
        "event": 200,
        "event with errors": 422,
        "order": 200,
        "demo payment": 200,
        "find my orders": 200,
        "privacy": 200,
        "not found": 404,
    }
    assert [name for name, page in pages.items() if BANNER not in page.get_data(as_text=True)] == []
    with app.app_context():
        db.engine.dispose()
