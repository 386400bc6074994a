"""Subscribers: pause, the confirmation rate limit, bounce count; a hashed suppression list.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("confirmation_sent_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("bounces", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "suppressions",
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email_hash", name=op.f("pk_suppressions")),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    with op.batch_alter_table("subscribers") as batch:
        for column in ("bounces", "updated_at", "confirmation_sent_at", "paused_at"):
            batch.drop_column(column)
