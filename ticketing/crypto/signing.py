"""Ed25519 signatures for QR tickets.

Tickets are verified far more often than they are signed, and often by software that
has only the public key (offline door devices, other scanners), so verification takes
raw public key bytes and answers a plain boolean rather than raising. Both directions
use ``cryptography`` (RFC 8032 Ed25519).
"""

from __future__ import annotations

import base64
import secrets
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32


def sign_ticket(private_key: Ed25519PrivateKey, message: bytes) -> bytes:
    return private_key.sign(message)


def public_key_bytes(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@lru_cache(maxsize=64)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    # A door checks thousands of tickets against the same one or two keys.
    return Ed25519PublicKey.from_public_bytes(raw)


def verify_ticket_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        _public_key(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def new_signing_key_value() -> str:
    """A fresh ``TICKETING_SIGNING_KEY`` value (``id:base64seed``)."""
    seed = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
    return f"s{secrets.token_hex(3)}:{seed}"
