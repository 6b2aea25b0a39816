"""Ticket payloads for issued tickets, and the keys that verify them."""

from __future__ import annotations

import base64
import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from ticketing.checkout.models import Ticket
from ticketing.crypto import KeyRing
from ticketing.models import begin_write
from ticketing.tickets.models import PublishedKey
from ticketing.tickets.payload import VerificationKey, encode_ticket


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ticket_code(keyring: KeyRing, ticket: Ticket) -> str:
    """The QR payload of a ticket. Deterministic (Ed25519), so it is derived, never stored."""
    return encode_ticket(keyring, ticket.event_id, ticket.id, ticket.ticket_type_id)


def current_public_key(keyring: KeyRing) -> bytes:
    return keyring.signing_public_key


def verification_key(session: Session, keyring: KeyRing, key_id: str) -> VerificationKey | None:
    """The key a ticket names. The current key costs no query (the scan's hot path)."""
    if key_id == keyring.signing_key_id:
        return VerificationKey(current_public_key(keyring))
    row = session.get(PublishedKey, key_id)
    if row is None:
        return None
    return VerificationKey(_unb64(row.public_key), row.expires_at)


def verification_keys(session: Session, keyring: KeyRing, now: dt.datetime) -> dict[str, VerificationKey]:
    """Every key a ticket may still be signed with at ``now``: the current one first."""
    keys = {keyring.signing_key_id: VerificationKey(current_public_key(keyring))}
    for row in session.execute(select(PublishedKey).order_by(PublishedKey.retired_at.desc())).scalars():
        if row.key_id not in keys and (row.expires_at is None or row.expires_at > now):
            keys[row.key_id] = VerificationKey(_unb64(row.public_key), row.expires_at)
    return keys


def published_keys_json(keys: dict[str, VerificationKey], current_key_id: str) -> list[dict[str, object]]:
    return [
        {
            "id": key_id,
            "algorithm": "Ed25519",
            "public_key": _b64(key.public_key),
            "current": key_id == current_key_id,
            "expires_at": key.expires_at.isoformat().replace("+00:00", "Z") if key.expires_at else None,
        }
        for key_id, key in keys.items()
    ]


def retire_signing_key(
    session: Session, keyring: KeyRing, now: dt.datetime, expires_at: dt.datetime | None = None
) -> PublishedKey:
    """Keep the current key's public half published before the operator swaps the key.

    Idempotent: retiring the same key twice keeps one row (with the latest expiry).
    """
    begin_write(session)
    row = session.get(PublishedKey, keyring.signing_key_id)
    if row is None:
        row = PublishedKey(
            key_id=keyring.signing_key_id,
            public_key=_b64(current_public_key(keyring)),
            published_at=now,
            retired_at=now,
        )
        session.add(row)
    row.expires_at = expires_at
    session.commit()
    return row
