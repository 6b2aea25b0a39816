"""Erasure, export, retention and key rotation: the promises the vault makes, kept.

Erasure is crypto-shredding: the person's data key row is deleted, so their ciphertexts
cannot be opened again by anyone, master keys or not; the ciphertexts and the blind index
are blanked as well, every other domain cuts its link to the person (``PersonLinks``),
and a receipt records when and how, with nothing about the person.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import logging
import secrets
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from ticketing.crypto import KeyRing, blind_index, unwrap_data_key, wrap_data_key
from ticketing.crypto.envelope import DecryptionFailed, decrypt_field
from ticketing.crypto.keys import master_key_created_on
from ticketing.errors import NotFound
from ticketing.models import begin_write, new_id
from ticketing.privacy.errors import InvalidLink, LinkExpired, LinkUsed
from ticketing.privacy.models import DataKey, ErasedOrder, ErasureReceipt, Person, UsedPrivacyToken
from ticketing.privacy.person_links import OrderOwner, PersonLinks
from ticketing.privacy.scrub import scrub_vault
from ticketing.privacy.vault import INDEX_PURPOSES, find_person_ids, read_person
from ticketing.web import api_time

log = logging.getLogger(__name__)

LINK_SALT = "guichet privacy request v1"
LINK_MAX_AGE = 30 * 60
BATCH = 1000


@dataclass(frozen=True)
class Receipt:
    id: uuid.UUID
    erased_at: dt.datetime
    route: str
    orders_affected: int

    def as_json(self) -> dict[str, Any]:
        return {
            "receipt_id": str(self.id),
            "erased_at": api_time(self.erased_at),
            "route": self.route,
            "orders_affected": self.orders_affected,
        }


def _receipt(row: ErasureReceipt) -> Receipt:
    return Receipt(row.id, row.erased_at, row.route, row.orders_affected)


# --- who is asking -------------------------------------------------------------------


@dataclass(frozen=True)
class Requester:
    """What a link or token opens: the person records its holder may see and erase.

    An order's link opens that order's record alone (``order_id``), even when other orders
    were placed with the same address: it proves only that its holder placed that order.
    An emailed "my data" link proves control of the mailbox, so it opens every record of
    that address (``token_hash``, spent by an erasure).
    """

    person_ids: tuple[uuid.UUID, ...]
    order_id: uuid.UUID | None = None
    order_code: str | None = None
    receipt_id: uuid.UUID | None = None  # the order's buyer was erased already: that receipt
    token_hash: str | None = None


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=LINK_SALT)


class _ClockedSerializer(URLSafeTimedSerializer):
    """Signs with the ``now`` the caller passes (itsdangerous reads the clock itself)."""

    def __init__(self, secret_key: str, now: dt.datetime) -> None:
        super().__init__(secret_key, salt=LINK_SALT)
        self._now = int(now.timestamp())

    def make_signer(self, salt: Any = None):  # type: ignore[no-untyped-def]
        signer = super().make_signer(salt)
        signer.get_timestamp = lambda: self._now  # type: ignore[method-assign]
        return signer


def make_request_token(secret_key: str, indexes: Sequence[bytes], now: dt.datetime) -> str:
    """The emailed "my data" token: the mailbox's blind indexes (keyed hashes, not the
    address), so that it opens every record of that address, including one made after the
    mail was sent. A random nonce makes each token distinct, so that using one (recorded by
    its hash) does not spend the others."""
    encoded = [base64.urlsafe_b64encode(index).decode("ascii").rstrip("=") for index in indexes]
    return _ClockedSerializer(secret_key, now).dumps({"i": encoded, "n": secrets.token_urlsafe(8)})


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _invalid_link() -> InvalidLink:
    return InvalidLink(_("This link is not valid. Check that you copied the whole link."))


def _decode_indexes(payload: Any) -> list[bytes]:
    try:
        encoded = payload["i"]
        if not isinstance(encoded, list) or not 1 <= len(encoded) <= 8:
            raise ValueError
        indexes = [base64.urlsafe_b64decode(item + "=" * (-len(item) % 4)) for item in encoded]
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise _invalid_link() from None
    if any(len(index) != 32 for index in indexes):
        raise _invalid_link()
    return indexes


def requester_from_token(session: Session, secret_key: str, token: str, now: dt.datetime) -> Requester:
    """Open an emailed token: 401 when forged or expired, 410 when already used."""
    serializer = _serializer(secret_key)
    try:
        payload, signed_at = serializer.loads(token, return_timestamp=True)
    except BadSignature:
        raise _invalid_link() from None
    # Age checked against the ``now`` passed in, not the clock, so that tests need no sleep.
    if not dt.timedelta(0) <= now - signed_at <= dt.timedelta(seconds=LINK_MAX_AGE):
        raise LinkExpired(_("This link has expired (links last 30 minutes). Ask for a new one."))
    indexes = _decode_indexes(payload)
    token_hash = _token_hash(token)
    if session.get(UsedPrivacyToken, token_hash) is not None:
        raise LinkUsed(_("This link was already used. Ask for a new one if you need to."))
    return Requester(person_ids=tuple(find_person_ids(session, indexes)), token_hash=token_hash)


def requester_from_order(session: Session, links: Sequence[PersonLinks], code: str, token: str) -> Requester:
    """Open an order link (code and access token); 404 when they do not match an order."""
    owner: OrderOwner | None = None
    for link in links:
        owner = link.order_owner(session, code, token)
        if owner is not None:
            break
    if owner is None:
        raise NotFound(_("No order matches this link. Check that you copied the whole link."), code="order_not_found")
    if owner.person_id is not None:
        return Requester(person_ids=(owner.person_id,), order_id=owner.order_id, order_code=owner.order_code)
    erased = session.get(ErasedOrder, owner.order_id)
    return Requester(
        person_ids=(),
        order_id=owner.order_id,
        order_code=owner.order_code,
        receipt_id=erased.receipt_id if erased else None,
    )


# --- erasure ------------------------------------------------------------------------


def erase_person(
    session: Session,
    links: Sequence[PersonLinks],
    requester: Requester,
    *,
    route: str,
    now: dt.datetime,
) -> Receipt:
    """Erase every record the requester may erase, under one receipt; asked again for an
    order already erased, return the receipt of that earlier erasure."""
    begin_write(session)
    receipts = _erase_batch(session, links, [requester.person_ids], route=route, now=now)
    if not receipts:
        receipt = _earlier_receipt(session, requester)
        session.rollback()
        return receipt
    if requester.token_hash is not None:
        session.execute(insert(UsedPrivacyToken).values(token_hash=requester.token_hash, used_at=now))
    [receipt] = receipts
    session.commit()
    log.info("person erased (receipt %s, route %s, %d orders)", receipt.id, route, receipt.orders_affected)
    # After the commit, outside its transaction: the deleted rows must be gone from the
    # files before the buyer is told they are erased.
    scrub_vault(session.get_bind())
    return receipt


def erase_records_in_transaction(
    session: Session,
    links: Sequence[PersonLinks],
    person_ids: Sequence[uuid.UUID],
    *,
    route: str,
    now: dt.datetime,
) -> Receipt | None:
    """Crypto-shred these records inside the caller's write transaction (a staff account
    removed with its other changes), under one receipt; None when none was left. The
    caller commits, then calls ``scrub_vault`` as ``erase_person`` does."""
    receipts = _erase_batch(session, links, [person_ids], route=route, now=now)
    return receipts[0] if receipts else None


def _earlier_receipt(session: Session, requester: Requester) -> Receipt:
    """Nothing was left to erase: the receipt that covers the requester's order, if any."""
    receipt_id = requester.receipt_id
    if receipt_id is None and requester.order_id is not None:
        erased = session.get(ErasedOrder, requester.order_id)  # erased meanwhile, by another request
        receipt_id = erased.receipt_id if erased else None
    row = session.get(ErasureReceipt, receipt_id) if receipt_id else None
    if row is None:
        raise NotFound(_("No personal data is linked to this order."), code="nothing_held")
    return _receipt(row)


