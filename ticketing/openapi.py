"""The OpenAPI 3 description of ``/api/v1``, served at ``/api/v1/openapi.json``.

Written by hand, next to nothing else, so that it stays readable; a test checks that
every API route is described here and that nothing described is missing from the app.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _ref("Problem")}}}


ORGANIZER = [{"organizerToken": []}]
ORDER_TOKEN = [{"orderToken": []}]
EVENT_ID = {"name": "event_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
TICKET_TYPE_ID = {
    "name": "ticket_type_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
ORDER_CODE = {"name": "code", "in": "path", "required": True, "schema": {"type": "string", "example": "K7Q2M-9XDAB"}}
PRIVACY_TOKEN = [{"orderToken": []}, {"myDataToken": []}]
PRIVACY_ORDER = {
    "name": "order",
    "in": "query",
    "required": False,
    "description": "The order code, when the bearer token is that order's access token.",
    "schema": {"type": "string", "example": "K7Q2M-9XDAB"},
}
PRIVACY_AUTH = (
    "`Authorization: Bearer <token>`: with `?order=<code>`, the token is that order's access token; "
    "without it, the token of an emailed my-data link (valid 30 minutes; an erasure uses it up)."
)
COMMON_ERRORS = {
    "400": _problem("Malformed JSON or wrong content type"),
    "422": _problem("Invalid fields; `errors` maps each field to its message"),
}
ORGANIZER_ERRORS = {
    **COMMON_ERRORS,
    "401": _problem("Missing or invalid organiser token"),
    "404": _problem("No such event (or not yours)"),
}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string", "description": "stable machine-readable code"},
            "errors": {"type": "object", "additionalProperties": {"type": "string"}},
            "available": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": "on sold_out: tickets left per ticket type",
            },
        },
    },
    "TicketType": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "name": {"type": "string"},
            "price_cents": {"type": "integer"},
            "fee_cents": {"type": "integer", "description": "service fee, shown separately"},
            "currency": {"type": "string"},
            "capacity": {"type": "integer"},
            "available": {"type": "integer"},
            "sale_state": {"type": "string", "enum": ["open", "not_yet", "ended", "sold_out", "unavailable"]},
            "sale_starts_at": {"type": "string", "format": "date-time", "nullable": True},
            "sale_ends_at": {"type": "string", "format": "date-time", "nullable": True},
            "max_per_order": {"type": "integer"},
            "refundable_until_hours": {
                "type": ["integer", "null"],
                "description": "Buyer refunds until this many hours before the event; null: none",
            },
            "grants": {"type": "array", "items": {"type": "string", "enum": ["entry", "stream"]}},
        },
    },
    "Event": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "venue": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "address": {"type": "string"}, "city": {"type": "string"}},
            },
            "starts_at": {"type": "string", "format": "date-time"},
            "ends_at": {"type": "string", "format": "date-time"},
            "doors_at": {"type": "string", "format": "date-time", "nullable": True},
            "timezone": {"type": "string", "example": "Europe/Paris"},
            "mode": {"type": "string", "enum": ["in_person", "livestream", "hybrid"]},
            "status": {"type": "string", "enum": ["draft", "published", "cancelled"]},
            "currency": {"type": "string", "example": "EUR"},
            "ask_name": {"type": "boolean"},
            "ask_postcode": {"type": "boolean"},
            "retention_days": {
                "type": "integer",
                "description": "days after the event ends before buyers' data is erased",
            },
            "ticket_types": {"type": "array", "items": _ref("TicketType")},
        },
    },
    "Poster": {
        "type": "object",
        "properties": {
            "version": {"type": "string", "description": "changes with each upload; image URLs carry it"},
            "alt": {"type": "string"},
            "images": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "width": {"type": "integer"},
                        "height": {"type": "integer"},
                        "url": {"type": "string", "format": "uri"},
                    },
                },
            },
            "srcset": {"type": "string"},
        },
    },
    "EventInput": {
        "type": "object",
        "description": "Times in ISO 8601; without an offset they are read in the event's time zone.",
        "properties": {
            "title": {"type": "string", "maxLength": 200},
            "description": {"type": "string", "maxLength": 10000},
            "venue_name": {"type": "string", "maxLength": 200},
            "venue_address": {"type": "string", "maxLength": 500},
            "venue_city": {"type": "string", "maxLength": 100, "description": "shown in the events list"},
            "starts_at": {"type": "string", "format": "date-time"},
            "ends_at": {"type": "string", "format": "date-time"},
            "doors_at": {"type": "string", "format": "date-time"},
            "timezone": {"type": "string"},
            "mode": {"type": "string", "enum": ["in_person", "livestream", "hybrid"]},
            "currency": {"type": "string"},
            "ask_name": {"type": "boolean", "default": False},
            "ask_postcode": {"type": "boolean", "default": False},
            "retention_days": {
                "type": "integer",
                "minimum": 0,
                "default": 30,
                "description": "Days after the event ends before its buyers' personal data is erased; "
                "at most TICKETING_MAX_RETENTION_DAYS (365 by default).",
            },
        },
    },
    "ErasureReceipt": {
        "type": "object",
        "required": ["receipt_id", "erased_at", "route", "orders_affected"],
        "properties": {
            "receipt_id": {"type": "string", "format": "uuid"},
            "erased_at": {"type": "string", "format": "date-time"},
            "route": {
                "type": "string",
                "enum": ["order_link", "email_link", "api_order_token", "api_email_token", "retention"],
            },
            "orders_affected": {"type": "integer"},
            "tickets_remain_valid": {"type": "boolean"},
            "detail": {"type": "string"},
        },
    },
    "PersonalDataExport": {
        "type": "object",
        "required": ["personal_data_held", "person", "orders", "tickets", "check_ins", "stream_sessions", "retention"],
        "properties": {
            "generated_at": {"type": "string", "format": "date-time"},
            "personal_data_held": {"type": "boolean"},
            "person": {
                "type": ["object", "null"],
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "email": {"type": "string"},
                    "name": {"type": ["string", "null"]},
                    "postcode": {"type": ["string", "null"]},
                },
            },
            "orders": {"type": "array", "items": {"type": "object"}},
            "tickets": {"type": "array", "items": {"type": "object"}},
            "check_ins": {"type": "array", "items": {"type": "object"}},
            "stream_sessions": {"type": "array", "items": {"type": "object"}},
            "retention": {"type": "object"},
            "erasure_receipt": {"oneOf": [{"$ref": "#/components/schemas/ErasureReceipt"}, {"type": "null"}]},
            "kept_after_erasure": {"type": "array", "items": {"type": "object"}},
        },
    },
    "TicketTypeInput": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 100},
            "price_cents": {"type": "integer", "minimum": 0},
            "fee_cents": {"type": "integer", "minimum": 0},
            "capacity": {"type": "integer", "minimum": 0},
            "sale_starts_at": {"type": "string", "format": "date-time"},
            "sale_ends_at": {"type": "string", "format": "date-time"},
            "max_per_order": {"type": "integer", "minimum": 1, "maximum": 50},
            "refundable_until_hours": {"type": "integer", "minimum": 0, "maximum": 8760},
            "position": {"type": "integer"},
            "grants": {"type": "array", "items": {"type": "string", "enum": ["entry", "stream"]}},
        },
    },
    "OrderInput": {
        "type": "object",
        "required": ["event_id", "items", "email"],
        "properties": {
            "event_id": {"type": "string", "format": "uuid"},
            "items": {
                "type": "array",
                "minItems": 1,
                "maxItems": 20,
                "items": {
                    "type": "object",
                    "required": ["ticket_type_id", "quantity"],
                    "properties": {
                        "ticket_type_id": {"type": "string", "format": "uuid"},
                        "quantity": {"type": "integer", "minimum": 1, "maximum": 50},
                    },
                },
            },
            "email": {"type": "string", "format": "email", "maxLength": 254},
            "name": {"type": "string", "maxLength": 200, "description": "only when the event asks for it"},
            "postcode": {"type": "string", "maxLength": 16, "description": "only when the event asks for it"},
        },
    },
    "PlacedOrder": {
        "type": "object",
        "properties": {
            "code": {"type": "string"},
            "access_token": {"type": "string", "description": "secret; shown once, keep it to read the order"},
            "status": {"type": "string", "enum": ["pending", "paid"]},
            "total_cents": {"type": "integer"},
            "fee_cents": {"type": "integer"},
            "currency": {"type": "string"},
            "hold_expires_at": {"type": "string", "format": "date-time", "nullable": True},
            "payment": {
                "type": "object",
                "properties": {
                    "provider": {"type": "string"},
                    "url": {"type": "string", "description": "where to send the buyer"},
                },
            },
        },
    },
    "Order": {
        "type": "object",
        "properties": {
            "code": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "paid", "expired", "cancelled"]},
            "event_id": {"type": "string", "format": "uuid"},
            "currency": {"type": "string"},
            "subtotal_cents": {"type": "integer"},
            "fee_cents": {"type": "integer"},
            "total_cents": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"},
            "paid_at": {"type": "string", "format": "date-time", "nullable": True},
            "hold_expires_at": {"type": "string", "format": "date-time", "nullable": True},
            "lines": {"type": "array", "items": {"type": "object"}},
            "tickets": {"type": "array", "items": {"type": "object"}},
        },
    },
}

PATHS: dict[str, Any] = {
    "/api/v1/events": {
        "get": {
            "summary": "Upcoming published events with availability",
            "responses": {
                "200": _json(
                    {"type": "object", "properties": {"events": {"type": "array", "items": _ref("Event")}}}, "Events"
                )
            },
        },
        "post": {
            "summary": "Create an event (draft)",
            "security": ORGANIZER,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("EventInput")}}},
            "responses": {"201": _json(_ref("Event"), "The new event"), **ORGANIZER_ERRORS},
        },
    },
    "/api/v1/events/{event_id}/poster": {
        "parameters": [EVENT_ID],
        "get": {
            "summary": "The event's poster: its images at each width, and a srcset",
            "responses": {"200": _json(_ref("Poster"), "The poster"), "404": _problem("No such event, or no poster")},
        },
        "put": {
            "summary": "Attach or replace the poster: resized into a few widths, metadata (EXIF, GPS) stripped",
            "security": ORGANIZER,
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["image"],
                            "properties": {
                                "image": {
                                    "type": "string",
                                    "format": "binary",
                                    "description": "JPEG, PNG or WebP, 10 MB",
                                },
                                "alt": {
                                    "type": "string",
                                    "maxLength": 300,
                                    "description": "text for who cannot see it",
                                },
                            },
                        }
                    }
                },
            },
            "responses": {"200": _json(_ref("Poster"), "The new poster"), **ORGANIZER_ERRORS},
        },
        "delete": {
            "summary": "Remove the poster",
            "security": ORGANIZER,
            "responses": {"204": {"description": "Removed"}, **ORGANIZER_ERRORS},
        },
    },
    "/api/v1/events/{event_id}": {
        "parameters": [EVENT_ID],
        "get": {
            "summary": "One published event with live availability per ticket type",
            "responses": {"200": _json(_ref("Event"), "The event"), "404": _problem("No such event")},
        },
        "patch": {
            "summary": "Change an event",
            "security": ORGANIZER,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("EventInput")}}},
            "responses": {
                "200": _json(_ref("Event"), "The event"),
                "409": _problem("Not changeable now"),
                **ORGANIZER_ERRORS,
            },
        },
    },
    "/api/v1/events/{event_id}/publish": {
        "parameters": [EVENT_ID],
        "post": {
            "summary": "Publish an event (it needs at least one ticket type)",
            "security": ORGANIZER,
            "responses": {
                "200": _json(_ref("Event"), "The event"),
                "409": _problem("Cannot be published"),
                **ORGANIZER_ERRORS,
            },
        },
    },
    "/api/v1/events/{event_id}/cancel": {
        "parameters": [EVENT_ID],
        "post": {
            "summary": "Cancel an event: tickets voided, buyers mailed a refund-or-donation choice",
            "security": ORGANIZER,
            "responses": {
                "200": _json(
                    {"type": "object"},
                    "The cancelled event, how many orders are owed a refund, and how many buyers this request "
                    "mailed (0 when a mail worker sends them)",
                ),
                "409": _problem("Already cancelled"),
                **ORGANIZER_ERRORS,
            },
        },
    },
    "/api/v1/events/{event_id}/refunds": {
        "parameters": [EVENT_ID],
        "get": {
            "summary": "The event's refunds and donations, failed ones first",
            "security": ORGANIZER,
            "responses": {"200": _json({"type": "object"}, "Refunds"), **ORGANIZER_ERRORS},
        },
    },
    "/api/v1/events/{event_id}/ticket-types": {
        "parameters": [EVENT_ID],
        "post": {
            "summary": "Add a ticket type",
            "security": ORGANIZER,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("TicketTypeInput")}}},
            "responses": {"201": _json(_ref("TicketType"), "The ticket type"), **ORGANIZER_ERRORS},
        },
    },
    "/api/v1/events/{event_id}/ticket-types/{ticket_type_id}": {
        "parameters": [EVENT_ID, TICKET_TYPE_ID],
        "patch": {
            "summary": "Change a ticket type (capacity never below what is sold or held)",
            "security": ORGANIZER,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("TicketTypeInput")}}},
            "responses": {
                "200": _json(_ref("TicketType"), "The ticket type"),
                "409": _problem("Capacity below sold"),
                **ORGANIZER_ERRORS,
            },
        },
    },
    "/api/v1/organizer/events": {
        "get": {
            "summary": "The organiser's own events, drafts included, with sold and held counts",
            "security": ORGANIZER,
            "responses": {
                "200": _json(
                    {"type": "object", "properties": {"events": {"type": "array", "items": _ref("Event")}}}, "Events"
                ),
                "401": _problem("Missing or invalid organiser token"),
            },
        },
    },
    "/api/v1/orders": {
        "post": {
            "summary": "Place an order: holds the tickets, returns the code, access token and payment link",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("OrderInput")}}},
            "responses": {
                "201": _json(_ref("PlacedOrder"), "The order"),
                "404": _problem("No such event"),
                "409": _problem("Sold out (with what is left) or event cancelled"),
                **COMMON_ERRORS,
            },
        },
    },
    "/api/v1/orders/{code}": {
        "parameters": [ORDER_CODE],
        "get": {
            "summary": "Read an order with its access token",
            "security": ORDER_TOKEN,
            "responses": {
                "200": _json(_ref("Order"), "The order"),
                "401": _problem("No token"),
                "404": _problem("No order for this code and token"),
            },
        },
    },
    "/api/v1/privacy/erasure": {
        "parameters": [PRIVACY_ORDER],
        "post": {
            "summary": "Erase the buyer's personal data (crypto-shredding); again gives the same receipt",
            "description": PRIVACY_AUTH,
            "security": PRIVACY_TOKEN,
            "responses": {
                "200": _json(_ref("ErasureReceipt"), "Erased (or already erased: the same receipt)"),
                "401": _problem("No token, a forged token, or an expired my-data link token"),
                "404": _problem("No order for this code and token"),
                "410": _problem("This my-data link token was already used"),
            },
        },
    },
    "/api/v1/privacy/export": {
        "parameters": [PRIVACY_ORDER],
        "get": {
            "summary": "Everything held about the buyer, decrypted, with retention and what erasure keeps",
            "description": PRIVACY_AUTH,
            "security": PRIVACY_TOKEN,
            "responses": {
                "200": _json(_ref("PersonalDataExport"), "The export"),
                "401": _problem("No token, a forged token, or an expired my-data link token"),
                "404": _problem("No order for this code and token"),
                "410": _problem("This my-data link token was already used"),
            },
        },
    },
    "/api/v1/openapi.json": {
        "get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1 document"}}},
    },
}

DEVICE = [{"deviceToken": []}]
DEVICE_ID = {"name": "device_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
SCAN_RESULT = {
    "type": "object",
    "properties": {
        "result": {
            "type": "string",
            "enum": ["admitted", "already_used", "voided", "wrong_event", "not_paid", "invalid", "unknown_ticket"],
        },
        "ticket_id": {"type": "string", "format": "uuid", "nullable": True},
        "ticket_type_id": {"type": "string", "format": "uuid", "nullable": True},
        "ticket_type": {"type": "string", "nullable": True, "description": "e.g. Child, VIP"},
        "checked_in_at": {"type": "string", "format": "date-time", "description": "admitted / already_used"},
        "gate": {"type": "string", "nullable": True, "description": "where it was admitted"},
        "reason": {"type": "string", "description": "invalid: unreadable, bad_signature, unknown_key, expired_key"},
    },
}
DEVICE_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "name": {"type": "string"},
        "event_ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
        "state": {"type": "string", "enum": ["waiting_for_pairing", "paired", "revoked"]},
    },
}
DEVICE_ERRORS = {"401": _problem("Missing, revoked or unknown device token")}

CHECKIN_PATHS: dict[str, Any] = {
    "/api/v1/checkin/keys": {
        "get": {
            "summary": "Public keys that verify ticket QR codes, current and retired (still accepted)",
            "responses": {"200": _json({"type": "object"}, "Keys: id, algorithm, public_key (base64url), expires_at")},
        },
    },
    "/api/v1/checkin/devices": {
        "post": {
            "summary": "Create a door device for some events; answers a one-time pairing code",
            "security": ORGANIZER,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["name", "event_ids"],
                            "properties": {
                                "name": {"type": "string"},
                                "event_ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
                            },
                        }
                    }
                },
            },
            "responses": {"201": _json(DEVICE_SCHEMA, "The device with pairing_code"), **ORGANIZER_ERRORS},
        },
        "get": {
            "summary": "The organiser's door devices",
            "security": ORGANIZER,
            "responses": {"200": _json({"type": "object"}, "Devices"), "401": _problem("Bad organiser token")},
        },
    },
    "/api/v1/checkin/devices/{device_id}": {
        "parameters": [DEVICE_ID],
        "delete": {
            "summary": "Revoke a device: its token stops working at once",
            "security": ORGANIZER,
            "responses": {"200": _json(DEVICE_SCHEMA, "The revoked device"), **ORGANIZER_ERRORS},
        },
    },
    "/api/v1/checkin/devices/pair": {
        "post": {
            "summary": "Exchange a pairing code (once) for a device token",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {
                "200": _json({"type": "object"}, "device_token and device"),
                "401": _problem("Unknown, used or expired code"),
                **COMMON_ERRORS,
            },
        },
    },
    "/api/v1/checkin/device": {
        "get": {
            "summary": "The calling device and its events",
            "security": DEVICE,
            "responses": {"200": _json(DEVICE_SCHEMA, "The device"), **DEVICE_ERRORS},
        },
    },
    "/api/v1/checkin": {
        "post": {
            "summary": "Scan a ticket: the first scan wins; a retried request_id gets the same answer",
            "security": DEVICE,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["code"],
                            "properties": {
                                "code": {"type": "string"},
                                "gate": {"type": "string"},
                                "request_id": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "responses": {"200": _json(SCAN_RESULT, "The answer for the door"), **DEVICE_ERRORS, **COMMON_ERRORS},
        },
    },
    "/api/v1/checkin/sync": {
        "post": {
            "summary": "Upload scans decided offline; duplicates across doors come back as already_used",
            "security": DEVICE,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {"200": _json({"type": "object"}, "One result per scan"), **DEVICE_ERRORS, **COMMON_ERRORS},
        },
    },
    "/api/v1/checkin/events/{event_id}/bundle": {
        "parameters": [EVENT_ID],
        "get": {
            "summary": "What a device needs offline: keys, event window, ticket types, voided and admitted ids",
            "security": DEVICE,
            "responses": {
                "200": _json({"type": "object"}, "The bundle"),
                "403": _problem("Device not paired for this event"),
                **DEVICE_ERRORS,
            },
        },
    },
    "/api/v1/checkin/events/{event_id}/stats": {
        "parameters": [EVENT_ID],
        "get": {
            "summary": "Admitted counts per ticket type and per gate (organiser or device token)",
            "security": [*ORGANIZER, *DEVICE],
            "responses": {
                "200": _json({"type": "object"}, "Stats"),
                "401": _problem("Bad token"),
                "404": _problem("No such event (or not yours)"),
            },
        },
    },
}
PATHS.update(CHECKIN_PATHS)
# Livestream: an event's stream settings, the publisher key, a "watch" link per stream ticket.
STREAM_SETTINGS: dict[str, Any] = {
    "stream_url": {
        "type": "string",
        "maxLength": 500,
        "description": "HLS playlist URL with `{credential}` once in its path, where the viewer credential goes",
        "example": "https://video.example.org/hls/{credential}/gala/index.m3u8",
    },
    "stream_name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$", "description": "unique per event"},
    "stream_access": {"type": "string", "enum": ["gate", "signed_url"], "default": "gate"},
    "stream_max_screens": {"type": "integer", "minimum": 1, "maximum": 100, "default": 1},
    "stream_screen_policy": {"type": "string", "enum": ["newest_wins", "refuse_new"], "default": "newest_wins"},
    "stream_replay_until": {"type": "string", "format": "date-time", "nullable": True},
}
SCHEMAS["EventInput"]["properties"].update(STREAM_SETTINGS)
SCHEMAS["Event"]["properties"].update(
    {
        **STREAM_SETTINGS,
        "stream_publisher_key_set": {"type": "boolean", "description": "organiser views only"},
    }
)
SCHEMAS["Order"]["properties"]["tickets"] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "ticket_type_id": {"type": "string", "format": "uuid"},
            "name": {"type": "string"},
            "status": {"type": "string", "enum": ["valid", "voided"]},
            "links": {
                "type": "object",
                "description": "`watch`: the signed stream link of a valid ticket that grants the stream",
                "additionalProperties": {"type": "string", "format": "uri"},
            },
        },
    },
}
PATHS["/api/v1/events/{event_id}/stream/publisher-key"] = {
    "parameters": [EVENT_ID],
    "post": {
        "summary": "A new MediaMTX publisher key for the event's stream (replaces the old one; shown once)",
        "security": ORGANIZER,
        "responses": {
            "201": _json(
                {
                    "type": "object",
                    "properties": {"stream_name": {"type": "string"}, "publisher_key": {"type": "string"}},
                },
                "The key",
            ),
            "409": _problem("The event has no stream_name yet"),
            **ORGANIZER_ERRORS,
        },
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Guichet API",
        "version": "1",
        "description": "Ethical ticketing. Errors are RFC 9457 problem details with a stable `code`.",
    },
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "organizerToken": {"type": "http", "scheme": "bearer", "description": "from `flask create-organizer`"},
            "orderToken": {"type": "http", "scheme": "bearer", "description": "the order's access_token"},
            "myDataToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "the token of an emailed my-data link (POST /privacy/request)",
            },
            "deviceToken": {"type": "http", "scheme": "bearer", "description": "from checkin/devices/pair"},
        },
    },
}


@bp.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(DOCUMENT)
