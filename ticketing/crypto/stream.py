"""Stream links, viewer credentials and nginx ``secure_link`` hashes.

Three credentials, from long to short lived:

- the *stream token* (``/watch/<token>``) is mailed to the buyer. It is an itsdangerous
  ``URLSafeTimedSerializer`` signature over ``[ticket id, event id]`` with its own salt;
  every configured stream secret verifies it and the newest (last) signs, so secrets
  rotate without breaking links already sent. Its validity window comes from the event
  (the service checks it), not from the signature's timestamp.
- the *viewer credential* goes into the HLS URL path for the streaming gate. It names a
  viewer session and an expiry, so that every relative segment URL carries it and the
  gate refuses a forged or expired one with no database: a compact HMAC-SHA256 rather
  than JSON, 48 URL-safe characters.
- the *secure link* is what nginx's ``secure_link`` module can check by itself: MD5 over
  the expiry, the stream name and a shared secret. MD5 is what that module offers; the
  secret is long and the hash expires within minutes, which is what makes it tolerable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadData, URLSafeTimedSerializer

STREAM_TOKEN_SALT = "guichet.stream-token.v1"  # noqa: S105 - a salt, not a secret
CREDENTIAL_PREFIX = "gv1"
_CREDENTIAL_BODY = struct.Struct(">16sI")
_MAC_BYTES = 16


class StreamTokenInvalid(ValueError):
    """A stream token or viewer credential that is not ours: forged, cut, or signed with a
    secret that is no longer configured."""


@dataclass(frozen=True)
class StreamKeys:
    """The stream secrets (oldest first, newest last) and what is derived from them."""

    serializer: URLSafeTimedSerializer
    credential_keys: tuple[bytes, ...]  # newest first: the one that signs is tried first

    @property
    def newest_credential_key(self) -> bytes:
        return self.credential_keys[0]


def _derive(secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"guichet viewer credential v1").derive(
        secret.encode("utf-8")
    )


def stream_keys(secrets: tuple[str, ...]) -> StreamKeys:
    if not secrets:
        raise ValueError("at least one stream secret is needed")
    return StreamKeys(
        serializer=URLSafeTimedSerializer(list(secrets), salt=STREAM_TOKEN_SALT),
        credential_keys=tuple(_derive(secret) for secret in reversed(secrets)),
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """base64url without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_stream_token(keys: StreamKeys, ticket_id: uuid.UUID, event_id: uuid.UUID) -> str:
    return keys.serializer.dumps([_b64(ticket_id.bytes), _b64(event_id.bytes)])


def read_stream_token(keys: StreamKeys, token: str) -> tuple[uuid.UUID, uuid.UUID]:
    """(ticket id, event id) of a genuine token; the caller checks the event's window."""
    try:
        ticket, event = keys.serializer.loads(token)
        return uuid.UUID(bytes=_unb64(ticket)), uuid.UUID(bytes=_unb64(event))
    except (BadData, ValueError, TypeError, binascii.Error):
        raise StreamTokenInvalid("not a valid stream token") from None


def _credential_mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, b"viewer|" + body, hashlib.sha256).digest()[:_MAC_BYTES]


def make_viewer_credential(keys: StreamKeys, viewer_session_id: uuid.UUID, expires_at: int) -> str:
    """``gv1`` + base64url(session id, expiry as Unix seconds, 128-bit MAC)."""
    body = _CREDENTIAL_BODY.pack(viewer_session_id.bytes, expires_at)
    return CREDENTIAL_PREFIX + _b64(body + _credential_mac(keys.newest_credential_key, body))


def read_viewer_credential(keys: StreamKeys, credential: str) -> tuple[uuid.UUID, int]:
    """(viewer session id, expiry) of a genuine credential; the caller compares the expiry."""
    if len(credential) != 51 or not credential.startswith(CREDENTIAL_PREFIX):
        raise StreamTokenInvalid("not a viewer credential")
    try:
        raw = _unb64(credential[3:])
    except (binascii.Error, ValueError):
        raise StreamTokenInvalid("not a viewer credential") from None
    body, mac = raw[: _CREDENTIAL_BODY.size], raw[_CREDENTIAL_BODY.size :]
    for key in keys.credential_keys:
        if hmac.compare_digest(mac, _credential_mac(key, body)):
            session_bytes, expires_at = _CREDENTIAL_BODY.unpack(body)
            return uuid.UUID(bytes=session_bytes), expires_at
    raise StreamTokenInvalid("viewer credential signature does not match")


def nginx_secure_link(secret: str, organizer_id: uuid.UUID, stream_name: str, expires_at: int) -> str:
    """The hash nginx computes for ``secure_link_md5 "$sl_expires$sl_stream <organizer id> <secret>"``.

    The organiser's id is written into that organiser's nginx configuration: stream names
    are unique per organiser only, so a link for one organiser's stream must not open
    another's of the same name. nginx compares base64url(MD5(...)) without padding; see
    README, "Signed-URL mode".
    """
    signed = f"{expires_at}{stream_name} {organizer_id} {secret}"
    return _b64(hashlib.md5(signed.encode(), usedforsecurity=False).digest())