def _erase_batch(
    session: Session,
    links: Sequence[PersonLinks],
    groups: Sequence[Sequence[uuid.UUID]],
    *,
    route: str,
    now: dt.datetime,
) -> list[Receipt]:
    """Crypto-shred these persons inside the caller's write transaction, one receipt per
    group (one request, or one person of the retention purge) that had anything left.

    Only rows still not erased are touched (locked, then ``erased_at IS NULL`` decides,
    under the write lock), so two erasures of one person cannot both count it.
    """
    wanted = [person_id for group in groups for person_id in group]
    if not wanted:
        return []
    locked = set(
        session.execute(
            select(Person.id).where(Person.id.in_(wanted), Person.erased_at.is_(None)).with_for_update()
        ).scalars()
    )
    if not locked:
        return []
    session.execute(delete(DataKey).where(DataKey.person_id.in_(locked)).execution_options(synchronize_session=False))
    session.execute(
        update(Person)
        .where(Person.id.in_(locked))
        .values(email_index=None, email_ct=None, name_ct=None, postcode_ct=None, index_key_id=None, erased_at=now)
        .execution_options(synchronize_session=False)
    )
    orders: dict[uuid.UUID, list[uuid.UUID]] = {}
    for link in links:
        for person_id, order_ids in link.unlink(session, list(locked)).items():
            orders.setdefault(person_id, []).extend(order_ids)
    receipts: list[Receipt] = []
    erased_orders: list[dict[str, uuid.UUID]] = []
    for group in groups:
        erased_here = [person_id for person_id in group if person_id in locked]
        if not erased_here:
            continue
        order_ids = [order_id for person_id in erased_here for order_id in orders.get(person_id, [])]
        receipts.append(Receipt(new_id(), now, route, len(order_ids)))
        erased_orders.extend({"order_id": order_id, "receipt_id": receipts[-1].id} for order_id in order_ids)
    session.execute(
        insert(ErasureReceipt),
        [{"id": r.id, "erased_at": now, "route": route, "orders_affected": r.orders_affected} for r in receipts],
    )
    if erased_orders:
        session.execute(insert(ErasedOrder), erased_orders)
    return receipts


