"""Loading keys from configuration, and generating them for the embedded default.

Formats (the same in the environment and in the development key file):

- master keys: ``id:base64key,id:base64key`` (AES-256); the last one listed wraps new
  data keys, the others are still accepted for unwrapping, so they can rotate. Each key is
  an epoch: the ids Guichet makes carry the day the key was made (``e2026-12-05.3fa9c1``),
  so that the app can tell when the key must be replaced and destroyed.
- blind-index key: base64 of 32 bytes (HMAC-SHA256).
- signing key: ``id:base64seed`` (a 32-byte Ed25519 private key).
- secret key: any string of at least 32 characters.
- stream secrets: ``secret,secret`` (each at least 32 characters); the last one listed
  signs stream links and viewer credentials, the others still verify, so they can rotate.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ticketing.crypto.signing import public_key_bytes


class KeyConfigError(ValueError):
    """A key in the configuration is malformed; the message names the variable."""


@dataclass(frozen=True)
class KeyRing:
    master_keys: dict[str, bytes]
    newest_master_key_id: str
    blind_index_key: bytes
    signing_key_id: str
    signing_key: Ed25519PrivateKey
    link_key: bytes
    # Blind-index keys being rotated out: lookups still try them until the rebuild ends.
    previous_blind_index_keys: tuple[bytes, ...] = ()
    stream_secrets: tuple[str, ...] = ()

    @cached_property
    def signing_public_key(self) -> bytes:
        """Raw public half of the signing key: every online scan compares against it."""
        return public_key_bytes(self.signing_key)

    @property
    def newest_master_key(self) -> tuple[str, bytes]:
        return self.newest_master_key_id, self.master_keys[self.newest_master_key_id]

    @property
    def blind_index_key_id(self) -> str:
        return blind_index_key_id(self.blind_index_key)


def blind_index_key_id(key: bytes) -> str:
    """A short public fingerprint naming a blind-index key, so rows say which key made them."""
    return hmac.new(key, b"guichet blind-index key id", hashlib.sha256).hexdigest()[:16]


def _b64(value: str, variable: str, length: int) -> bytes:
    try:
        text = value.strip().replace("+", "-").replace("/", "_")
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise KeyConfigError(f"{variable} is not valid base64") from None
    if len(raw) != length:
        raise KeyConfigError(f"{variable} must decode to {length} bytes, got {len(raw)}")
    return raw


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def parse_master_keys(value: str) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id:
            raise KeyConfigError("TICKETING_MASTER_KEYS entries must look like id:base64key")
        keys[key_id] = _b64(encoded, f"TICKETING_MASTER_KEYS ({key_id})", 32)
    if not keys:
        raise KeyConfigError("TICKETING_MASTER_KEYS holds no key")
    return keys


def format_master_keys(keys: dict[str, bytes]) -> str:
    return ",".join(f"{key_id}:{_encode(raw)}" for key_id, raw in keys.items())


def _parse_signing_key(value: str) -> tuple[str, Ed25519PrivateKey]:
    key_id, sep, encoded = value.strip().partition(":")
    if not sep or not key_id:
        raise KeyConfigError("TICKETING_SIGNING_KEY must look like id:base64seed")
    seed = _b64(encoded, "TICKETING_SIGNING_KEY", 32)
    return key_id, Ed25519PrivateKey.from_private_bytes(seed)


def _derive(secret_key: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret_key.encode("utf-8"))


def parse_blind_index_keys(value: str | None) -> tuple[bytes, ...]:
    """``TICKETING_PREVIOUS_BLIND_INDEX_KEYS``: comma-separated base64 keys, oldest first."""
    if not value:
        return ()
    return tuple(_b64(item, "TICKETING_PREVIOUS_BLIND_INDEX_KEYS", 32) for item in value.split(",") if item.strip())


def parse_stream_secrets(value: str) -> tuple[str, ...]:
    secrets_listed = tuple(item.strip() for item in value.split(",") if item.strip())
    if not secrets_listed:
        raise KeyConfigError("TICKETING_STREAM_SECRETS holds no secret")
    if any(len(item) < 32 for item in secrets_listed):
        raise KeyConfigError("every secret in TICKETING_STREAM_SECRETS must be at least 32 characters")
    return secrets_listed


def load_keyring(
    secret_key: str,
    master_keys: str,
    blind_index_key: str,
    signing_key: str,
    previous_blind_index_keys: str | None = None,
    stream_secrets: str | None = None,
) -> KeyRing:
    if len(secret_key) < 32:
        raise KeyConfigError("TICKETING_SECRET_KEY must be at least 32 characters")
    masters = parse_master_keys(master_keys)
    signing_key_id, private_key = _parse_signing_key(signing_key)
    return KeyRing(
        master_keys=masters,
        newest_master_key_id=list(masters)[-1],
        blind_index_key=_b64(blind_index_key, "TICKETING_BLIND_INDEX_KEY", 32),
        signing_key_id=signing_key_id,
        signing_key=private_key,
        link_key=_derive(secret_key, b"guichet order links v1"),
        previous_blind_index_keys=parse_blind_index_keys(previous_blind_index_keys),
        stream_secrets=parse_stream_secrets(stream_secrets) if stream_secrets else (),
    )


DATED_MASTER_KEY_ID = re.compile(r"e(\d{4}-\d{2}-\d{2})\.[0-9a-f]{6}")


def new_master_key_entry(created_on: dt.date | None = None) -> str:
    """One ``id:base64key`` entry, to append to ``TICKETING_MASTER_KEYS``; its id names the
    day it was made (today by default), which is when its epoch starts."""
    day = created_on or dt.datetime.now(dt.UTC).date()
    return f"e{day.isoformat()}.{secrets.token_hex(3)}:{_encode(secrets.token_bytes(32))}"


def master_key_created_on(key_id: str) -> dt.date | None:
    """The day a master key was made, from its id; None for an id without one (keys made
    before epochs, or named by hand), whose age is therefore unknown."""
    match = DATED_MASTER_KEY_ID.fullmatch(key_id)
    if match is None:
        return None
    try:
        return dt.date.fromisoformat(match.group(1))
    except ValueError:
        return None


def new_blind_index_key() -> str:
    return _encode(secrets.token_bytes(32))


def new_key_values() -> dict[str, str]:
    """Fresh values for every key, in the formats above."""
    return {
        "secret_key": secrets.token_urlsafe(48),
        "master_keys": new_master_key_entry(),
        "blind_index_key": _encode(secrets.token_bytes(32)),
        "signing_key": f"s{secrets.token_hex(3)}:{_encode(secrets.token_bytes(32))}",
        "stream_secrets": secrets.token_urlsafe(48),
    }


KEY_VARIABLES = {
    "secret_key": "TICKETING_SECRET_KEY",
    "master_keys": "TICKETING_MASTER_KEYS",
    "blind_index_key": "TICKETING_BLIND_INDEX_KEY",
    "signing_key": "TICKETING_SIGNING_KEY",
    "stream_secrets": "TICKETING_STREAM_SECRETS",
}


def key_environ(values: dict[str, str] | None = None) -> dict[str, str]:
    """Key values (fresh ones by default) as the environment variables production reads."""
    values = values or new_key_values()
    return {variable: values[name] for name, variable in KEY_VARIABLES.items()}


def generate_key_file(path: Path) -> dict[str, str]:
    """Create the development key file once (mode 0600) and return its values.

    Two processes starting at once must agree on one set of keys: each writes a private
    temporary file, and ``os.link`` (atomic, fails if the name exists) lets exactly one
    of them publish it; the others read the winner's complete file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return _add_missing_keys(path)
    values = new_key_values()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle, indent=2)
    try:
        os.link(temporary, path)
    except FileExistsError:
        values = json.loads(path.read_text())
    finally:
        temporary.unlink()
    return values


def update_key_file(path: Path, changes: dict[str, str]) -> dict[str, str]:
    """Change entries of the development key file in place, atomically and still 0600.

    A crash leaves either the old file or the new one, never half of one: losing a master
    key would make every person's data unreadable.
    """
    values = json.loads(path.read_text())
    values.update(changes)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return values


@contextmanager
def key_file_lock(path: Path) -> Iterator[None]:
    """Hold the key file's exclusive lock: two processes changing it at once would each
    write back what they read, and one of them would lose a master key it had added."""
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _add_missing_keys(path: Path) -> dict[str, str]:
    """A key file from an older version lacks the keys added since: add them, keep the rest.

    Under an exclusive lock, so that two processes upgrading at once agree on one value;
    the file is replaced atomically and keeps mode 0600.
    """
    values = json.loads(path.read_text())
    if all(name in values for name in new_key_values()):
        return values
    with key_file_lock(path):
        values = json.loads(path.read_text())
        missing = {name: value for name, value in new_key_values().items() if name not in values}
        if missing:
            values.update(missing)
            temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(values, handle, indent=2)
            os.replace(temporary, path)
    return values
