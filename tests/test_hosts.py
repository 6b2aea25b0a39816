"""Links in mails and redirects never follow a Host header that a client chose.

Without ``TICKETING_BASE_URL`` (development, tests) links are built from the request's
host, so the app answers only the hosts of ``TICKETING_ALLOWED_HOSTS``; with it, links
name it whatever the request said; production refuses to start without it.
"""

from __future__ import annotations

import email
import re
from pathlib import Path

import pytest

import config
from tests.conftest import CSRF_FIELD, make_app, outbox, published_event

VICTIM = "victim@example.org"
ANY_LINK = re.compile(r"https?://[^\s\"'<>]+")


def mail_texts(app, before: int = 0) -> list[str]:  # type: ignore[no-untyped-def]
    """The text of every mail in the outbox after the first ``before``, all parts."""
    texts = []
    for path in outbox(app)[before:]:
        message = email.message_from_bytes(path.read_bytes())
        texts.append(
            "\n".join(
                part.get_payload(decode=True).decode()
                for part in message.walk()
                if part.get_content_type() in ("text/plain", "text/html")
            )
        )
    return texts


def victim_has_ordered(app, client) -> None:  # type: ignore[no-untyped-def]
    event = published_event(app, price_cents=0, fee_cents=0)
    placed = client.post(
        "/api/v1/orders",
        json={
            "event_id": str(event.id),
            "email": VICTIM,
            "items": [{"ticket_type_id": str(event.type_id), "quantity": 1}],
        },
    )
    assert placed.status_code == 201


FORM_PAGE = {"/orders/find": "/orders/find", "/privacy/request": "/privacy"}


def post_form_as(client, host_url: str, path: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    """What an attacker does: load the form's page and send it, both to the host they chose."""
    page = client.get(FORM_PAGE[path], base_url=host_url)
    token = CSRF_FIELD.search(page.get_data(as_text=True))
    return client.post(path, base_url=host_url, data={"csrf_token": token.group(1) if token else "", **data})


@pytest.mark.parametrize("path", ["/orders/find", "/privacy/request"])
def test_a_foreign_host_header_gets_no_link_to_it_mailed_to_the_victim(app, client, path):
    victim_has_ordered(app, client)
    before = len(outbox(app))

    page = client.get(FORM_PAGE[path], base_url="http://evil.example")
    answer = post_form_as(app.test_client(), "http://evil.example", path, {"email": VICTIM})

    assert not any("evil.example" in text for text in mail_texts(app))
    assert len(outbox(app)) == before
    assert page.status_code == answer.status_code == 400
    assert "evil.example" not in answer.get_data(as_text=True)


def test_a_foreign_host_is_refused_in_the_api_with_a_problem(app, client):
    answer = client.get("/api/v1/events", base_url="http://evil.example")

    assert answer.status_code == 400
    assert answer.get_json()["code"] == "unknown_host"


@pytest.mark.parametrize("host_url", ["http://localhost:5000", "http://127.0.0.1:8080", "http://[::1]:5000"])
def test_allowed_hosts_are_answered_on_any_port_and_their_links_name_them(app, client, host_url):
    victim_has_ordered(app, client)
    before = len(outbox(app))

    answer = post_form_as(app.test_client(), host_url, "/privacy/request", {"email": VICTIM})

    assert answer.status_code == 200, answer.get_data(as_text=True)
    [text] = mail_texts(app, before)
    links = ANY_LINK.findall(text)
    assert links and all(link.startswith(host_url + "/") for link in links)


def test_the_allowed_hosts_setting_replaces_the_default_list(database, tmp_path):
    app = make_app(tmp_path / "lan", database, TICKETING_ALLOWED_HOSTS="guichet.lan, 192.168.1.10")
    client = app.test_client()

    statuses = [client.get("/", base_url=url).status_code for url in ("http://guichet.lan:5000", "http://localhost")]

    assert statuses == [200, 400]


def test_with_a_base_url_links_name_it_whatever_host_the_request_named(database, tmp_path):
    app = make_app(tmp_path / "based", database, TICKETING_BASE_URL="https://tickets.example.org/")
    client = app.test_client()
    victim_has_ordered(app, client)
    before = len(outbox(app))

    answer = post_form_as(client, "http://evil.example", "/orders/find", {"email": VICTIM})

    assert answer.status_code == 200
    [text] = mail_texts(app, before)
    links = ANY_LINK.findall(text)
    assert links and all(link.startswith("https://tickets.example.org/orders/") for link in links)


def test_production_refuses_to_start_without_a_base_url_and_names_it(tmp_path: Path):
    from tests.test_security import production_environ

    environ = production_environ(tmp_path)
    del environ["TICKETING_BASE_URL"]

    with pytest.raises(config.ConfigError, match="production mode needs TICKETING_BASE_URL; it is not set"):
        config.ProductionConfig(environ)


@pytest.mark.parametrize("value", ["tickets.example.org", "ftp://tickets.example.org", "https://example.org/tickets"])
def test_a_base_url_that_is_not_a_site_address_is_refused(tmp_path: Path, value: str):
    with pytest.raises(config.ConfigError, match="TICKETING_BASE_URL"):
        config.DevelopmentConfig({"TICKETING_INSTANCE_PATH": str(tmp_path), "TICKETING_BASE_URL": value})


@pytest.mark.parametrize("value", ["http://localhost", "localhost:5000", "evil example"])
def test_an_allowed_host_that_is_not_a_host_name_is_refused(tmp_path: Path, value: str):
    with pytest.raises(config.ConfigError, match="TICKETING_ALLOWED_HOSTS"):
        config.DevelopmentConfig({"TICKETING_INSTANCE_PATH": str(tmp_path), "TICKETING_ALLOWED_HOSTS": value})


@pytest.mark.parametrize(
    ("listen", "host_url"), [("192.168.1.10", "http://192.168.1.10:5000"), ("fe80::1", "http://[fe80::1]:5000")]
)
def test_the_demo_answers_the_address_it_was_told_to_listen_on(app, runner, listen, host_url):
    result = runner.invoke(args=["demo", "--no-serve", "--host", listen])

    assert result.exit_code == 0, result.output
    assert app.test_client().get("/", base_url=host_url).status_code == 200
    assert app.test_client().get("/", base_url="http://evil.example").status_code == 400
