"""Digest delivery: clicks per campaign, rendered segments (for "view in browser"), retries and night-time holds on deliveries.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "edition_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("articles", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"], name=op.f("fk_edition_segments_edition_id_editions"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_edition_segments")),
        sa.UniqueConstraint("edition_id", "key", name=op.f("uq_edition_segments_edition_id_key")),
    )
    op.create_table(
        "campaign_clicks",
        sa.Column("campaign", sa.String(length=64), nullable=False),
        sa.Column("article_id", sa.String(length=16), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"], name=op.f("fk_campaign_clicks_article_id_articles"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("campaign", "article_id", name=op.f("pk_campaign_clicks")),
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("segment_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(op.f("fk_deliveries_segment_id_edition_segments"), "edition_segments",
                                 ["segment_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint(op.f("fk_deliveries_segment_id_edition_segments"), type_="foreignkey")
        batch.drop_column("next_attempt_at")
        batch.drop_column("segment_id")
    op.drop_table("campaign_clicks")
    op.drop_table("edition_segments")
