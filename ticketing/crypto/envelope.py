"""Envelope encryption: one data key per person, wrapped by a master key.

Crypto-shredding depends on this shape: every field of a person is sealed with that
person's own data key, so deleting the one wrapped key makes all their ciphertexts
unreadable, even to someone who holds every master key.
"""

from __future__ import annotations

import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ticketing.crypto.keys import KeyRing

NONCE_BYTES = 12
DATA_KEY_BYTES = 32
FORMAT_VERSION = b"\x01"


class DecryptionFailed(Exception):
    """A ciphertext did not open: wrong key, wrong person or field, or tampered bytes."""


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _seal(key: bytes, plaintext: bytes, associated: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return FORMAT_VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, associated)


def _open(key: bytes, sealed: bytes, associated: bytes) -> bytes:
    if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[:1] != FORMAT_VERSION:
        raise DecryptionFailed("not a Guichet ciphertext")
    nonce = sealed[1 : 1 + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, sealed[1 + NONCE_BYTES :], associated)
    except InvalidTag:
        raise DecryptionFailed("ciphertext does not open with this key") from None


def _wrap_context(person_id: uuid.UUID, master_key_id: str) -> bytes:
    return b"guichet-data-key|" + person_id.bytes + b"|" + master_key_id.encode()


def wrap_data_key(keyring: KeyRing, person_id: uuid.UUID, data_key: bytes) -> tuple[str, bytes]:
    """Wrap with the newest master key; the key id is returned so old keys can rotate out."""
    master_key_id, master_key = keyring.newest_master_key
    return master_key_id, _seal(master_key, data_key, _wrap_context(person_id, master_key_id))


def unwrap_data_key(keyring: KeyRing, person_id: uuid.UUID, master_key_id: str, wrapped: bytes) -> bytes:
    master_key = keyring.master_keys.get(master_key_id)
    if master_key is None:
        raise DecryptionFailed(f"master key {master_key_id!r} is not configured")
    return _open(master_key, wrapped, _wrap_context(person_id, master_key_id))


def _field_context(person_id: uuid.UUID, field: str) -> bytes:
    # Person id and field name as associated data: a ciphertext moved to another person
    # or another column no longer opens.
    return b"guichet-field|" + person_id.bytes + b"|" + field.encode()


def encrypt_field(data_key: bytes, person_id: uuid.UUID, field: str, value: str) -> bytes:
    return _seal(data_key, value.encode("utf-8"), _field_context(person_id, field))


def decrypt_field(data_key: bytes, person_id: uuid.UUID, field: str, sealed: bytes) -> str:
    return _open(data_key, sealed, _field_context(person_id, field)).decode("utf-8")
