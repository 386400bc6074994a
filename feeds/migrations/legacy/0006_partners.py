"""Partner syndication: licensing and push settings on partners, key use, daily usage, the push queue.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("partners") as batch:
        batch.add_column(sa.Column("include_images", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("embargo_minutes", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("utm", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("attribution", sa.Text(), nullable=True))
        batch.add_column(sa.Column("callback_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("push_secret", sa.Text(), nullable=True))
        batch.add_column(sa.Column("rate_limit", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("push_since_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("origin", sa.String(length=16), nullable=False, server_default="config"))
    with op.batch_alter_table("partner_keys") as batch:
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "partner_usage",
        sa.Column("partner_slug", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("not_modified", sa.Integer(), nullable=False),
        sa.Column("rate_limited", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("last_fetch_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["partner_slug"], ["partners.slug"],
                                name=op.f("fk_partner_usage_partner_slug_partners"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("partner_slug", "day", name=op.f("pk_partner_usage")),
    )
    op.create_table(
        "partner_articles",
        sa.Column("partner_slug", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("article_id", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["partner_slug"], ["partners.slug"],
                                name=op.f("fk_partner_articles_partner_slug_partners"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"], name=op.f("fk_partner_articles_article_id_articles"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("partner_slug", "day", "article_id", name=op.f("pk_partner_articles")),
    )
    op.create_table(
        "partner_pushes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_slug", sa.String(length=64), nullable=False),
        sa.Column("article_id", sa.String(length=16), nullable=False),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["partner_slug"], ["partners.slug"],
                                name=op.f("fk_partner_pushes_partner_slug_partners"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"], name=op.f("fk_partner_pushes_article_id_articles"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_pushes")),
        sa.UniqueConstraint("partner_slug", "article_id", name=op.f("uq_partner_pushes_partner_slug_article_id")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_partner_pushes_delivery_id")),
    )
    op.create_index(op.f("ix_partner_pushes_status_next_attempt_at"), "partner_pushes",
                    ["status", "next_attempt_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_partner_pushes_status_next_attempt_at"), table_name="partner_pushes")
    op.drop_table("partner_pushes")
    op.drop_table("partner_articles")
    op.drop_table("partner_usage")
    with op.batch_alter_table("partner_keys") as batch:
        batch.drop_column("last_used_at")
    with op.batch_alter_table("partners") as batch:
        for column in ("origin", "push_since_at", "rate_limit", "push_secret", "callback_url", "attribution", "utm",
                       "embargo_minutes", "include_images"):
            batch.drop_column(column)