# --- export -------------------------------------------------------------------------

KEPT_AFTER_ERASURE = (
    (
        "orders",
        "Order codes, amounts, currency, dates, status and payment references, with no link to you.",
        "Accounting law requires us to keep the records of sales for several years.",
    ),
    (
        "tickets",
        "Ticket ids, types and status.",
        "Tickets are bearer credentials with no personal data; they stay valid for entry or streaming.",
    ),
    (
        "erasure_receipt",
        "When the erasure happened, how it was asked for, and how many orders it touched.",
        "Proof that we erased your data, which we must be able to show.",
    ),
)


def export_person(
    session: Session,
    keyring: KeyRing,
    links: Sequence[PersonLinks],
    requester: Requester,
    *,
    now: dt.datetime,
) -> dict[str, Any]:
    """Everything the requester may see, decrypted, with why and for how long.

    ``persons`` lists each record (one per order) with the orders it belongs to. After
    erasure it says that nothing is held, and shows the receipt of the order link.
    """
    sections: dict[str, list[dict[str, Any]]] = {"orders": [], "tickets": [], "check_ins": [], "stream_sessions": []}
    persons: list[dict[str, Any]] = []
    ends: list[dt.datetime] = []
    for person_id in requester.person_ids:
        record = read_person(session, keyring, person_id)
        if record is None:
            continue
        order_codes: list[str] = []
        for link in links:
            for name, items in link.export(session, record.id).items():
                sections.setdefault(name, []).extend(items)
                if name == "orders":
                    order_codes.extend(item["code"] for item in items)
            ends.extend(end for end in link.retention_ends(session, [record.id]).values() if end is not None)
        persons.append(
            {
                "id": str(record.id),
                "email": record.email,
                "name": record.name,
                "postcode": record.postcode,
                "orders": order_codes,
            }
        )
    receipt_row = None
    if not persons:
        receipt_id = requester.receipt_id
        if receipt_id is None and requester.order_id is not None:
            erased = session.get(ErasedOrder, requester.order_id)
            receipt_id = erased.receipt_id if erased else None
        receipt_row = session.get(ErasureReceipt, receipt_id) if receipt_id else None
    session.rollback()
    return {
        "generated_at": api_time(now),
        "personal_data_held": bool(persons),
        "persons": persons,
        **sections,
        "retention": {
            "erased_automatically_after": api_time(max(ends)) if ends else None,
            "rule": "Personal data given for an order is erased when that order's event is past its retention "
            "period (by default 30 days after the event ends).",
        },
        "erasure_receipt": _receipt(receipt_row).as_json() if receipt_row else None,
        "kept_after_erasure": [
            {"what": what, "detail": detail, "why": why} for what, detail, why in KEPT_AFTER_ERASURE
        ],
    }


# --- retention ----------------------------------------------------------------------


def count_persons_to_check(session: Session) -> int:
    return session.execute(select(func.count()).select_from(Person).where(Person.erased_at.is_(None))).scalar_one()


@dataclass(frozen=True)
class PurgeBatch:
    checked: int
    erased: int
    skipped: tuple[uuid.UUID, ...]  # persons whose retention could not be worked out: kept


