"""The API's field types say in the document exactly what they accept: what schemathesis
found where the two differed, each checked both ways (the API's answer, the document's
pattern)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.catalog.test_api import TICKET_TYPE, auth, create_event, event_body, organizer_token
from tests.test_openapi import document

RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


def alternatives(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return schema.get("anyOf", [schema])


def documented_text_accepts(schema: dict[str, Any], value: str) -> bool:
    """Whether a string alternative of ``schema`` takes ``value`` (length and pattern)."""
    return any(
        option.get("type") == "string"
        and len(value) <= option.get("maxLength", len(value))
        and (option.get("pattern") is None or re.search(option["pattern"], value) is not None)
        and ("enum" not in option or value in option["enum"])
        and (option.get("format") != "date-time" or RFC3339.fullmatch(value) is not None)
        for option in alternatives(schema)
    )


def test_a_ticket_type_name_padded_past_its_maximum_is_refused(app, client):
    token = organizer_token(app)
    event = create_event(client, token)
    doc = document(client)
    value = "   " + "x" * 98 + "   "

    response = client.post(
        f"/api/v1/events/{event['id']}/ticket-types", json={**TICKET_TYPE, "name": value}, headers=auth(token)
    )

    assert response.status_code == 422
    assert "name" in response.get_json()["errors"]
    assert not documented_text_accepts(doc["components"]["schemas"]["TicketTypeInput"]["properties"]["name"], value)


def test_a_blank_venue_past_its_maximum_is_refused_not_read_as_unset(app, client):
    token = organizer_token(app)
    doc = document(client)
    value = " " * 201

    response = client.post("/api/v1/events", json=event_body(venue_name=value), headers=auth(token))

    assert response.status_code == 422
    assert "venue_name" in response.get_json()["errors"]
    assert not documented_text_accepts(doc["components"]["schemas"]["EventInput"]["properties"]["venue_name"], value)


@pytest.mark.parametrize("value", ["", "   "], ids=["empty", "spaces"])
def test_a_blank_optional_time_reads_as_not_set_and_the_document_says_so(app, client, value):
    token = organizer_token(app)
    event = create_event(client, token)
    doc = document(client)

    response = client.post(
        f"/api/v1/events/{event['id']}/ticket-types", json={**TICKET_TYPE, "sale_starts_at": value}, headers=auth(token)
    )

    assert response.status_code == 201
    assert response.get_json()["sale_starts_at"] is None
    schema = doc["components"]["schemas"]["TicketTypeInput"]["properties"]["sale_starts_at"]
    assert documented_text_accepts(schema, value)
