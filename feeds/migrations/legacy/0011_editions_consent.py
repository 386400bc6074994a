"""Editions as a reader's choices, opaque link ids, and consent records.

- `subscriber_editions`: the editions a reader receives, any of those configured (was one `frequency`, daily or
  weekly, matched against the edition's name; an `[digests.evening]` reached nobody). Each row's frequency
  becomes its first edition: daily -> daily, weekly -> weekly; the column goes.
- `subscribers.public_id`: a random id the links name a reader by (links carried the address).
- `consents`: one row per consent given, refused or withdrawn (personal data collection, advertising), with the
  exact words shown; `subscribers.ad_consent_at` is the time advertising consent was given or last re-confirmed
  (정보통신망법 §50⑧: asked again every two years), `ad_reconfirm_sent_at` when that question last went out.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriber_editions",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("edition", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE",
                                name=op.f("fk_subscriber_editions_subscriber_id_subscribers")),
        sa.PrimaryKeyConstraint("subscriber_id", "edition", name=op.f("pk_subscriber_editions")),
    )
    op.create_index(op.f("ix_subscriber_editions_edition"), "subscriber_editions", ["edition"], unique=False)
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("ip_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE",
                                name=op.f("fk_consents_subscriber_id_subscribers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    op.create_index(op.f("ix_consents_subscriber_id"), "consents", ["subscriber_id"], unique=False)
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("public_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("ad_consent_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("ad_reconfirm_sent_at", sa.DateTime(timezone=True), nullable=True))
    conn = op.get_bind()
    ids = conn.execute(sa.text("SELECT id FROM subscribers")).scalars().all()
    if ids:  # one random id each, in one batch
        conn.execute(sa.text("UPDATE subscribers SET public_id = :p WHERE id = :id"),
                     [{"p": secrets.token_urlsafe(16), "id": i} for i in ids])
    conn.execute(sa.text("INSERT INTO subscriber_editions (subscriber_id, edition) "
                         "SELECT id, COALESCE(frequency, 'daily') FROM subscribers"))
    # The consent each confirmed subscriber gave, as its own record.
    conn.execute(sa.text("INSERT INTO consents (subscriber_id, kind, granted, method, text, ip_hash, created_at) "
                         "SELECT id, 'privacy', :yes, consent_method, consent_text, consent_ip_hash, confirmed_at "
                         "FROM subscribers WHERE confirmed_at IS NOT NULL AND consent_text IS NOT NULL "
                         "AND consent_text <> ''"), {"yes": True})
    op.drop_index(op.f("ix_subscribers_status_frequency"), table_name="subscribers")
    with op.batch_alter_table("subscribers") as batch:
        batch.alter_column("public_id", existing_type=sa.String(length=32), nullable=False)
        batch.create_unique_constraint(op.f("uq_subscribers_public_id"), ["public_id"])
        batch.drop_column("frequency")
    op.create_index(op.f("ix_subscribers_status"), "subscribers", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_subscribers_status"), table_name="subscribers")
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("frequency", sa.String(length=16), nullable=False, server_default="daily"))
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE subscribers SET frequency = 'weekly' WHERE id IN (SELECT subscriber_id FROM "
                         "subscriber_editions WHERE edition = 'weekly') AND id NOT IN (SELECT subscriber_id FROM "
                         "subscriber_editions WHERE edition = 'daily')"))
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_constraint(op.f("uq_subscribers_public_id"), type_="unique")
        batch.drop_column("ad_reconfirm_sent_at")
        batch.drop_column("ad_consent_at")
        batch.drop_column("public_id")
    op.create_index(op.f("ix_subscribers_status_frequency"), "subscribers", ["status", "frequency"], unique=False)
    op.drop_index(op.f("ix_consents_subscriber_id"), table_name="consents")
    op.drop_table("consents")
    op.drop_index(op.f("ix_subscriber_editions_edition"), table_name="subscriber_editions")
    op.drop_table("subscriber_editions")
