"""back office: staff accounts, one-time links, API tokens as a table, organiser settings

- api_token: an organiser may hold several labelled, revocable API tokens. Every existing
  organiser.api_token_hash moves there as a live token labelled "First token", so the
  tokens already handed out keep working; the column then goes.
- staff_member and staff_link: back-office accounts (role, argon2id hash, TOTP seed sealed
  under the person's data key) and the hashes of their one-time links.
- person.kind: 'buyer' (every existing row) or 'staff'; staff records are indexed with a
  blind-index purpose of their own and never found by a buyer's lookup.
- organizer: the public details of the seller and data controller (contact email, legal
  name, postal address, support text), and whether staff must use a second factor.

Revision ID: 0011_backoffice_staff
Revises: 0010_job_run
Create Date: 2026-12-05 01:30:00

"""

import datetime as dt
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0011_backoffice_staff"
down_revision = "0010_job_run"
branch_labels = None
depends_on = None

FIRST_TOKEN_LABEL = "First token"


def upgrade():
    op.create_table(
        "api_token",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organizer_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["organizer_id"], ["organizer.id"], name=op.f("fk_api_token_organizer_id_organizer")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_token_token_hash")),
    )
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_token_organizer_id"), ["organizer_id"], unique=False)

    connection = op.get_bind()
    organizer = sa.table(
        "organizer",
        sa.column("id", sa.Uuid()),
        sa.column("api_token_hash", sa.String()),
        sa.column("created_at", sa.DateTime()),
    )
    api_token = sa.table(
        "api_token",
        sa.column("id", sa.Uuid()),
        sa.column("organizer_id", sa.Uuid()),
        sa.column("label", sa.String()),
        sa.column("token_hash", sa.String()),
        sa.column("created_at", sa.DateTime()),
    )
    rows = connection.execute(sa.select(organizer.c.id, organizer.c.api_token_hash, organizer.c.created_at)).all()
    if rows:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        connection.execute(
            api_token.insert(),
            [
                {
                    "id": uuid.uuid4(),
                    "organizer_id": organizer_id,
                    "label": FIRST_TOKEN_LABEL,
                    "token_hash": token_hash,
                    "created_at": created_at or now,
                }
                for organizer_id, token_hash, created_at in rows
            ],
        )

    with op.batch_alter_table("organizer", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_organizer_api_token_hash"), type_="unique")
        batch_op.drop_column("api_token_hash")
        batch_op.add_column(sa.Column("contact_email", sa.String(length=254), server_default="", nullable=False))
        batch_op.add_column(sa.Column("legal_name", sa.String(length=200), server_default="", nullable=False))
        batch_op.add_column(sa.Column("postal_address", sa.String(length=500), server_default="", nullable=False))
        batch_op.add_column(sa.Column("support_text", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(
            sa.Column("require_staff_totp", sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=8), server_default="buyer", nullable=False))
        batch_op.create_check_constraint(batch_op.f("ck_person_kind"), "kind IN ('buyer', 'staff')")

    op.create_table(
        "staff_member",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organizer_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("session_version", sa.Integer(), nullable=False),
        sa.Column("totp_secret_ct", sa.LargeBinary(), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("activated_at", sa.DateTime(), nullable=True),
        sa.Column("removed_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("role IN ('owner', 'manager', 'door')", name=op.f("ck_staff_member_role")),
        sa.CheckConstraint("status IN ('invited', 'active', 'removed')", name=op.f("ck_staff_member_status")),
        sa.ForeignKeyConstraint(
            ["organizer_id"], ["organizer.id"], name=op.f("fk_staff_member_organizer_id_organizer")
        ),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_staff_member_person_id_person")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_member")),
        sa.UniqueConstraint("person_id", name=op.f("uq_staff_member_person_id")),
    )
    with op.batch_alter_table("staff_member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_member_organizer_id"), ["organizer_id"], unique=False)

    op.create_table(
        "staff_link",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("purpose IN ('invite', 'reset')", name=op.f("ck_staff_link_purpose")),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_member.id"], name=op.f("fk_staff_link_staff_id_staff_member"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_staff_link")),
    )
    with op.batch_alter_table("staff_link", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_link_staff_id"), ["staff_id"], unique=False)

    if connection.dialect.name == "postgresql":
        # Like the vault's ciphertexts (0008): no samples of the sealed TOTP seeds in pg_statistic.
        op.execute("ALTER TABLE staff_member ALTER COLUMN totp_secret_ct SET STATISTICS 0")


def downgrade():
    op.drop_table("staff_link")
    op.drop_table("staff_member")
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_person_kind"), type_="check")
        batch_op.drop_column("kind")
    with op.batch_alter_table("organizer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("api_token_hash", sa.String(length=64), nullable=True))
        batch_op.drop_column("require_staff_totp")
        batch_op.drop_column("support_text")
        batch_op.drop_column("postal_address")
        batch_op.drop_column("legal_name")
        batch_op.drop_column("contact_email")
    # Each organiser gets back its oldest live token; the others are lost with the table.
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT organizer_id, token_hash FROM api_token WHERE revoked_at IS NULL ORDER BY created_at DESC"
        )
    ).all()
    for organizer_id, token_hash in rows:
        connection.execute(
            sa.text("UPDATE organizer SET api_token_hash = :hash WHERE id = :id"),
            {"hash": token_hash, "id": organizer_id},
        )
    with op.batch_alter_table("organizer", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_organizer_api_token_hash"), ["api_token_hash"])
    op.drop_table("api_token")
