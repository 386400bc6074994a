"""One subscriber per mailbox: identity by the address in lower case (existing duplicates merged); one-time
confirmation links.

`Reader@example.com` and `reader@example.com` reach the same mailbox but were two subscribers. Each group of such
rows becomes one: the row that asked to stop if any did (unsubscribed, bounced, complained: the strictest wins, so
no merge can restart mail someone stopped), else the earliest confirmed, else the oldest. The other rows' delivery
history moves to it (where it has none for that edition) and the rows go.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

import hashlib
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_STOPPED = ("complained", "bounced", "unsubscribed")


def _survivor(rows: list) -> object:  # type: ignore[type-arg]
    stopped = [r for r in rows if r.status in _STOPPED]
    if stopped:
        return min(stopped, key=lambda r: (_STOPPED.index(r.status), r.id))
    confirmed = [r for r in rows if r.status == "confirmed"]
    if confirmed:
        return min(confirmed, key=lambda r: (r.confirmed_at is None, r.confirmed_at or 0, r.id))
    return min(rows, key=lambda r: r.id)


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("email_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("confirmation_nonce", sa.String(length=32), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, email, status, confirmed_at FROM subscribers ORDER BY id")).all()
    groups: dict[str, list] = defaultdict(list)  # type: ignore[type-arg]
    for row in rows:
        groups[hashlib.sha256(row.email.lower().encode()).hexdigest()].append(row)
    for key, group in groups.items():
        keep = _survivor(group)
        for other in group:
            if other.id == keep.id:  # type: ignore[attr-defined]
                continue
            params = {"keep": keep.id, "other": other.id}  # type: ignore[attr-defined]
            conn.execute(sa.text("DELETE FROM deliveries WHERE subscriber_id = :other AND edition_id IN "
                                 "(SELECT edition_id FROM deliveries WHERE subscriber_id = :keep)"), params)
            conn.execute(sa.text("UPDATE deliveries SET subscriber_id = :keep WHERE subscriber_id = :other"), params)
            conn.execute(sa.text("DELETE FROM subscribers WHERE id = :other"), params)
        conn.execute(sa.text("UPDATE subscribers SET email_hash = :key WHERE id = :id"),
                     {"key": key, "id": keep.id})  # type: ignore[attr-defined]
    with op.batch_alter_table("subscribers") as batch:
        batch.alter_column("email_hash", existing_type=sa.String(length=64), nullable=False)
        batch.drop_constraint("uq_subscribers_email", type_="unique")
        batch.create_unique_constraint(op.f("uq_subscribers_email_hash"), ["email_hash"])


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_constraint(op.f("uq_subscribers_email_hash"), type_="unique")
        batch.create_unique_constraint("uq_subscribers_email", ["email"])
        batch.drop_column("confirmation_nonce")
        batch.drop_column("email_hash")
