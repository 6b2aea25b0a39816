"""job_run: the background worker's claims on its periodic jobs

One row per job: when it last started and finished, and which worker holds it until when,
so that several workers (one per host) never run the same job at once.

Revision ID: 0010_job_run
Revises: 0009_stream_name_per_organizer
Create Date: 2026-12-05 03:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0010_job_run'
down_revision = '0009_stream_name_per_organizer'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'job_run',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=True),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('lease_until', sa.DateTime(), nullable=True),
        sa.Column('holder', sa.String(length=128), nullable=True),
        sa.Column('outcome', sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_job_run')),
    )


def downgrade():
    op.drop_table('job_run')
