"""The dashboard's pre-aggregated figures: `daily_figures` (one row per day, figure and key) and `edition_figures`
(each edition's funnel), and the two subscriber indexes the daily roll-up counts by.

Revision ID: newsletter_0002
Revises: newsletter_0005
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "newsletter_0002"
down_revision = "newsletter_0005"  # the audience branch's head on main when this was merged (edition pause)
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_subscribers_confirmed_at"), "subscribers", ["confirmed_at"], unique=False)
    op.create_index(op.f("ix_subscribers_unsubscribed_at"), "subscribers", ["unsubscribed_at"], unique=False)
    op.create_table(
        "daily_figures",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("figure", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "figure", "key", name=op.f("pk_daily_figures")),
    )
    op.create_table(
        "edition_figures",
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"], name=op.f("fk_edition_figures_edition_id_editions"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("edition_id", name=op.f("pk_edition_figures")),
    )
    op.create_index(op.f("ix_edition_figures_scheduled_at"), "edition_figures", ["scheduled_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_edition_figures_scheduled_at"), table_name="edition_figures")
    op.drop_table("edition_figures")
    op.drop_table("daily_figures")
    op.drop_index(op.f("ix_subscribers_unsubscribed_at"), table_name="subscribers")
    op.drop_index(op.f("ix_subscribers_confirmed_at"), table_name="subscribers")
