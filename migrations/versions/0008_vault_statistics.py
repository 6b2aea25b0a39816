"""vault: PostgreSQL keeps no statistics of the wrapped keys and ciphertexts

ANALYZE (autovacuum runs it on its own) copies sample values of every column into
pg_statistic: up to a hundred wrapped data keys and ciphertexts, kept there after their
rows are erased. A statistics target of 0 stops that; changing a column to its own type
drops what was already collected (without rewriting the table). The blind index keeps a
target of 0 as well: equality lookups go through its index, which needs no sample.

Revision ID: 0008_vault_statistics
Revises: 0007_person_per_order
Create Date: 2026-12-05 01:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0008_vault_statistics'
down_revision = '0007_person_per_order'
branch_labels = None
depends_on = None

SECRET_COLUMNS = (
    ('data_key', 'wrapped_key'),
    ('person', 'email_ct'),
    ('person', 'name_ct'),
    ('person', 'postcode_ct'),
)


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return  # SQLite's ANALYZE samples indexed columns only, and none of these is indexed
    for table, column in SECRET_COLUMNS:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS 0')
        op.execute(f'ALTER TABLE {table} ALTER COLUMN {column} TYPE bytea')
    op.execute('ALTER TABLE person ALTER COLUMN email_index SET STATISTICS 0')


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, column in (*SECRET_COLUMNS, ('person', 'email_index')):
        op.execute(f'ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS -1')
