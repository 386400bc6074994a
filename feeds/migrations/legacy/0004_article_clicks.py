"""Clicks through signed redirects, by channel, in hourly buckets.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "article_clicks",
        sa.Column("article_id", sa.String(length=16), nullable=False),
        sa.Column("hour_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"], name=op.f("fk_article_clicks_article_id_articles"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("article_id", "hour_at", "channel", name=op.f("pk_article_clicks")),
    )


def downgrade() -> None:
    op.drop_table("article_clicks")
