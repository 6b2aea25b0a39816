"""Keyed blind index for looking a person up by email without storing the address."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata


def normalise_email(email: str) -> str:
    """One spelling per mailbox, so ``Ana@Example.org `` and ``ana@example.org`` match.

    The whole address is case-folded: local parts are case-sensitive in theory, but no
    mail provider a buyer uses treats them so, and a buyer must find their orders.
    """
    return unicodedata.normalize("NFC", email.strip()).casefold()


def blind_index(key: bytes, email: str) -> bytes:
    return hmac.new(key, b"email|" + normalise_email(email).encode("utf-8"), hashlib.sha256).digest()
