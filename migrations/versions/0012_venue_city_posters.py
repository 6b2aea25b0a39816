"""events list: the venue's city, and event posters (resized JPEGs, no metadata)

Revision ID: 0012_venue_city_posters
Revises: 0011_backoffice_staff
Create Date: 2026-12-05 04:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0012_venue_city_posters'
down_revision = '0011_backoffice_staff'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('venue_city', sa.String(length=100), server_default='', nullable=False))
    op.create_table(
        'poster',
        sa.Column('event_id', sa.Uuid(), nullable=False),
        sa.Column('version', sa.String(length=16), nullable=False),
        sa.Column('alt', sa.String(length=300), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['event_id'], ['event.id'], name=op.f('fk_poster_event_id_event'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('event_id', name=op.f('pk_poster')),
    )
    op.create_table(
        'poster_image',
        sa.Column('event_id', sa.Uuid(), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.CheckConstraint('width > 0 AND height > 0', name=op.f('ck_poster_image_size')),
        sa.ForeignKeyConstraint(
            ['event_id'], ['poster.event_id'], name=op.f('fk_poster_image_event_id_poster'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('event_id', 'width', name=op.f('pk_poster_image')),
    )


def downgrade():
    op.drop_table('poster_image')
    op.drop_table('poster')
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_column('venue_city')
