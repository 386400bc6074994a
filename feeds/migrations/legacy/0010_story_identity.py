"""One story once: a unique canonical URL, every section a story was published in, bylines as data, source notes.

Stories stored twice under one URL (a race between fetch workers, or guid variants across section feeds) are
merged into the oldest: their views, clicks, partner deliveries and pushes move to it (counts added), their
sections join it, and the copies go. From then on the database refuses a second row for a URL.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# (table, its key columns besides article_id, the counter to add up or None to keep one row)
_REFERENCES = (("article_views", ("hour_at",), "views"), ("article_clicks", ("hour_at", "channel"), "clicks"),
               ("campaign_clicks", ("campaign",), "clicks"), ("partner_articles", ("partner_slug", "day"), None),
               ("partner_pushes", ("partner_slug",), None))


def _move(conn: sa.Connection, table: str, keys: tuple[str, ...], counter: str | None, keep: str, other: str) -> None:
    columns = ", ".join(keys)
    if table == "partner_pushes":  # its own id and delivery id stay; only the article changes, where free
        conn.execute(sa.text("UPDATE partner_pushes SET article_id = :keep WHERE article_id = :other AND partner_slug "
                             "NOT IN (SELECT partner_slug FROM partner_pushes WHERE article_id = :keep)"),
                     {"keep": keep, "other": other})
    else:
        on_conflict = (f"DO UPDATE SET {counter} = {table}.{counter} + excluded.{counter}" if counter
                       else "DO NOTHING")
        carried = f", {counter}" if counter else ""
        conn.execute(sa.text(f"INSERT INTO {table} (article_id, {columns}{carried}) SELECT :keep, {columns}{carried} "
                             f"FROM {table} WHERE article_id = :other ON CONFLICT (article_id, {columns}) {on_conflict}"),
                     {"keep": keep, "other": other})
    conn.execute(sa.text(f"DELETE FROM {table} WHERE article_id = :other"), {"other": other})


def upgrade() -> None:
    op.create_table(
        "article_categories",
        sa.Column("article_id", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"], name=op.f("fk_article_categories_article_id_articles"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("article_id", "category", name=op.f("pk_article_categories")),
    )
    op.create_index(op.f("ix_article_categories_category"), "article_categories", ["category"])
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("bylines", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("clock_warning", sa.Text(), nullable=True))
        batch.add_column(sa.Column("skipped_items", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_skip", sa.Text(), nullable=True))

    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, url, category FROM articles WHERE url IS NOT NULL "
                                "ORDER BY url, fetched_at, id")).all()
    keep_for: dict[str, str] = {}
    categories: dict[str, list[str]] = {}
    for row in rows:
        keep = keep_for.setdefault(row.url, row.id)
        if row.category and row.category not in categories.setdefault(keep, []):
            categories[keep].append(row.category)
        if keep != row.id:
            for table, keys, counter in _REFERENCES:
                _move(conn, table, keys, counter, keep, row.id)
            conn.execute(sa.text("DELETE FROM articles WHERE id = :other"), {"other": row.id})
    for row in conn.execute(sa.text("SELECT id, category FROM articles WHERE url IS NULL")).all():
        categories[row.id] = [row.category] if row.category else []
    for article_id, slugs in categories.items():
        for slug in slugs:
            conn.execute(sa.text("INSERT INTO article_categories (article_id, category) VALUES (:a, :c)"),
                         {"a": article_id, "c": slug})
    op.drop_index("ix_articles_url", table_name="articles")
    op.create_index(op.f("ix_articles_url"), "articles", ["url"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_articles_url"), table_name="articles")
    op.create_index("ix_articles_url", "articles", ["url"])
    with op.batch_alter_table("sources") as batch:
        for column in ("last_skip", "skipped_items", "clock_warning"):
            batch.drop_column(column)
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("bylines")
    op.drop_index(op.f("ix_article_categories_category"), table_name="article_categories")
    op.drop_table("article_categories")
