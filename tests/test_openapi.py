"""The OpenAPI document at /api/v1/openapi.json matches the routes the app really serves."""

from __future__ import annotations

import re
from typing import Any

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
    assert order_input["properties"]["name"]["maxLength"] == 200
    assert order_input["properties"]["postcode"]["maxLength"] == 16
