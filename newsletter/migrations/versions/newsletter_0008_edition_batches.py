"""[queue]: an edition's Celery batches (`edition_batches`), the worker that holds a delivery row
(`deliveries.claimed_by`), and when a run was wholly frozen into batches (`editions.frozen_at`).

Revision ID: newsletter_0008
Revises: newsletter_0007
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "newsletter_0008"
down_revision = "newsletter_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
    with op.batch_alter_table("editions") as batch:
        batch.add_column(sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "edition_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("first_id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"],
                                name=op.f("fk_edition_batches_edition_id_editions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_edition_batches")),
    )
    op.create_index(op.f("ix_edition_batches_edition_id_done_at"), "edition_batches", ["edition_id", "done_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_edition_batches_edition_id_done_at"), table_name="edition_batches")
    op.drop_table("edition_batches")
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("frozen_at")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("claimed_by")
