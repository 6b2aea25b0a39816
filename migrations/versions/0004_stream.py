"""livestream: event stream settings, viewer sessions

Revision ID: 0004_stream
Revises: 0003_checkin
Create Date: 2026-11-25 22:45:23.077641

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004_stream'
down_revision = '0003_checkin'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('viewer_session',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('ticket_id', sa.Uuid(), nullable=False),
    sa.Column('cookie_hash', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('end_reason', sa.String(length=16), nullable=True),
    sa.CheckConstraint("end_reason IS NULL OR end_reason IN ('superseded', 'closed')", name=op.f('ck_viewer_session_end_reason')),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_viewer_session_ticket_id_ticket'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_viewer_session')),
    sa.UniqueConstraint('cookie_hash', name=op.f('uq_viewer_session_cookie_hash'))
    )
    with op.batch_alter_table('viewer_session', schema=None) as batch_op:
        batch_op.create_index('ix_viewer_session_ticket_live', ['ticket_id', 'ended_at', 'expires_at'], unique=False)

    # Existing events get the defaults: no stream URL, gate mode, one screen, newest wins.
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stream_url', sa.String(length=500), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('stream_name', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('stream_access', sa.String(length=16), nullable=False, server_default='gate'))
        batch_op.add_column(sa.Column('stream_max_screens', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('stream_screen_policy', sa.String(length=16), nullable=False, server_default='newest_wins'))
        batch_op.add_column(sa.Column('stream_replay_until', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('stream_publisher_key_hash', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_event_stream_name'), ['stream_name'])
        batch_op.create_check_constraint('stream_max_screens', 'stream_max_screens BETWEEN 1 AND 100')
        batch_op.create_check_constraint('stream_screen_policy', "stream_screen_policy IN ('newest_wins', 'refuse_new')")
        batch_op.create_check_constraint('stream_access', "stream_access IN ('gate', 'signed_url')")


def downgrade():
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_constraint('stream_access', type_='check')
        batch_op.drop_constraint('stream_screen_policy', type_='check')
        batch_op.drop_constraint('stream_max_screens', type_='check')
        batch_op.drop_constraint(batch_op.f('uq_event_stream_name'), type_='unique')
        batch_op.drop_column('stream_publisher_key_hash')
        batch_op.drop_column('stream_replay_until')
        batch_op.drop_column('stream_screen_policy')
        batch_op.drop_column('stream_max_screens')
        batch_op.drop_column('stream_access')
        batch_op.drop_column('stream_name')
        batch_op.drop_column('stream_url')

    with op.batch_alter_table('viewer_session', schema=None) as batch_op:
        batch_op.drop_index('ix_viewer_session_ticket_live')

    op.drop_table('viewer_session')
