"""Breaking-news alerts: what each alert says and whom it is for (its run is an `editions` row of the same id).

The reader's choice of alerts needs no schema: it is the reserved edition name "alerts" in `subscriber_editions`.

Revision ID: newsletter_0003
Revises: newsletter_0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "newsletter_0003"
down_revision = "newsletter_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('edition_id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('link', sa.Text(), nullable=True),
    sa.Column('article_id', sa.String(length=16), nullable=True),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('has_ads', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=320), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['edition_id'], ['editions.id'], name=op.f('fk_alerts_edition_id_editions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('edition_id', name=op.f('pk_alerts'))
    )


def downgrade() -> None:
    op.drop_table('alerts')
