"""Stream links, viewer credentials and nginx ``secure_link`` hashes.

Three credentials, from long to short lived:

- the *stream token* (``/watch/<token>``) is mailed to the buyer. It is an itsdangerous
  ``URLSafeTimedSerializer`` signature over ``[ticket id, event id]`` with its own salt;
  every configured stream secret verifies it and the newest (last) signs, so secrets
  rotate without breaking links already sent. Its validity window comes from the event
  (the service checks it), not from the signature's timestamp.
- the *viewer credential* goes into the HLS URL path for the streaming gate. It names a
  viewer session and an expiry and is checked thousands of times a second (every
  playlist and segment request), so it is a compact HMAC-SHA256 rather than JSON: 48
  URL-safe characters, verified in a few microseconds with no database.
- the *secure link* is what nginx's ``secure_link`` module can check by itself: MD5 over
  the expiry, the stream name and a shared secret. MD5 is what that module offers; the
  secret is long and the hash expires within minutes, which is what makes it tolerable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import struct
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadData, Signer, TimestampSigner, URLSafeTimedSerializer

STREAM_TOKEN_SALT = "guichet.stream-token.v1"  # noqa: S105 - a salt, not a secret
CREDENTIAL_PREFIX = "gv1"
_CREDENTIAL_BODY = struct.Struct(">16sI")
_MAC_BYTES = 16


class StreamTokenInvalid(ValueError):
    """A stream token or viewer credential that is not ours: forged, cut, or signed with a
    secret that is no longer configured."""


class _KeyCachingSigner(TimestampSigner):
    """itsdangerous derives the signing key from the secret (a SHA-1 over salt and secret)
    on every call; it depends only on this signer's fixed settings, so derive it once."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        derived: dict[object, bytes] = self.__dict__.setdefault("_derived_keys", {})
        key = derived.get(secret_key)
        if key is None:
            key = derived[secret_key] = super().derive_key(secret_key)
        return key


class _StreamTokenSerializer(URLSafeTimedSerializer):
    """The serializer of stream tokens, keeping its signer instead of building one per
    call: tokens are read on every watch page, heartbeat and session start."""

    default_signer = _KeyCachingSigner

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        signers: dict[object, Signer] = self.__dict__.setdefault("_signers", {})
        signer = signers.get(salt)
        if signer is None:
            signer = signers[salt] = super().make_signer(salt)
        return signer


@dataclass(frozen=True)
class StreamKeys:
    """The stream secrets (oldest first, newest last) and what is derived from them."""

    serializer: URLSafeTimedSerializer
    token_macs: tuple[hmac.HMAC, ...]  # HMAC-SHA1 keyed with itsdangerous's derived keys, newest first
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
    serializer = _StreamTokenSerializer(list(secrets), salt=STREAM_TOKEN_SALT)
    signer = serializer.make_signer(STREAM_TOKEN_SALT)
    return StreamKeys(
        serializer=serializer,
        token_macs=tuple(hmac.new(signer.derive_key(secret), digestmod="sha1") for secret in reversed(secrets)),
        credential_keys=tuple(_derive(secret) for secret in reversed(secrets)),
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """base64url without padding; what ``base64.urlsafe_b64decode`` does, in C calls only."""
    return binascii.a2b_base64(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4))


def make_stream_token(keys: StreamKeys, ticket_id: uuid.UUID, event_id: uuid.UUID) -> str:
    return keys.serializer.dumps([_b64(ticket_id.bytes), _b64(event_id.bytes)])


def read_stream_token(keys: StreamKeys, token: str) -> tuple[uuid.UUID, uuid.UUID]:
    """(ticket id, event id) of a genuine token; the caller checks the event's window.

    A token is read on every watch page, heartbeat and screen start, and itsdangerous's
    ``loads`` spends most of its time in Python around one HMAC-SHA1. So a token of the
    shape ``make_stream_token`` writes is checked here with itsdangerous's own derived keys
    and the same HMAC in one C call; anything else (a forgery, a cut or foreign token) gets
    itsdangerous's own answer, so no token is accepted that itsdangerous would refuse.
    """
    try:
        payload = _verified_payload(keys, token)
        if payload is None:
            payload = keys.serializer.loads(token)
        ticket, event = payload
        return uuid.UUID(bytes=_unb64(ticket)), uuid.UUID(bytes=_unb64(event))
    except (BadData, ValueError, TypeError, binascii.Error):
        raise StreamTokenInvalid("not a valid stream token") from None


def _verified_payload(keys: StreamKeys, token: str) -> object | None:
    """The payload of ``payload.timestamp.signature`` whose HMAC-SHA1 matches, else None."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts) or not token.isascii():
        return None  # not the shape make_stream_token writes (a compressed payload starts with ".")
    payload, timestamp, signature = parts
    try:
        mac = _unb64(signature)
    except (binascii.Error, ValueError):
        return None
    signed = f"{payload}.{timestamp}".encode("ascii")
    for keyed in keys.token_macs:
        check = keyed.copy()  # the keyed state is kept: a copy costs less than keying anew
        check.update(signed)
        if hmac.compare_digest(mac, check.digest()):
            return _json_pair(_unb64(payload))
    return None


def _json_pair(raw: bytes) -> object:
    """``["a","b"]`` as make_stream_token writes it (base64url strings, nothing to unescape)
    without the JSON decoder, which costs as much as the HMAC; anything else goes to it."""
    if raw[:2] == b'["' and raw[-2:] == b'"]' and b"\\" not in raw:
        pair = raw[2:-2].split(b'","')
        if len(pair) == 2:
            return [pair[0].decode("ascii"), pair[1].decode("ascii")]
    return json.loads(raw)


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


def nginx_secure_link(secret: str, stream_name: str, expires_at: int) -> str:
    """The hash nginx computes for ``secure_link_md5 "$sl_expires$sl_stream <secret>"``.

    nginx compares base64url(MD5(...)) without padding; see README, "Signed-URL mode".
    """
    digest = hashlib.md5(f"{expires_at}{stream_name} {secret}".encode(), usedforsecurity=False).digest()
    return _b64(digest)
