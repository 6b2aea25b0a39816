"""stream names are unique per organiser, not across organisers

Revision ID: 0009_stream_name_per_organizer
Revises: 0008_vault_statistics
Create Date: 2026-12-05 10:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0009_stream_name_per_organizer'
down_revision = '0008_vault_statistics'
branch_labels = None
depends_on = None


def upgrade():
    # Names were unique across organisers, so every existing row is unique per organiser too.
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_constraint('uq_event_stream_name', type_='unique')
        batch_op.create_unique_constraint('uq_event_organizer_stream_name', ['organizer_id', 'stream_name'])


def downgrade():
    # Fails, as it must, when two organisers have come to share a name since the upgrade.
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_constraint('uq_event_organizer_stream_name', type_='unique')
        batch_op.create_unique_constraint('uq_event_stream_name', ['stream_name'])
