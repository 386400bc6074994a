"""[push]: browsers subscribed to breaking alerts by Web Push (`push_subscriptions`) and the ledger of each alert's
pushes (`push_deliveries`).

Revision ID: newsletter_0009_web_push
Revises: newsletter_0008
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "newsletter_0009_web_push"
down_revision = "newsletter_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endpoint_hash", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("p256dh", sa.String(length=100), nullable=False),
        sa.Column("auth", sa.String(length=40), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("ad_consent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_subscriptions")),
        sa.UniqueConstraint("endpoint_hash", name=op.f("uq_push_subscriptions_endpoint_hash")),
    )
    op.create_table(
        "push_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"],
                                name=op.f("fk_push_deliveries_edition_id_editions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_deliveries")),
        sa.UniqueConstraint("edition_id", "subscription_id", name=op.f("uq_push_deliveries_edition_id_subscription_id")),
    )
    op.create_index(op.f("ix_push_deliveries_status_next_attempt_at"), "push_deliveries",
                    ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_push_deliveries_status_next_attempt_at"), table_name="push_deliveries")
    op.drop_table("push_deliveries")
    op.drop_table("push_subscriptions")
