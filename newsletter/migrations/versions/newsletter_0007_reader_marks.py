"""Each reader's high-water mark in a table of its own (`reader_marks`), filled from the deliveries sent so far.

Revision ID: newsletter_0007
Revises: newsletter_0006
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "newsletter_0007"
down_revision = "newsletter_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reader_marks",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("high_water_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"],
                                name=op.f("fk_reader_marks_subscriber_id_subscribers"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subscriber_id", name=op.f("pk_reader_marks")),
    )
    op.execute("INSERT INTO reader_marks (subscriber_id, high_water_at) "
               "SELECT subscriber_id, max(high_water_at) FROM deliveries "
               "WHERE status = 'sent' AND high_water_at IS NOT NULL GROUP BY subscriber_id")


def downgrade() -> None:
    op.drop_table("reader_marks")
