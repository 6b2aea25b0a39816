"""The check-in API's bodies: door devices, scans online and offline, bundles, stats."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import marshmallow as ma
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from ticketing.checkin.devices import MAX_DEVICE_EVENTS
from ticketing.checkin.offline import MAX_SYNC_SCANS
from ticketing.checkin.scanning import MAX_GATE, MAX_REQUEST_ID
from ticketing.schema import Field, Instant, Items, Out, Text, Time, Tolerant

SCAN_RESULTS = ("admitted", "already_used", "voided", "wrong_event", "not_paid", "invalid", "unknown_ticket")
DEVICE_STATES = ("waiting_for_pairing", "paired", "revoked")
MAX_CODE = 400


class EventIds(Field):
    """1 to ``MAX_DEVICE_EVENTS`` event ids; repeats count once."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[uuid.UUID]:
        if not isinstance(value, list) or not value or len(value) > MAX_DEVICE_EVENTS:
            raise ma.ValidationError(_("Give a list of 1 to %(max)d event ids.", max=MAX_DEVICE_EVENTS))
        try:
            return list(dict.fromkeys(uuid.UUID(str(raw)) for raw in value))
        except ValueError:
            raise ma.ValidationError(_("Each event id must be a UUID.")) from None

    def deserialize(self, value: Any, attr: str | None = None, data: Any = None, **kwargs: Any) -> Any:
        if value is None or value is ma.missing:
            raise ma.ValidationError(_("Give a list of 1 to %(max)d event ids.", max=MAX_DEVICE_EVENTS))
        return super().deserialize(value, attr, data, **kwargs)

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_DEVICE_EVENTS,
            "items": {"type": "string", "format": "uuid"},
        }


class DeviceInput(Tolerant):
    name = Text(max_length=100, required=True)
    event_ids = EventIds(required=True)


class PairingInput(Tolerant):
    detail = lazy_gettext("Send the pairing code shown to the organiser.")

    pairing_code = Text(max_length=40, required=True)


class ScanInput(Tolerant):
    code = Text(max_length=MAX_CODE, required=True, metadata={"description": "the ticket's QR payload"})
    gate = Text(max_length=MAX_GATE, load_default=None, metadata={"description": "where the door is, e.g. North"})
    request_id = Text(
        max_length=MAX_REQUEST_ID,
        load_default=None,
        metadata={"description": "a retried request with the same id gets the same answer"},
    )


class OfflineScan(Tolerant):
    code = Text(max_length=MAX_CODE, required=True)
    gate = Text(max_length=MAX_GATE, load_default=None)
    request_id = Text(max_length=MAX_REQUEST_ID, required=True)
    scanned_at = Instant(zone=dt.UTC, required=True, metadata={"description": "when the door let it in; UTC"})


class SyncInput(Tolerant):
    scans = Items(
        ma.fields.Nested(OfflineScan),
        minimum=0,
        maximum=MAX_SYNC_SCANS,
        message=lazy_gettext("Must be a list of scans."),
        too_many=lazy_gettext("Send at most %(max)d scans at once.", max=MAX_SYNC_SCANS),
        required=True,
    )


class Device(Out):
    id = ma.fields.UUID(required=True)
    name = ma.fields.String(required=True)
    event_ids = ma.fields.List(ma.fields.UUID(), required=True)
    state = ma.fields.String(required=True, validate=ma.validate.OneOf(DEVICE_STATES))
    created_at = Time(required=True)
    paired_at = Time(required=True, allow_none=True)
    revoked_at = Time(required=True, allow_none=True)


class NewDevice(Device):
    pairing_code = ma.fields.String(required=True, metadata={"description": "one-time; give it to the door"})
    pairing_expires_at = Time(required=True)


class Devices(Out):
    devices = ma.fields.List(ma.fields.Nested(Device), required=True)


class PairedDevice(Out):
    device_token = ma.fields.String(required=True, metadata={"description": "secret, answered this once"})
    device = ma.fields.Nested(Device, required=True)


class DeviceEvent(Out):
    id = ma.fields.UUID(required=True)
    title = ma.fields.String(required=True)
    starts_at = Time(required=True)
    ends_at = Time(required=True)


