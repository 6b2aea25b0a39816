"""person per order: a record of its own for every order's buyer; receipts name nobody

Until now one person row was shared by every order placed with the same address, so an
order's link opened (and an order with a name or postcode overwrote) what the other
orders held. Every order now has its own person row under its own data key:

- person.email_index is no longer unique (it groups one mailbox's records);
- orders.person_id becomes unique;
- erasure_receipt.person_id goes (a receipt may cover several records; an order finds its
  receipt through erased_order);
- a person shared by several orders is split: the oldest order keeps it, every other
  order gets a copy of the email (and of the name and postcode where that order's event
  asks for them), encrypted anew under a new data key. That needs the master keys, which
  the app hands to Alembic (``flask db upgrade``); the crypto below is frozen here on
  purpose, as it is at this revision, so that this migration never changes with the app.

Revision ID: 0007_person_per_order
Revises: 0006_mail_queue
Create Date: 2026-12-05 00:30:00

"""

import datetime as dt
import os
import uuid

import sqlalchemy as sa
from alembic import op
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

revision = "0007_person_per_order"
down_revision = "0006_mail_queue"
branch_labels = None
depends_on = None

FORMAT = b"\x01"


def _seal(key, plaintext, associated):
    nonce = os.urandom(12)
    return FORMAT + nonce + AESGCM(key).encrypt(nonce, plaintext, associated)


def _open(key, sealed, associated):
    return AESGCM(key).decrypt(sealed[1:13], sealed[13:], associated)


def _wrap_context(person_id, master_key_id):
    return b"guichet-data-key|" + person_id.bytes + b"|" + master_key_id.encode()


def _field_context(person_id, field):
    return b"guichet-field|" + person_id.bytes + b"|" + field.encode()


def _keyring():
    from flask import current_app

    try:
        return current_app.extensions["guichet.keyring"]
    except (RuntimeError, KeyError):
        raise RuntimeError(
            "0007_person_per_order splits persons shared by several orders and needs the master keys: "
            "run it with `flask --app wsgi db upgrade`"
        ) from None


PERSON = sa.table(
    "person",
    sa.column("id", sa.Uuid()),
    sa.column("email_index", sa.LargeBinary()),
    sa.column("index_key_id", sa.String()),
    sa.column("email_ct", sa.LargeBinary()),
    sa.column("name_ct", sa.LargeBinary()),
    sa.column("postcode_ct", sa.LargeBinary()),
    sa.column("created_at", sa.DateTime()),
)
DATA_KEY = sa.table(
    "data_key",
    sa.column("person_id", sa.Uuid()),
    sa.column("master_key_id", sa.String()),
    sa.column("wrapped_key", sa.LargeBinary()),
    sa.column("created_at", sa.DateTime()),
)
ORDERS = sa.table(
    "orders",
    sa.column("id", sa.Uuid()),
    sa.column("person_id", sa.Uuid()),
    sa.column("event_id", sa.Uuid()),
    sa.column("created_at", sa.DateTime()),
)
EVENT = sa.table(
    "event", sa.column("id", sa.Uuid()), sa.column("ask_name", sa.Boolean()), sa.column("ask_postcode", sa.Boolean())
)


def _split_shared_persons(connection):
    shared = (
        connection.execute(
            sa.select(ORDERS.c.person_id)
            .where(ORDERS.c.person_id.is_not(None))
            .group_by(ORDERS.c.person_id)
            .having(sa.func.count() > 1)
        )
        .scalars()
        .all()
    )
    if not shared:
        return
    ring = _keyring()
    newest_id = list(ring.master_keys)[-1]
    newest = ring.master_keys[newest_id]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for person_id in shared:
        person = connection.execute(
            sa.select(PERSON, DATA_KEY.c.master_key_id, DATA_KEY.c.wrapped_key)
            .join(DATA_KEY, DATA_KEY.c.person_id == PERSON.c.id)
            .where(PERSON.c.id == person_id)
        ).first()
        if person is None or person.email_ct is None:
            continue
        data_key = _open(
            ring.master_keys[person.master_key_id], person.wrapped_key, _wrap_context(person_id, person.master_key_id)
        )
        fields = {
            name: _open(data_key, sealed, _field_context(person_id, name)) if sealed else None
            for name, sealed in (("email", person.email_ct), ("name", person.name_ct), ("postcode", person.postcode_ct))
        }
        orders = connection.execute(
            sa.select(ORDERS.c.id, EVENT.c.ask_name, EVENT.c.ask_postcode)
            .join(EVENT, EVENT.c.id == ORDERS.c.event_id)
            .where(ORDERS.c.person_id == person_id)
            .order_by(ORDERS.c.created_at, ORDERS.c.id)
        ).all()
        for order in orders[1:]:
            new_id = uuid.uuid4()
            new_key = AESGCM.generate_key(bit_length=256)

            def seal(name, value, new_id=new_id, new_key=new_key):
                return _seal(new_key, value, _field_context(new_id, name)) if value is not None else None

            connection.execute(
                sa.insert(PERSON).values(
                    id=new_id,
                    email_index=person.email_index,
                    index_key_id=person.index_key_id,
                    email_ct=seal("email", fields["email"]),
                    name_ct=seal("name", fields["name"]) if order.ask_name else None,
                    postcode_ct=seal("postcode", fields["postcode"]) if order.ask_postcode else None,
                    created_at=person.created_at,
                )
            )
            connection.execute(
                sa.insert(DATA_KEY).values(
                    person_id=new_id,
                    master_key_id=newest_id,
                    wrapped_key=_seal(newest, new_key, _wrap_context(new_id, newest_id)),
                    created_at=now,
                )
            )
            connection.execute(sa.update(ORDERS).where(ORDERS.c.id == order.id).values(person_id=new_id))


def upgrade():
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_constraint("uq_person_email_index", type_="unique")
        batch_op.create_index("ix_person_email_index", ["email_index"], unique=False)
    _split_shared_persons(op.get_bind())
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_person_id")
        batch_op.create_unique_constraint("uq_orders_person_id", ["person_id"])
    with op.batch_alter_table("erasure_receipt", schema=None) as batch_op:
        batch_op.drop_constraint("uq_erasure_receipt_person_id", type_="unique")
        batch_op.drop_constraint("fk_erasure_receipt_person_id_person", type_="foreignkey")
        batch_op.drop_column("person_id")


def downgrade():
    """Only while every address has one record: merging records would pick one order's
    name over another's, which is the very fault this revision removed."""
    bind = op.get_bind()
    duplicates = bind.execute(
        sa.text(
            "SELECT COUNT(*) FROM (SELECT email_index FROM person WHERE email_index IS NOT NULL "
            "GROUP BY email_index HAVING COUNT(*) > 1) AS shared"
        )
    ).scalar()
    if duplicates:
        raise RuntimeError(f"{duplicates} address(es) have several person records; 0007 cannot be undone")
    with op.batch_alter_table("erasure_receipt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("person_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            "fk_erasure_receipt_person_id_person", "person", ["person_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_unique_constraint("uq_erasure_receipt_person_id", ["person_id"])
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint("uq_orders_person_id", type_="unique")
        batch_op.create_index("ix_orders_person_id", ["person_id"], unique=False)
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_index("ix_person_email_index")
        batch_op.create_unique_constraint("uq_person_email_index", ["email_index"])
