"""Sources stored in the database (added in the console or through `/api/sources`), beside the file's
`[[sources]]`: one row per source with its definition, paused flag, and who made and last changed it.

Revision ID: feeds_0003
Revises: feeds_0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "feeds_0003"
down_revision = "feeds_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_sources',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('is_paused', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=320), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=320), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_console_sources'))
    )


def downgrade() -> None:
    op.drop_table('console_sources')
