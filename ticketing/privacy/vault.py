"""Store and read a person's data, always encrypted with that person's own data key.

Every other domain holds a ``person_id`` at most. Plaintext exists only in memory, for
the time it takes to send a mail or show the buyer their own data.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ticketing.crypto import (
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


@dataclass(frozen=True)
class PersonRecord:
    """A person's decrypted fields, held in memory only."""

    id: uuid.UUID
    email: str
    name: str | None
    postcode: str | None


PERSON = Person.__table__
DATA_KEY = DataKey.__table__
INSERT_DATA_KEY = insert(DATA_KEY)
PERSON_BY_INDEX = select(PERSON.c.id).where(PERSON.c.email_index == bindparam("email_index"))
PERSON_BY_INDEX_SHARED = PERSON_BY_INDEX.with_for_update(read=True)
# One per dialect, built once: "insert unless this email is already known".
_INSERT_NEW_PERSON = {
    "postgresql": postgresql.insert(PERSON).on_conflict_do_nothing(index_elements=["email_index"]),
    "sqlite": sqlite.insert(PERSON).on_conflict_do_nothing(index_elements=["email_index"]),
}


def _person_and_key_in_one_statement() -> Any:
    """PostgreSQL only: insert the person and their wrapped key in one round trip.

    The data key is wrapped for the candidate id before the statement runs; when the
    email is already known, the CTE inserts nothing and the key insert selects no row.
    """
    new_person = (
        postgresql.insert(PERSON)
        .values({column: bindparam(column) for column in PERSON_COLUMNS})
        .on_conflict_do_nothing(index_elements=["email_index"])
        .returning(PERSON.c.id)
        .cte("new_person")
    )
    return (
        insert(DATA_KEY)
        .from_select(
            ["person_id", "master_key_id", "wrapped_key", "created_at"],
            select(
                new_person.c.id,
                bindparam("master_key_id", type_=DATA_KEY.c.master_key_id.type),
                bindparam("wrapped_key", type_=DATA_KEY.c.wrapped_key.type),
                bindparam("key_created_at", type_=DATA_KEY.c.created_at.type),
            ),
        )
        .returning(DATA_KEY.c.person_id)
    )


PERSON_COLUMNS = ("id", "email_index", "index_key_id", "email_ct", "name_ct", "postcode_ct", "created_at")
INSERT_PERSON_AND_KEY_PG = _person_and_key_in_one_statement()


def _insert_new_person(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    try:
        return _INSERT_NEW_PERSON[dialect].returning(PERSON.c.id)
    except KeyError:
        raise RuntimeError(f"unsupported database dialect {dialect}") from None


def find_person_id(session: Session, keyring: KeyRing, email: str) -> uuid.UUID | None:
    """The person with this email, if any. During a blind-index key rotation, rows not yet
    rebuilt still carry an index made with a previous key, so those are tried too."""
    index = blind_index(keyring.blind_index_key, email)
    found = session.execute(select(Person.id).where(Person.email_index == index)).scalar()
    if found is not None or not keyring.previous_blind_index_keys:
        return found
    older = [blind_index(key, email) for key in keyring.previous_blind_index_keys]
    return session.execute(select(Person.id).where(Person.email_index.in_(older)).limit(1)).scalar()


def _data_key(session: Session, keyring: KeyRing, person_id: uuid.UUID) -> bytes | None:
    row = session.execute(
        select(DataKey.master_key_id, DataKey.wrapped_key).where(DataKey.person_id == person_id)
    ).first()
    if row is None:
        return None
    return unwrap_data_key(keyring, person_id, row.master_key_id, row.wrapped_key)


def store_person(
    session: Session,
    keyring: KeyRing,
    *,
    email: str,
    name: str | None = None,
    postcode: str | None = None,
    now: dt.datetime,
) -> uuid.UUID:
    """Return the person for this email, creating them on first purchase.

    Two first purchases with the same new address can race; the unique blind index
    decides, and the loser reads the winner's row instead of failing the order.
    """
    index = blind_index(keyring.blind_index_key, email)
    if keyring.previous_blind_index_keys:
        # Mid-rotation, a returning buyer's row may still carry an old index: find it, or
        # the insert below would create a second person for the same address.
        existing = find_person_id(session, keyring, email)
        if existing is not None:
            if name or postcode:
                _update_fields(session, keyring, existing, name=name, postcode=postcode)
            return existing
    # Insert first: most buyers are new, and this spares them a lookup.
    candidate = new_id()
    data_key = new_data_key()
    values = {
        "id": candidate,
        "email_index": index,
        "index_key_id": keyring.blind_index_key_id,
        "email_ct": encrypt_field(data_key, candidate, "email", email.strip()),
        "name_ct": encrypt_field(data_key, candidate, "name", name) if name else None,
        "postcode_ct": encrypt_field(data_key, candidate, "postcode", postcode) if postcode else None,
        "created_at": now,
    }
    connection = session.connection()
    insert_first = True
    if connection.dialect.name == "postgresql":
        master_key_id, wrapped = wrap_data_key(keyring, candidate, data_key)
        both = {**values, "master_key_id": master_key_id, "wrapped_key": wrapped, "key_created_at": now}
        person_id = connection.execute(INSERT_PERSON_AND_KEY_PG, both).scalar()
        if person_id is not None:
            return person_id
        insert_first = False  # the email is known: go straight to reading its row
    for _attempt in range(2):
        if insert_first:
            person_id = connection.execute(_insert_new_person(session), values).scalar()
            if person_id is not None:
                master_key_id, wrapped = wrap_data_key(keyring, person_id, data_key)
                connection.execute(
                    INSERT_DATA_KEY,
                    {"person_id": person_id, "master_key_id": master_key_id, "wrapped_key": wrapped, "created_at": now},
                )
                return person_id
        insert_first = True
        # A share lock on the returning buyer's row: an erasure (or the retention purge)
        # of this person waits for our order to commit and then sees it, or, when it got
        # the row first, blanks the index and we insert a fresh person on the next turn.
        # Without it, a new order could be linked to a person erased a moment before.
        person_id = connection.execute(PERSON_BY_INDEX_SHARED, {"email_index": index}).scalar()
        if person_id is not None:
            if name or postcode:
                _update_fields(session, keyring, person_id, name=name, postcode=postcode)
            return person_id
    raise RuntimeError("the person row kept changing under a purchase")


def _update_fields(
    session: Session, keyring: KeyRing, person_id: uuid.UUID, *, name: str | None, postcode: str | None
) -> None:
    """A returning buyer asked for a name or postcode this time: keep the latest answer."""
    data_key = _data_key(session, keyring, person_id)
    if data_key is None:
        return
    values: dict[str, bytes] = {}
    if name:
        values["name_ct"] = encrypt_field(data_key, person_id, "name", name)
    if postcode:
        values["postcode_ct"] = encrypt_field(data_key, person_id, "postcode", postcode)
    session.execute(update(Person).where(Person.id == person_id).values(**values))


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
