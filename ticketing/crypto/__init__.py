"""Cryptographic primitives and key handling. Imports no domain and no Flask.

Domains call these functions; they never import ``cryptography`` themselves.
"""

from ticketing.crypto.envelope import (
    DecryptionFailed,
    decrypt_field,
    encrypt_field,
    new_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from ticketing.crypto.index import BUYER_EMAIL, STAFF_EMAIL, blind_index, normalise_email
from ticketing.crypto.keys import KeyRing, generate_key_file, load_keyring, new_key_values
from ticketing.crypto.signing import (
    new_signing_key_value,
    public_key_bytes,
    sign_ticket,
    verify_ticket_signature,
)
from ticketing.crypto.tokens import derive_access_token, derive_token, hash_token, new_token, tokens_match

__all__ = [
    "BUYER_EMAIL",
    "STAFF_EMAIL",
    "DecryptionFailed",
    "KeyRing",
    "blind_index",
    "decrypt_field",
    "derive_access_token",
    "derive_token",
    "encrypt_field",
    "generate_key_file",
    "hash_token",
    "load_keyring",
    "new_data_key",
    "new_signing_key_value",
    "new_key_values",
    "new_token",
    "normalise_email",
    "public_key_bytes",
    "sign_ticket",
    "tokens_match",
    "unwrap_data_key",
    "verify_ticket_signature",
    "wrap_data_key",
]
