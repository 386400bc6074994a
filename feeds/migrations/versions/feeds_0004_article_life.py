"""An article's life after publication: its status (live, held, killed) with why and when, the urgent mark, public
corrections, the event log partner pushes and webhooks read, and pushes of events beyond the first publication.

Revision ID: feeds_0004
Revises: feeds_0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "feeds_0004"
down_revision = "feeds_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("status", sa.String(length=16), server_default="live", nullable=False))
        batch.add_column(sa.Column("status_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("status_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("is_urgent", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "article_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("made_by", sa.String(length=320), nullable=True),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"],
                                name=op.f("fk_article_corrections_article_id_articles"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_article_corrections")),
    )
    op.create_index(op.f("ix_article_corrections_article_id"), "article_corrections", ["article_id"], unique=False)
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_type_id"), "events", ["type", "id"], unique=False)
    op.create_index(op.f("ix_events_subject"), "events", ["subject"], unique=False)
    with op.batch_alter_table("partner_pushes") as batch:
        batch.add_column(sa.Column("event", sa.String(length=32), server_default="article.published", nullable=False))
        batch.add_column(sa.Column("event_id", sa.Integer(), server_default="0", nullable=False))
        batch.drop_constraint("uq_partner_pushes_partner_slug_article_id", type_="unique")
        batch.create_unique_constraint(op.f("uq_partner_pushes_partner_slug_article_id_event_id"),
                                       ["partner_slug", "article_id", "event_id"])


def downgrade() -> None:
    with op.batch_alter_table("partner_pushes") as batch:
        batch.drop_constraint("uq_partner_pushes_partner_slug_article_id_event_id", type_="unique")
        batch.create_unique_constraint(op.f("uq_partner_pushes_partner_slug_article_id"), ["partner_slug", "article_id"])
        batch.drop_column("event_id")
        batch.drop_column("event")
    op.drop_index(op.f("ix_events_subject"), table_name="events")
    op.drop_index(op.f("ix_events_type_id"), table_name="events")
    op.drop_table("events")
    op.drop_index(op.f("ix_article_corrections_article_id"), table_name="article_corrections")
    op.drop_table("article_corrections")
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("is_urgent")
        batch.drop_column("status_at")
        batch.drop_column("status_reason")
        batch.drop_column("status")
