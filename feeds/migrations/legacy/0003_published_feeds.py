"""Feeds remember the version last announced to WebSub hubs; finished months' archives are kept frozen.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "published_feeds",
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_published_feeds")),
    )
    op.create_table(
        "feed_archives",
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("slug", "month", name=op.f("pk_feed_archives")),
    )


def downgrade() -> None:
    op.drop_table("feed_archives")
    op.drop_table("published_feeds")
