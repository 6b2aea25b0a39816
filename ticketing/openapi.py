"""The OpenAPI 3.1 document of ``/api/v1``, served at ``/api/v1/openapi.json``.

Nothing here is written by hand twice: each API view declares its operation with
``@operation`` (the schemas it reads and answers, from ``ticketing.schema`` and the
domains' ``schemas`` modules, and the problems it can answer), and apispec writes those
schemas as JSON Schema. The document is built from the app's own URL map, so a route
without a declaration stops the build instead of going undocumented. Imports no domain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import marshmallow as ma
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import Blueprint, Flask, Response, current_app, jsonify
from werkzeug.routing import Rule

from ticketing.schema import Problem

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

API_PREFIX = "/api/v1/"
JSON = "application/json"
RULE_ARGUMENT = re.compile(r"<(?:(?P<converter>[^:<>]+):)?(?P<name>[^<>]+)>")
PROBLEM = "application/problem+json"
View = TypeVar("View", bound=Callable[..., Any])

SECURITY_SCHEMES = {
    "organizerToken": "an organiser's API token, from `flask create-organizer`",
    "orderToken": "an order's access_token, answered once when the order is placed",
    "myDataToken": "the token of an emailed my-data link (POST /privacy/request)",
    "deviceToken": "a door device's token, from POST /api/v1/checkin/devices/pair",
}


@dataclass(frozen=True)
class Operation:
    """What a view reads and answers, for the document.

    ``answers`` maps each success status to a schema (or None for no body) and a
    description; ``problems`` maps each error status the view itself can answer to a
    description. Those every operation shares are added from the other fields: 400, 413
    and 422 with a ``body``, 401 with ``security``, 429 when ``rate_limited``, 503 when it
    touches the database.
    """

    summary: str
    answers: Mapping[int, tuple[ma.Schema | None, str]]
    body: ma.Schema | None = None
    query: ma.Schema | None = None
    problems: Mapping[int, str] = field(default_factory=dict)
    security: Sequence[str] = ()
    rate_limited: bool = False
    database: bool = True
    description: str | None = None
    body_media_type: str = JSON

    def problem_responses(self) -> dict[int, str]:
        shared: dict[int, str] = {}
        if self.body is not None:
            shared[400] = "The body is not JSON, or not sent as `Content-Type: application/json`"
            shared[413] = "The body is too large"
            shared[422] = "Invalid fields: `errors` maps each refused field to its message"
        if self.security:
            shared[401] = "Missing or invalid token"
        if self.rate_limited:
            shared[429] = "Too many requests from this client: wait and try again"
        if self.database:
            shared[503] = "`database_unavailable`: nothing was recorded, try again (see `Retry-After`)"
        return {**shared, **self.problems}


def operation(
    summary: str,
    *,
    answers: Mapping[int, tuple[ma.Schema | None, str]],
    body: ma.Schema | None = None,
    query: ma.Schema | None = None,
    problems: Mapping[int, str] | None = None,
    security: Sequence[str] = (),
    rate_limited: bool = False,
    database: bool = True,
    description: str | None = None,
    body_media_type: str = JSON,
) -> Callable[[View], View]:
    """Declare a view's operation; the view itself is returned unchanged. ``body_media_type``
    is ``multipart/form-data`` for a file upload, JSON otherwise."""
    declared = Operation(
        summary, answers, body, query, problems or {}, security, rate_limited, database, description, body_media_type
    )

    def mark(view: View) -> View:
        view.openapi_operation = declared  # type: ignore[attr-defined]
        return view

    return mark


def _schema_name(schema: Any) -> str:
    """Component names: the class name, or its ``partial_name`` when loaded partially (PATCH)."""
    schema_class = resolve_schema_cls(schema)
    if isinstance(schema, ma.Schema) and schema.partial and getattr(schema_class, "partial_name", None):
        return schema_class.partial_name
    return schema_class.__name__


def _custom_field(self: Any, field: ma.fields.Field, **kwargs: Any) -> dict[str, Any]:
    """Fields of ``ticketing.schema`` state what they accept themselves (``json_schema``)."""
    json_schema = getattr(field, "json_schema", None)
    return json_schema() if json_schema is not None else {}


def _openapi_path(rule: Rule) -> tuple[str, list[dict[str, Any]]]:
    """``/events/<event_id>`` as ``/events/{event_id}``, with its path parameters. Ids are
    UUIDs (anything else is a 404)."""
    parameters = []
    for argument in RULE_ARGUMENT.finditer(rule.rule):
        name = argument["name"]
        is_uuid = argument["converter"] == "uuid" or name.endswith("_id")
        schema = {"type": "string", "format": "uuid"} if is_uuid else {"type": "string"}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return RULE_ARGUMENT.sub(lambda m: "{" + m["name"] + "}", rule.rule), parameters


def _content(media_type: str, schema: Any) -> dict[str, Any]:
    return {media_type: {"schema": schema}}


def _operation_object(declared: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (schema, description) in sorted(declared.answers.items()):
        responses[str(status)] = {"description": description}
        if schema is not None:
            responses[str(status)]["content"] = _content(JSON, schema)
    for status, description in sorted(declared.problem_responses().items()):
        responses[str(status)] = {"description": description, "content": _content(PROBLEM, "Problem")}
    found: dict[str, Any] = {"summary": declared.summary, "responses": responses}
    if declared.description:
        found["description"] = declared.description
    if declared.security:
        found["security"] = [{scheme: []} for scheme in declared.security]
    if declared.query is not None:
        found["parameters"] = [{"in": "query", "schema": declared.query}]
    if declared.body is not None:
        found["requestBody"] = {"required": True, "content": _content(declared.body_media_type, declared.body)}
    return found


def build_document(app: Flask) -> dict[str, Any]:
    """The document of every ``/api/v1`` route of ``app``; a route without ``@operation``
    raises, naming it."""
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(
        title="Guichet API",
        version="1",
        openapi_version="3.1.0",
        plugins=[plugin],
        info={"description": "Ethical ticketing. Errors are RFC 9457 problem details with a stable `code`."},
    )
    assert plugin.converter is not None
    plugin.converter.add_attribute_function(_custom_field)
    spec.components.schema("Problem", schema=Problem)
    for name, description in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, {"type": "http", "scheme": "bearer", "description": description})
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        if not rule.rule.startswith(API_PREFIX):
            continue
        declared = getattr(app.view_functions[rule.endpoint], "openapi_operation", None)
        if declared is None:
            raise LookupError(f"{rule.endpoint} ({rule.rule}) declares no @operation for the OpenAPI document")
        path, parameters = _openapi_path(rule)
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        operations = {method.lower(): _operation_object(declared) for method in methods}
        spec.path(path=path, operations=operations, parameters=parameters or None)
    return spec.to_dict()


@bp.get("/openapi.json")
@operation("This document", answers={200: (None, "The OpenAPI 3.1 document")}, database=False)
def openapi_document() -> Response:
    document = current_app.extensions.get("guichet.openapi")
    if document is None:
        document = current_app.extensions["guichet.openapi"] = build_document(current_app)
    return jsonify(document)
