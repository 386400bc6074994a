"""Sources remember a permanent redirect and the hash of the last body; articles are found by URL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("fetch_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("body_hash", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_articles_url"), "articles", ["url"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_articles_url"), table_name="articles")
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("body_hash")
        batch.drop_column("fetch_url")