def purge_expired_persons(
    session: Session, links: Sequence[PersonLinks], *, now: dt.datetime, batch_size: int = BATCH
) -> Iterator[PurgeBatch]:
    """Erase every person no domain needs any more, one ``PurgeBatch`` at a time.

    Walks the persons by id (keyset), one transaction per batch, so it streams in flat
    memory, can be interrupted at any point, and a rerun simply finds less to do. A person
    some domain still needs is kept; one whose retention no domain can work out (a date
    out of range) is kept and reported, and the purge goes on with everyone else. Once
    every batch is done, the vault's files are scrubbed, whether or not this run erased
    anyone: that also finishes a scrub an earlier erasure could not complete.
    """
    after: uuid.UUID | None = None
    while True:
        query = select(Person.id).where(Person.erased_at.is_(None)).order_by(Person.id).limit(batch_size)
        if after is not None:
            query = query.where(Person.id > after)
        batch = session.execute(query).scalars().all()
        session.rollback()
        if not batch:
            scrub_vault(session.get_bind())
            return
        checked = len(batch)
        after = batch[-1]
        begin_write(session)
        batch = (
            session.execute(select(Person.id).where(Person.id.in_(batch), Person.erased_at.is_(None)).with_for_update())
            .scalars()
            .all()
        )
        needed: dict[uuid.UUID, dt.datetime | None] = {}
        for link in links:
            for person_id, until in link.retention_ends(session, batch).items():
                known = needed.get(person_id, until)
                needed[person_id] = None if until is None or known is None else max(until, known)
        skipped = tuple(p for p in batch if p in needed and needed[p] is None)
        expired = [p for p in batch if p not in needed or (needed[p] is not None and needed[p] <= now)]
        erased = _erase_batch(session, links, [[p] for p in expired], route="retention", now=now)
        session.commit()
        if skipped:
            log.warning("purge kept %d persons whose retention date is out of range: %s", len(skipped), skipped)
        yield PurgeBatch(checked, len(erased), skipped)


def forget_spent_links(session: Session, now: dt.datetime) -> int:
    """Drop the hashes of spent links that have expired anyway (signed before their use, so
    dead ``LINK_MAX_AGE`` after it): the table stays small without weakening single use."""
    begin_write(session)
    removed = session.execute(
        delete(UsedPrivacyToken)
        .where(UsedPrivacyToken.used_at < now - dt.timedelta(seconds=LINK_MAX_AGE))
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return removed


# --- key rotation -------------------------------------------------------------------

# Master keys are epochs. Every data key is re-wrapped to the newest master key (daily,
# ``flask rotate-master-key``), and a retired key is destroyed (removed from the keys)
# once no data key uses it. A copy of a wrapped data key (a backup, a WAL archive, a
# replica) opens only with the key that wrapped it, so it becomes useless when that key
# is destroyed: no master key may live longer than MASTER_KEY_MAX_DAYS, and that is the
# bound README promises for backups. A new epoch starts every MASTER_KEY_ROTATE_DAYS, so
# the key it retires is destroyed at the next step, before it is MAX_DAYS old.
MASTER_KEY_ROTATE_DAYS = 14
MASTER_KEY_MAX_DAYS = 30


class MasterKeyInUse(Exception):
    """Destroying this master key would leave data keys no key can open (an operator's
    command refuses; no request ever destroys a key)."""


@dataclass(frozen=True)
class MasterKeySchedule:
    """Where the configured master keys stand against the bound, from their dates alone
    (no query, so ``/healthz`` can tell it)."""

    newest_key_id: str
    next_epoch_on: dt.date
    destroy_by: dt.date | None
    state: str

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "next_epoch_on": self.next_epoch_on.isoformat(),
            "oldest_key_destroyed_by": self.destroy_by.isoformat() if self.destroy_by else None,
        }


def master_key_schedule(keyring: KeyRing, today: dt.date) -> MasterKeySchedule:
    """``due``: start a new epoch now; ``overdue``: a configured key is older than the
    bound (or of unknown age), so backup copies under it still open."""
    newest_on = master_key_created_on(keyring.newest_master_key_id)
    next_epoch_on = newest_on + dt.timedelta(days=MASTER_KEY_ROTATE_DAYS) if newest_on else today
    made_on = [master_key_created_on(key_id) for key_id in keyring.master_keys]
    dated = [day for day in made_on if day is not None]
    destroy_by = min(dated) + dt.timedelta(days=MASTER_KEY_MAX_DAYS) if len(dated) == len(made_on) else None
    if destroy_by is None or today >= destroy_by:
        state = "overdue"
    elif today >= next_epoch_on:
        state = "due"
    else:
        state = "ok"
    return MasterKeySchedule(keyring.newest_master_key_id, next_epoch_on, destroy_by, state)


