"""The compact signed payload a ticket's QR code holds.

Layout (version 1):

    version (1 byte) | key id length (1) | key id (ASCII) | event id (16) |
    ticket id (16) | ticket type id (16) | Ed25519 signature (64)

The signature covers ``b"GUICHET-TICKET|"`` followed by every byte before it. Nothing in
it names a person.

Those bytes travel as text, in one of two spellings of the same bytes:

- decimal (what Guichet writes): the bytes read as one big-endian number, written in
  base 10 with exactly as many digits as the largest number of that many bytes has. A QR
  code stores digits in numeric mode at 3.33 bits each, almost as tightly as raw bytes
  (8.03 bits a byte against 8): 292 digits for a 7-character key id, a version 7 code
  (45 modules a side) at level M, where base32 needed version 8 (49). Unlike a binary
  QR code, digits survive every reader unchanged (``BarcodeDetector`` hands back text,
  keyboard-wedge scanners type it).
- RFC 4648 base32, upper case, unpadded: what tickets mailed before carry; still read.

A code of digits only is decimal; anything else is read as base32 (whose version 1
codes start with "A"). This module needs only ``ticketing.crypto`` (and so the
``cryptography`` package): other scanner software can copy it, or call
``verify_ticket_code(code, public_key)``.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from ticketing.crypto import KeyRing, sign_ticket, verify_ticket_signature

VERSION = 1
CONTEXT = b"GUICHET-TICKET|"
MAX_KEY_ID = 32
SIGNATURE_BYTES = 64
MAX_CODE_LENGTH = 400
_BASE32_TEXT = re.compile(r"[A-Z2-7]+")
_DECIMAL_TEXT = re.compile(r"[0-9]+")
# The longest payload: a 32-character key id. Digits -> byte count, for every length up to it.
_MAX_PAYLOAD_BYTES = 2 + MAX_KEY_ID + 48 + SIGNATURE_BYTES
_BYTES_FOR_DIGITS = {len(str(256**size - 1)): size for size in range(1, _MAX_PAYLOAD_BYTES + 1)}
_TO_BASE32HEX = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHIJKLMNOPQRSTUV")


class InvalidPayload(ValueError):
    """The code is unreadable, forged, or signed by a key we do not accept.

    ``reason`` is one of ``unreadable``, ``bad_signature``, ``unknown_key``,
    ``expired_key``, ``wrong_event``.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class TicketClaims:
    key_id: str
    event_id: uuid.UUID
    ticket_id: uuid.UUID
    ticket_type_id: uuid.UUID


@dataclass(frozen=True)
class VerificationKey:
    """A public key as published: raw bytes, and the instant after which it is refused."""

    public_key: bytes
    expires_at: dt.datetime | None = None


def encode_ticket(keyring: KeyRing, event_id: uuid.UUID, ticket_id: uuid.UUID, ticket_type_id: uuid.UUID) -> str:
    raw_key_id = keyring.signing_key_id.encode("ascii")
    if not 0 < len(raw_key_id) <= MAX_KEY_ID:
        raise ValueError("a signing key id has 1 to 32 ASCII characters")
    body = bytes([VERSION, len(raw_key_id)]) + raw_key_id + event_id.bytes + ticket_id.bytes + ticket_type_id.bytes
    signature = sign_ticket(keyring.signing_key, CONTEXT + body)
    return decimal_text(body + signature)


def decimal_text(raw: bytes) -> str:
    """The decimal spelling of a payload's bytes (see the module's docstring)."""
    return str(int.from_bytes(raw, "big")).zfill(len(str(256 ** len(raw) - 1)))


def base32_text(raw: bytes) -> str:
    """The base32 spelling, as tickets were written before the decimal one."""
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def _decode_decimal(text: str) -> bytes:
    """Exactly the digit count of its byte count, so one code means one ticket."""
    size = _BYTES_FOR_DIGITS.get(len(text))
    value = int(text)
    if size is None or value >= 256**size:
        raise InvalidPayload("unreadable")
    return value.to_bytes(size, "big")


def _decode_text(code: str) -> bytes:
    text = code.strip().upper()
    if not text or len(text) > MAX_CODE_LENGTH:
        raise InvalidPayload("unreadable")
    if _DECIMAL_TEXT.fullmatch(text):
        return _decode_decimal(text)
    return _decode_base32(text)


def _decode_base32(text: str) -> bytes:
    """RFC 4648 base32 without padding, strictly.

    Python's ``int(text, 32)`` reads base32hex digits in C, several times faster than
    ``base64.b32decode`` (pure Python): offline doors and other scanners verify codes in
    bulk, so the alphabet is translated rather than decoded character by character.
    """
    if not _BASE32_TEXT.fullmatch(text):
        raise InvalidPayload("unreadable")
    length = len(text) * 5 // 8
    spare_bits = len(text) * 5 - length * 8
    value = int(text.translate(_TO_BASE32HEX), 32)
    # The last character may carry unused low bits; a code that sets them would decode to
    # the same bytes, and one code must mean one ticket.
    if spare_bits >= 5 or value & ((1 << spare_bits) - 1):
        raise InvalidPayload("unreadable")
    return (value >> spare_bits).to_bytes(length, "big")


def read_ticket(code: str) -> tuple[TicketClaims, bytes, bytes]:
    """Parse without verifying: the claims, the signed message, the signature."""
    raw = _decode_text(code)
    if len(raw) < 2 or raw[0] != VERSION:
        raise InvalidPayload("unreadable")
    key_id_length = raw[1]
    body_length = 2 + key_id_length + 48
    if not 0 < key_id_length <= MAX_KEY_ID or len(raw) != body_length + SIGNATURE_BYTES:
        raise InvalidPayload("unreadable")
    try:
        key_id = raw[2 : 2 + key_id_length].decode("ascii")
    except UnicodeDecodeError:
        raise InvalidPayload("unreadable") from None
    ids = raw[2 + key_id_length : body_length]
    claims = TicketClaims(
        key_id=key_id,
        event_id=uuid.UUID(bytes=ids[:16]),
        ticket_id=uuid.UUID(bytes=ids[16:32]),
        ticket_type_id=uuid.UUID(bytes=ids[32:48]),
    )
    return claims, CONTEXT + raw[:body_length], raw[body_length:]


def verify_ticket(
    code: str,
    keys: Mapping[str, VerificationKey],
    now: dt.datetime,
    event_id: uuid.UUID | None = None,
) -> TicketClaims:
    """The ticket's claims if its signature holds under a key still accepted at ``now``."""
    claims, message, signature = read_ticket(code)
    return check_ticket(claims, message, signature, keys.get(claims.key_id), now, event_id)


def check_ticket(
    claims: TicketClaims,
    message: bytes,
    signature: bytes,
    key: VerificationKey | None,
    now: dt.datetime,
    event_id: uuid.UUID | None = None,
) -> TicketClaims:
    """``verify_ticket`` for a code already parsed with ``read_ticket``."""
    if key is None:
        raise InvalidPayload("unknown_key")
    if key.expires_at is not None and now >= key.expires_at:
        raise InvalidPayload("expired_key")
    if not verify_ticket_signature(key.public_key, message, signature):
        raise InvalidPayload("bad_signature")
    if event_id is not None and claims.event_id != event_id:
        raise InvalidPayload("wrong_event")
    return claims


def verify_ticket_code(code: str, public_key: bytes) -> TicketClaims | None:
    """For other scanner software: the claims if ``public_key`` signed ``code``, else None."""
    try:
        claims, message, signature = read_ticket(code)
    except InvalidPayload:
        return None
    return claims if verify_ticket_signature(public_key, message, signature) else None
