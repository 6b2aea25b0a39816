"""mail outbox: mail_queue, one row per mail owed (kind and subject id, no personal data)

Revision ID: 0006_mail_queue
Revises: 0005_payments
Create Date: 2026-12-02 10:12:40.218811

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_mail_queue'
down_revision = '0005_payments'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('mail_queue',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('claimed_until', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_queue'))
    )
    with op.batch_alter_table('mail_queue', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_queue_next_attempt_at'), ['next_attempt_at'], unique=False)


def downgrade():
    with op.batch_alter_table('mail_queue', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_queue_next_attempt_at'))

    op.drop_table('mail_queue')
