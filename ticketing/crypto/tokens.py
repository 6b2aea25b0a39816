"""Secret tokens: generated, hashed for storage, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid

TOKEN_BYTES = 32


def new_token() -> str:
    """256 random bits, URL-safe, for API tokens and one-time codes."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """What the database keeps instead of a token. The token is random and long, so a
    fast hash is enough: there is nothing to brute-force."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_match(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)


def derive_token(key: bytes, purpose: bytes, subject_id: uuid.UUID, version: int = 0) -> str:
    """A secret derived from a server key, for one purpose and one subject: the same every
    time it is asked for, so that it can be shown again while only its hash is stored."""
    mac = hmac.new(key, purpose + b"|" + subject_id.bytes + version.to_bytes(4, "big"), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


def derive_access_token(link_key: bytes, order_id: uuid.UUID, version: int = 0) -> str:
    """The secret part of an order's link.

    Derived rather than random so that Guichet can mail the link again (lost orders, a
    payment confirmed later by a webhook) while the database stores only its hash. A
    version bump revokes the old link.
    """
    return derive_token(link_key, b"order-link", order_id, version)
