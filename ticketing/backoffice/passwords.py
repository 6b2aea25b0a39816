"""Staff passwords: argon2id (argon2-cffi) with the library's defaults (RFC 9106's
second recommended setting: 64 MiB, 3 passes), rehashed at login when those change."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 200


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """False for a wrong password or no password at all. With no stored hash, a dummy hash
    is checked anyway, so that an unknown address takes as long as a wrong password."""
    try:
        return _hasher().verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher().check_needs_rehash(stored_hash)


@cache
def _dummy_hash() -> str:
    return _hasher().hash("not a password: compared only to spend the same time")
