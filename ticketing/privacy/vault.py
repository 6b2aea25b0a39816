"""Store and read a person's data, always encrypted with that record's own data key.

Every other domain holds a ``person_id`` at most. Plaintext exists only in memory, for
the time it takes to send a mail or show the buyer their own data.

A person record is what one buyer gave for one order (see ``privacy.models.Person``):
``store_person`` always makes a new one, so no purchase can read or change what an
earlier purchase with the same address holds.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import exists, insert, select, update
from sqlalchemy.orm import Session, aliased

from ticketing.crypto import (
    BUYER_EMAIL,
    STAFF_EMAIL,
    KeyRing,
    blind_index,
    decrypt_field,
    encrypt_field,
    new_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from ticketing.models import new_id
from ticketing.privacy.models import DataKey, Person

FIELDS = ("email", "name", "postcode")
# Each kind of record has its own blind-index purpose: a staff login is never found by a
# buyer's lookup, nor a buyer by the back office's.
INDEX_PURPOSES = {"buyer": BUYER_EMAIL, "staff": STAFF_EMAIL}


@dataclass(frozen=True)
class PersonRecord:
    """A person's decrypted fields, held in memory only."""

    id: uuid.UUID
    email: str
    name: str | None
    postcode: str | None


def email_indexes(keyring: KeyRing, email: str, kind: str = "buyer") -> list[bytes]:
    """Every blind index this address may be stored under: the current key's first, then
    those of previous keys, which rows not yet rebuilt after a key rotation still carry."""
    purpose = INDEX_PURPOSES[kind]
    return [blind_index(key, email, purpose) for key in (keyring.blind_index_key, *keyring.previous_blind_index_keys)]


def find_person_ids(session: Session, indexes: Sequence[bytes], kind: str = "buyer") -> list[uuid.UUID]:
    """The records of a mailbox that are not erased, oldest first (buyers' by default)."""
    if not indexes:
        return []
    return list(
        session.execute(
            select(Person.id)
            .where(Person.email_index.in_(indexes), Person.erased_at.is_(None), Person.kind == kind)
            .order_by(Person.created_at, Person.id)
        ).scalars()
    )


def has_earlier_record(session: Session, person_id: uuid.UUID) -> bool:
    """Whether this mailbox gave Guichet an address before this record (a returning buyer).

    Erased records have no index any more, so they do not count: erasure forgets that too.
    """
    earlier = aliased(Person)
    this = aliased(Person)
    return bool(
        session.execute(
            select(
                exists().where(
                    earlier.email_index == this.email_index,
                    earlier.created_at < this.created_at,
                    earlier.id != this.id,
                )
            )
            .select_from(this)
            .where(this.id == person_id, this.email_index.is_not(None))
        ).scalar()
    )


def store_person(
    session: Session,
    keyring: KeyRing,
    *,
    email: str,
    name: str | None = None,
    postcode: str | None = None,
    now: dt.datetime,
    kind: str = "buyer",
) -> uuid.UUID:
    """A new record for one order's buyer (or one staff member), sealed under a new data
    key; returns its id.

    Two statements inside the caller's transaction: the record, then its wrapped key.
    """
    person_id = new_id()
    data_key = new_data_key()
    master_key_id, wrapped = wrap_data_key(keyring, person_id, data_key)
    connection = session.connection()
    connection.execute(
        insert(Person),
        {
            "id": person_id,
            "email_index": blind_index(keyring.blind_index_key, email, INDEX_PURPOSES[kind]),
            "index_key_id": keyring.blind_index_key_id,
            "email_ct": encrypt_field(data_key, person_id, "email", email.strip()),
            "name_ct": encrypt_field(data_key, person_id, "name", name) if name else None,
            "postcode_ct": encrypt_field(data_key, person_id, "postcode", postcode) if postcode else None,
            "created_at": now,
            "erased_at": None,
            "kind": kind,
        },
    )
    connection.execute(
        insert(DataKey),
        {"person_id": person_id, "master_key_id": master_key_id, "wrapped_key": wrapped, "created_at": now},
    )
    return person_id


def _data_key(session: Session, keyring: KeyRing, person_id: uuid.UUID) -> bytes | None:
    row = session.execute(
        select(DataKey.master_key_id, DataKey.wrapped_key).where(DataKey.person_id == person_id)
    ).first()
    if row is None:
        return None
    return unwrap_data_key(keyring, person_id, row.master_key_id, row.wrapped_key)


def read_person(session: Session, keyring: KeyRing, person_id: uuid.UUID) -> PersonRecord | None:
    """Decrypt a person, or None when they were erased (their data key is gone)."""
    person = session.get(Person, person_id)
    if person is None or person.is_erased or person.email_ct is None:
        return None
    data_key = _data_key(session, keyring, person_id)
    if data_key is None:
        return None

    def field(name: str, sealed: bytes | None) -> str | None:
        return decrypt_field(data_key, person_id, name, sealed) if sealed else None

    return PersonRecord(
        id=person_id,
        email=decrypt_field(data_key, person_id, "email", person.email_ct),
        name=field("name", person.name_ct),
        postcode=field("postcode", person.postcode_ct),
    )


def seal_for_person(session: Session, keyring: KeyRing, person_id: uuid.UUID, field: str, value: str) -> bytes:
    """Seal a secret that belongs with a record (a staff member's TOTP seed) under that
    record's data key: the record's erasure makes it unreadable too. The caller keeps the
    ciphertext; ``field`` (never one of ``FIELDS``) binds it to its purpose."""
    if field in FIELDS:
        raise ValueError(f"{field!r} is a vault field; use store_person")
    data_key = _data_key(session, keyring, person_id)
    if data_key is None:
        raise ValueError("this record was erased")
    return encrypt_field(data_key, person_id, field, value)


def open_for_person(session: Session, keyring: KeyRing, person_id: uuid.UUID, field: str, sealed: bytes) -> str | None:
    """What ``seal_for_person`` sealed, or None once the record is erased."""
    data_key = _data_key(session, keyring, person_id)
    if data_key is None:
        return None
    return decrypt_field(data_key, person_id, field, sealed)


def change_person_name(session: Session, keyring: KeyRing, person_id: uuid.UUID, name: str | None) -> None:
    """Replace a record's name (a staff member's display name), sealed under its own key,
    inside the caller's transaction."""
    data_key = _data_key(session, keyring, person_id)
    if data_key is None:
        raise ValueError("this record was erased")
    sealed = encrypt_field(data_key, person_id, "name", name) if name else None
    session.execute(
        update(Person).where(Person.id == person_id).values(name_ct=sealed).execution_options(synchronize_session=False)
    )