class CurrentDevice(Device):
    events = ma.fields.List(ma.fields.Nested(DeviceEvent), required=True)


class ScanAnswer(Out):
    result = ma.fields.String(required=True, validate=ma.validate.OneOf(SCAN_RESULTS))
    ticket_id = ma.fields.UUID(required=True, allow_none=True)
    ticket_type_id = ma.fields.UUID(required=True, allow_none=True)
    ticket_type = ma.fields.String(required=True, allow_none=True, metadata={"description": "e.g. Child, VIP"})
    checked_in_at = Time(allow_none=True, metadata={"description": "admitted / already_used: when"})
    gate = ma.fields.String(allow_none=True, metadata={"description": "admitted / already_used: where"})
    reason = ma.fields.String(metadata={"description": "invalid: unreadable, bad_signature, unknown_key, expired_key"})


class SyncedScan(ScanAnswer):
    request_id = ma.fields.String(required=True)
    scanned_at = Time(required=True)
    duplicate = ma.fields.Boolean(required=True, metadata={"description": "another door admitted it first"})


class SyncAnswer(Out):
    results = ma.fields.List(ma.fields.Nested(SyncedScan), required=True)
    admitted = ma.fields.Integer(required=True)
    duplicates = ma.fields.Integer(required=True)


class PublicKey(Out):
    id = ma.fields.String(required=True)
    algorithm = ma.fields.String(required=True, validate=ma.validate.OneOf(("Ed25519",)))
    public_key = ma.fields.String(required=True, metadata={"description": "base64url"})
    current = ma.fields.Boolean(required=True)
    expires_at = ma.fields.String(required=True, allow_none=True, metadata={"format": "date-time"})


class PublicKeys(Out):
    keys = ma.fields.List(ma.fields.Nested(PublicKey), required=True)


class BundleEvent(DeviceEvent):
    doors_at = Time(required=True, allow_none=True)


class BundleTicketType(Out):
    id = ma.fields.UUID(required=True)
    name = ma.fields.String(required=True)
    grants_entry = ma.fields.Boolean(required=True)


class Bundle(Out):
    generated_at = Time(required=True)
    event = ma.fields.Nested(BundleEvent, required=True)
    keys = ma.fields.List(ma.fields.Nested(PublicKey), required=True)
    ticket_types = ma.fields.List(ma.fields.Nested(BundleTicketType), required=True)
    voided = ma.fields.List(ma.fields.UUID(), required=True, metadata={"description": "tickets to refuse"})
    admitted = ma.fields.List(ma.fields.UUID(), required=True, metadata={"description": "tickets already in"})
    expected = ma.fields.Integer(required=True)


class TypeStats(Out):
    ticket_type_id = ma.fields.UUID(required=True)
    name = ma.fields.String(required=True)
    admitted = ma.fields.Integer(required=True)
    expected = ma.fields.Integer(required=True)


class GateStats(Out):
    gate = ma.fields.String(required=True, allow_none=True)
    admitted = ma.fields.Integer(required=True)


class Stats(Out):
    event_id = ma.fields.UUID(required=True)
    admitted = ma.fields.Integer(required=True)
    expected = ma.fields.Integer(required=True)
    by_ticket_type = ma.fields.List(ma.fields.Nested(TypeStats), required=True)
    by_gate = ma.fields.List(ma.fields.Nested(GateStats), required=True)
    scans = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.OneOf(SCAN_RESULTS)),
        values=ma.fields.Integer(),
        required=True,
        metadata={"description": "scans logged per result"},
    )


NEW_DEVICE = DeviceInput()
PAIRING = PairingInput()
SCAN = ScanInput()
SYNC = SyncInput()
DEVICE = Device()
CREATED_DEVICE = NewDevice()
DEVICES = Devices()
PAIRED_DEVICE = PairedDevice()
CURRENT_DEVICE = CurrentDevice()
SCAN_ANSWER = ScanAnswer()
SYNC_ANSWER = SyncAnswer()
PUBLIC_KEYS = PublicKeys()
BUNDLE = Bundle()
STATS = Stats()