def count_data_keys_by_master_key(session: Session) -> dict[str, int]:
    rows = session.execute(select(DataKey.master_key_id, func.count()).group_by(DataKey.master_key_id))
    return {key_id: count for key_id, count in rows}


def check_master_keys_unused(session: Session, key_ids: Sequence[str]) -> None:
    """Refuse to destroy a master key that still wraps a data key: those persons would be
    lost for good, not erased with a receipt."""
    if not key_ids:
        return
    in_use = session.execute(
        select(DataKey.master_key_id, func.count())
        .where(DataKey.master_key_id.in_(key_ids))
        .group_by(DataKey.master_key_id)
    ).first()
    session.rollback()
    if in_use is not None:
        key_id, count = in_use
        raise MasterKeyInUse(
            f"master key {key_id} still wraps {count} data key(s); run `flask rotate-master-key` to re-wrap "
            "them under the newest key first"
        )


def count_data_keys_to_rewrap(session: Session, keyring: KeyRing) -> int:
    return session.execute(
        select(func.count()).select_from(DataKey).where(DataKey.master_key_id != keyring.newest_master_key_id)
    ).scalar_one()


def rewrap_data_keys(session: Session, keyring: KeyRing, *, batch_size: int = BATCH) -> Iterator[int]:
    """Re-wrap every data key not under the newest master key; yields how many per batch.

    Each batch commits on its own: an interrupted run leaves rows under either key (both
    still configured), and a rerun picks up exactly the rows left.
    """
    newest = keyring.newest_master_key_id
    while True:
        begin_write(session)
        rows = session.execute(
            select(DataKey.person_id, DataKey.master_key_id, DataKey.wrapped_key)
            .where(DataKey.master_key_id != newest)
            .order_by(DataKey.person_id)
            .limit(batch_size)
            .with_for_update()
        ).all()
        if not rows:
            session.rollback()
            return
        for person_id, master_key_id, wrapped in rows:
            data_key = unwrap_data_key(keyring, person_id, master_key_id, wrapped)
            key_id, rewrapped = wrap_data_key(keyring, person_id, data_key)
            session.execute(
                update(DataKey)
                .where(DataKey.person_id == person_id, DataKey.master_key_id == master_key_id)
                .values(master_key_id=key_id, wrapped_key=rewrapped)
                .execution_options(synchronize_session=False)
            )
        session.commit()
        yield len(rows)


def count_persons_to_reindex(session: Session, keyring: KeyRing) -> int:
    return session.execute(
        select(func.count())
        .select_from(Person)
        .where(Person.erased_at.is_(None), Person.email_ct.is_not(None))
        .where((Person.index_key_id != keyring.blind_index_key_id) | Person.index_key_id.is_(None))
    ).scalar_one()


def rebuild_blind_index(session: Session, keyring: KeyRing, *, batch_size: int = BATCH) -> Iterator[int]:
    """Recompute the email index of every person whose index another key made.

    Lookups try the current key then the previous ones (``find_person_id``), so the app
    keeps finding everyone while this runs; rows record which key made their index, so a
    rerun resumes where it stopped.
    """
    current = keyring.blind_index_key_id
    while True:
        begin_write(session)
        rows = session.execute(
            select(Person.id, Person.email_ct, Person.kind, DataKey.master_key_id, DataKey.wrapped_key)
            .join(DataKey, DataKey.person_id == Person.id)
            .where(Person.erased_at.is_(None), Person.email_ct.is_not(None))
            .where((Person.index_key_id != current) | Person.index_key_id.is_(None))
            .order_by(Person.id)
            .limit(batch_size)
        ).all()
        if not rows:
            session.rollback()
            return
        for person_id, email_ct, kind, master_key_id, wrapped in rows:
            try:
                data_key = unwrap_data_key(keyring, person_id, master_key_id, wrapped)
                email = decrypt_field(data_key, person_id, "email", email_ct)
            except DecryptionFailed:
                log.error("person %s: email does not decrypt; index left as it was", person_id)
                session.execute(
                    update(Person)
                    .where(Person.id == person_id)
                    .values(index_key_id=current)
                    .execution_options(synchronize_session=False)
                )
                continue
            session.execute(
                update(Person)
                .where(Person.id == person_id)
                .values(
                    email_index=blind_index(keyring.blind_index_key, email, INDEX_PURPOSES[kind]), index_key_id=current
                )
                .execution_options(synchronize_session=False)
            )
        session.commit()
        yield len(rows)
