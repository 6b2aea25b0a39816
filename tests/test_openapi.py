"""The OpenAPI document at /api/v1/openapi.json matches the routes the app really serves."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.conftest import make_app, make_organizer

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
IGNORED_METHODS = {"HEAD", "OPTIONS"}


def served_operations(app) -> set[tuple[str, str]]:
    """(path in OpenAPI spelling, method) for every URL rule under /api/v1."""
    operations = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") and rule.rule != "/api/v1":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - IGNORED_METHODS:
            operations.add((path, method.lower()))
    return operations


def described_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item if method in HTTP_METHODS}


def text_alternative(schema: dict[str, Any]) -> dict[str, Any]:
    """The string alternative of an optional field (``anyOf: [string, null]``)."""
    return next(option for option in schema.get("anyOf", [schema]) if option.get("type") == "string")


def document(client) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_every_api_route_is_described(app, client):
    doc = document(client)

    missing = served_operations(app) - described_operations(doc)

    assert not missing, f"routes served but not described: {sorted(missing)}"


def test_everything_described_is_served(app, client):
    doc = document(client)

    extra = described_operations(doc) - served_operations(app)

    assert not extra, f"described but not served: {sorted(extra)}"


def test_the_api_has_the_routes_the_issue_names(app):
    operations = served_operations(app)

    assert {
        ("/api/v1/events", "get"),
        ("/api/v1/events/{event_id}", "get"),
        ("/api/v1/orders", "post"),
        ("/api/v1/orders/{code}", "get"),
        ("/api/v1/openapi.json", "get"),
    } <= operations


def test_document_is_structurally_openapi_3(client):
    doc = document(client)

    assert re.fullmatch(r"3\.\d+\.\d+", doc["openapi"])
    assert doc["info"]["title"] and doc["info"]["version"]
    assert isinstance(doc["paths"], dict) and doc["paths"]
    for path, item in doc["paths"].items():
        assert path.startswith("/"), path
        operations = {method: op for method, op in item.items() if method in HTTP_METHODS}
        assert operations, f"{path} has no operation"
        assert set(item) <= HTTP_METHODS | {"parameters", "summary", "description", "servers", "$ref"}
        for method, operation in operations.items():
            responses = operation["responses"]
            assert responses, f"{method} {path} has no responses"
            for status, response in responses.items():
                assert re.fullmatch(r"[1-5](\d\d|XX)|default", status), f"{method} {path}: {status}"
                assert "description" in response or "$ref" in response


def test_every_path_parameter_is_declared(client):
    doc = document(client)

    for path, item in doc["paths"].items():
        templated = set(re.findall(r"\{([^}]+)\}", path))
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            declared = {
                p["name"] for p in item.get("parameters", []) + operation.get("parameters", []) if p.get("in") == "path"
            }
            assert declared == templated, f"{method} {path}: declared {declared}, templated {templated}"


def test_every_ref_resolves_to_a_component(client):
    doc = document(client)

    found = refs(doc)

    assert found, "the document uses no $ref at all"
    for ref in found:
        assert ref.startswith("#/components/"), ref
        target = resolve(doc, ref)
        assert isinstance(target, dict) and target


def test_security_schemes_used_are_defined(client):
    doc = document(client)

    schemes = doc["components"]["securitySchemes"]
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            for requirement in operation.get("security", []):
                assert set(requirement) <= set(schemes), f"{method} {path}: {requirement}"


def test_problem_schema_names_the_problem_details_fields(client):
    doc = document(client)

    problem = doc["components"]["schemas"]["Problem"]

    assert {"type", "title", "status", "detail", "code"} <= set(problem["required"])
    assert "errors" in problem["properties"]


def test_order_input_schema_matches_what_the_api_accepts(client):
    doc = document(client)

    order_input = doc["components"]["schemas"]["OrderInput"]

    assert set(order_input["required"]) == {"event_id", "items", "email"}
    assert set(order_input["properties"]) == {"event_id", "items", "email", "name", "postcode"}
    assert order_input["properties"]["email"]["maxLength"] == 254
    assert text_alternative(order_input["properties"]["name"])["maxLength"] == 200
    assert text_alternative(order_input["properties"]["postcode"])["maxLength"] == 16


# --- the document agrees with what the API answers ----------------------------------------


def responses_of(doc: dict[str, Any], path: str, method: str) -> set[str]:
    return set(doc["paths"][path][method]["responses"])


def concrete(path: str) -> str:
    """A documented path with every parameter filled (ids are UUIDs, codes order codes)."""
    return re.sub(r"\{([^}]+)\}", lambda m: "ABCDE-FGHJK" if m[1] == "code" else str(uuid.uuid4()), path)


def test_options_lists_the_methods_the_document_gives_each_path(client):
    doc = document(client)

    for path, item in doc["paths"].items():
        documented = {method.upper() for method in item if method in HTTP_METHODS}
        expected = documented | {"OPTIONS"} | ({"HEAD"} if "GET" in documented else set())

        response = client.options(concrete(path))

        assert set(response.headers["Allow"].split(", ")) == expected, path


def test_the_pairing_path_answers_405_to_delete(client):
    response = client.delete("/api/v1/checkin/devices/pair", headers={"Authorization": "Bearer x"})

    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert "DELETE" not in response.headers["Allow"]


def test_stream_name_may_be_null_in_the_document_as_in_the_api(app, client):
    with app.app_context():
        _organizer, token = make_organizer()
    event = client.post(
        "/api/v1/events",
        json={"title": "Sans flux", "starts_at": "2030-02-01T20:00:00Z", "ends_at": "2030-02-01T22:00:00Z"},
        headers={"Authorization": f"Bearer {token}"},
    ).get_json()
    doc = document(client)

    created = doc["paths"]["/api/v1/events"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    stream_name = resolve(doc, created["$ref"])["properties"]["stream_name"]

    assert event["stream_name"] is None
    assert "null" in (stream_name["type"] if isinstance(stream_name["type"], list) else [stream_name["type"]])


def test_conflicts_and_rate_limits_that_happen_are_documented(app, client):
    with app.app_context():
        _organizer, token = make_organizer()
    headers = {"Authorization": f"Bearer {token}"}
    window = {"starts_at": "2030-02-01T20:00:00Z", "ends_at": "2030-02-01T22:00:00Z"}
    first = client.post("/api/v1/events", json={"title": "A", "stream_name": "gala", **window}, headers=headers)
    cancelled = client.post("/api/v1/events", json={"title": "B", **window}, headers=headers).get_json()
    client.post(f"/api/v1/events/{cancelled['id']}/cancel", headers=headers)
    answers = {
        ("/api/v1/events", "post"): client.post(
            "/api/v1/events", json={"title": "C", "stream_name": "gala", **window}, headers=headers
        ),
        ("/api/v1/events/{event_id}/ticket-types", "post"): client.post(
            f"/api/v1/events/{cancelled['id']}/ticket-types",
            json={"name": "Plein", "price_cents": 100, "capacity": 5},
            headers=headers,
        ),
        ("/api/v1/checkin/devices/pair", "post"): [
            client.post("/api/v1/checkin/devices/pair", json={"pairing_code": "NOPE-NOPE"}) for _ in range(11)
        ][-1],
    }
    doc = document(client)

    assert first.status_code == 201
    assert {operation: response.status_code for operation, response in answers.items()} == {
        ("/api/v1/events", "post"): 409,
        ("/api/v1/events/{event_id}/ticket-types", "post"): 409,
        ("/api/v1/checkin/devices/pair", "post"): 429,
    }
    for (path, method), response in answers.items():
        assert str(response.status_code) in responses_of(doc, path, method), (path, method)


# A valid body for each operation that takes one, so that the request reaches the database.
VALID_BODIES = {
    ("/api/v1/events", "post"): {"title": "A", "starts_at": "2030-02-01T20:00:00Z", "ends_at": "2030-02-01T22:00:00Z"},
    ("/api/v1/events/{event_id}", "patch"): {"title": "B"},
    ("/api/v1/events/{event_id}/ticket-types", "post"): {"name": "Plein", "price_cents": 100, "capacity": 5},
    ("/api/v1/events/{event_id}/ticket-types/{ticket_type_id}", "patch"): {"capacity": 6},
    ("/api/v1/orders", "post"): {
        "event_id": str(uuid.uuid4()),
        "email": "a@example.org",
        "items": [{"ticket_type_id": str(uuid.uuid4()), "quantity": 1}],
    },
    ("/api/v1/checkin/devices", "post"): {"name": "Door", "event_ids": [str(uuid.uuid4())]},
    ("/api/v1/checkin/devices/pair", "post"): {"pairing_code": "ABCD-EFGH"},
    ("/api/v1/checkin", "post"): {"code": "GT1.x.y", "request_id": "r1"},
    ("/api/v1/checkin/sync", "post"): {"scans": [{"code": "x", "request_id": "r", "scanned_at": "2030-01-01T00:00Z"}]},
}
DATABASE_DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2"


def test_with_the_database_down_every_operation_answers_a_documented_503(tmp_path):
    client = make_app(tmp_path, DATABASE_DOWN).test_client()
    doc = document(client)
    answered = {}

    for path, item in doc["paths"].items():
        for method in set(item) & HTTP_METHODS:
            response = client.open(
                concrete(path) + ("?order=ABCDE-FGHJK" if "privacy" in path else ""),
                method=method.upper(),
                json=VALID_BODIES.get((path, method)),
                headers={"Authorization": "Bearer some-token"},
            )
            answered[(path, method)] = response.status_code
            assert str(response.status_code) in responses_of(doc, path, method), (path, method, response.status_code)

    assert {operation for operation, status in answered.items() if status != 503} == {("/api/v1/openapi.json", "get")}


def test_a_route_without_a_declared_operation_stops_the_document(app):
    from ticketing.openapi import build_document

    app.add_url_rule("/api/v1/undeclared", "undeclared", lambda: "")

    with pytest.raises(LookupError, match="undeclared"):
        build_document(app)
