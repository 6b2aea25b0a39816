"""Rate limits key on the real client behind the proxies in front (``TICKETING_TRUSTED_PROXIES``),
and a client cannot choose its bucket by sending ``X-Forwarded-For`` itself.

The Flask test client connects from 127.0.0.1: here that address plays the proxy, and the
``X-Forwarded-For`` header is what the proxy (nginx: ``$proxy_add_x_forwarded_for``) sends.
``tests/e2e/test_behind_nginx.py`` runs the same through a real nginx.
"""

from __future__ import annotations

import pytest
import redis

import config
from tests.conftest import app_on, published_event

PAIRING = "/api/v1/checkin/devices/pair"  # "10 per minute" per client, no CSRF token to fetch
LIMIT = 10


def pair_from(client, forwarded_for: str | None):  # type: ignore[no-untyped-def]
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    return client.post(PAIRING, json={}, headers=headers)


def use_up(client, forwarded_for: str | None) -> None:  # type: ignore[no-untyped-def]
    statuses = {pair_from(client, forwarded_for).status_code for _ in range(LIMIT)}
    assert statuses == {422}


@pytest.fixture
def behind_one_proxy(database, tmp_path):  # type: ignore[no-untyped-def]
    yield from app_on(database, tmp_path / "proxied", TICKETING_TRUSTED_PROXIES="1")


def test_two_clients_behind_one_proxy_have_separate_buckets(behind_one_proxy):
    client = behind_one_proxy.test_client()
    use_up(client, "203.0.113.1")

    first_again = pair_from(client, "203.0.113.1")
    second = pair_from(client, "203.0.113.2")

    assert first_again.status_code == 429
    assert second.status_code == 422


def test_behind_a_proxy_a_client_cannot_pick_its_bucket_by_sending_the_header(behind_one_proxy):
    """nginx appends the address it saw; only that last entry is believed."""
    client = behind_one_proxy.test_client()
    use_up(client, "203.0.113.1")

    spoofed = pair_from(client, "198.51.100.9, 203.0.113.1")

    assert spoofed.status_code == 429


def test_without_trusted_proxies_the_header_is_ignored(app):
    client = app.test_client()
    use_up(client, "203.0.113.1")

    other_header = pair_from(client, "203.0.113.2")
    no_header = pair_from(client, None)

    assert other_header.status_code == no_header.status_code == 429


def payment_url(app, forwarded_proto: str) -> str:  # type: ignore[no-untyped-def]
    event = published_event(app)
    placed = app.test_client().post(
        "/api/v1/orders",
        headers={"X-Forwarded-Proto": forwarded_proto},
        json={
            "event_id": str(event.id),
            "email": "a@example.org",
            "items": [{"ticket_type_id": str(event.type_id), "quantity": 1}],
        },
    )
    return placed.get_json()["payment"]["url"]


def test_behind_a_proxy_links_take_the_scheme_the_proxy_saw(behind_one_proxy, app):
    assert payment_url(behind_one_proxy, "https").startswith("https://localhost/pay/demo/")
    assert payment_url(app, "https").startswith("http://localhost/pay/demo/")


def test_the_limiter_storage_holds_no_client_address(database, tmp_path):
    """The keyed hash of the address stays: Redis sees neither the proxy's address nor the client's."""
    store = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    marker = "203.0.113.77"
    for application in app_on(
        database,
        tmp_path / "redis",
        TICKETING_TRUSTED_PROXIES="1",
        TICKETING_RATELIMIT_STORAGE_URL="redis://127.0.0.1:6379/0",
    ):
        client = application.test_client()
        before = set(store.keys("LIMITS*"))

        answers = [pair_from(client, marker).status_code for _ in range(2)]

        written = set(store.keys("LIMITS*")) - before
        assert answers == [422, 422]
        assert written, "the limiter wrote nothing to Redis: the check below would prove nothing"
        assert not any(marker.encode() in key or b"127.0.0.1" in key for key in written)
        store.delete(*written)


@pytest.mark.parametrize("value", ["-1", "6", "one"])
def test_a_trusted_proxy_count_out_of_range_is_refused(tmp_path, value):
    with pytest.raises(config.ConfigError, match="TICKETING_TRUSTED_PROXIES"):
        config.DevelopmentConfig({"TICKETING_INSTANCE_PATH": str(tmp_path), "TICKETING_TRUSTED_PROXIES": value})
