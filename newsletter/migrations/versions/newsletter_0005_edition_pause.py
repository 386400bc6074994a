"""An edition run can be paused and resumed: when it was paused, and whom the run was for (a manual send goes to
every reader of the edition, a scheduled one to the zones whose hour it is), so that a resume picks up the same
readers. The status column already holds "paused" as a third value beside "sending" and "done".

Revision ID: newsletter_0005
Revises: newsletter_0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "newsletter_0005"
down_revision = "newsletter_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("editions")}  # safe to run again
    if "paused_at" not in columns:
        op.add_column("editions", sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
    if "audience" not in columns:
        op.add_column("editions", sa.Column("audience", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("audience")
        batch.drop_column("paused_at")
