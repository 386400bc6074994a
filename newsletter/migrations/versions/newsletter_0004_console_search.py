"""The console's search for a part of an address at a million readers: on PostgreSQL, a trigram index (pg_trgm) on
the address, which `email ILIKE '%…%'` uses; without it every search reads every row (about a second at a million,
a few milliseconds with it). SQLite has no trigram index: it gets a plain index of the same name, so that both
schemas are the one `newsletter.db` declares (SQLite deployments are far smaller; its search reads the rows).

Where the database user may not create the extension (pg_trgm is "trusted" from PostgreSQL 13: a database owner
may), the index is a plain one there too, and the log says so: searching still works, only slower.

Revision ID: newsletter_0004
Revises: newsletter_0003
Create Date: 2026-11-29
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "newsletter_0004"
down_revision = "newsletter_0003"
branch_labels = None
depends_on = None

INDEX = "ix_subscribers_email_trigrams"
log = logging.getLogger(__name__)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        try:
            with bind.begin_nested():
                # In `public`, not the first schema of the search path: an extension lives in one schema of the
                # database, and one made in a schema that is later dropped takes every trigram index with it.
                bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
                home = bind.execute(sa.text("SELECT extnamespace::regnamespace::text FROM pg_extension "
                                            "WHERE extname = 'pg_trgm'")).scalar_one()
        except sa.exc.DBAPIError as exc:
            log.warning("%s is a plain index: pg_trgm cannot be created here (%s); searching a part of an address "
                        "reads every row", INDEX, str(exc).splitlines()[0])
        else:  # the operator class named with the extension's schema: found whatever the search path
            op.create_index(INDEX, "subscribers", ["email"], postgresql_using="gin",
                            postgresql_ops={"email": f"{home}.gin_trgm_ops"})
            return
    op.create_index(INDEX, "subscribers", ["email"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="subscribers")
