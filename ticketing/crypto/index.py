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


# What an index is for. Buyers' addresses and staff logins are indexed apart: the same
# mailbox gives two unrelated values, so no buyer's lookup ("my data", "find my orders")
# can ever reach a staff account, whatever the query.
BUYER_EMAIL = "email"
STAFF_EMAIL = "staff-email"
PURPOSES = (BUYER_EMAIL, STAFF_EMAIL)


def blind_index(key: bytes, email: str, purpose: str = BUYER_EMAIL) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown blind-index purpose {purpose!r}")
    return hmac.new(key, purpose.encode() + b"|" + normalise_email(email).encode("utf-8"), hashlib.sha256).digest()
