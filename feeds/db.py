"""The database: schema of the content side, engine set-up and migrations.

One database holds everything (SQLite by default, PostgreSQL in production). The content side's tables are
declared here; `newsletter.db` adds the audience side's tables to the same `metadata`. The schema is
created and changed only by the Alembic migrations in `feeds/migrations`, which `migrate()` applies; a test
checks that the migrations and these declarations agree.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    true,
)
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)
# The largest integer both databases store (a signed 64-bit BIGINT). An id past it names nothing: callers check
# it before a query, which would otherwise fail in the driver (OverflowError) instead of finding no row.
MAX_ID = 2**63 - 1


def is_storable_id(value: int) -> bool:
    return 0 <= value <= MAX_ID


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes in, timezone-aware UTC datetimes out, on SQLite and PostgreSQL alike.

    SQLite keeps no zone, so values are normalised to UTC on the way in and tagged UTC on the way out;
    a naive datetime is a bug in the caller and is refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store; use timezone-aware datetimes")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


categories = Table(
    "categories", metadata,
    Column("slug", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("position", Integer, nullable=False, default=0),
)

sources = Table(
    "sources", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("location", Text, nullable=False),
    Column("category", String(64), nullable=True),
    Column("interval_seconds", Integer, nullable=False),
    Column("fetch_url", Text, nullable=True),  # where a permanent redirect moved `location`
    Column("etag", Text, nullable=True),
    Column("last_modified", Text, nullable=True),
    Column("body_hash", String(64), nullable=True),  # a 200 with the same bytes is not parsed again
    Column("last_checked_at", UTCDateTime, nullable=True),
    Column("last_success_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", UTCDateTime, nullable=True),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("next_check_at", UTCDateTime, nullable=True),
    Column("disabled_reason", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("clock_warning", Text, nullable=True),  # its items' times look shifted by whole hours (see ingest)
    Column("skipped_items", Integer, nullable=False, default=0, server_default="0"),  # articles no feed could render
    Column("last_skip", Text, nullable=True),
)

articles = Table(
    "articles", metadata,
    Column("id", String(16), primary_key=True),
    Column("identity", Text, nullable=False, unique=True),
    Column("guid", Text, nullable=True),
    Column("url", Text, nullable=True),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("content_html", Text, nullable=False, default=""),
    Column("byline", String(200), nullable=True),
    Column("author_email", String(320), nullable=True),
    Column("category", String(64), ForeignKey("categories.slug"), nullable=True),
    Column("tags", JSON, nullable=False, default=list),
    Column("image_url", Text, nullable=True),
    Column("published_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("fetched_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("revision", Integer, nullable=False, default=1),
    Column("external_views", Integer, nullable=True),  # the CMS's running total, to count its growth
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="SET NULL"), nullable=True),
    Column("bylines", JSON, nullable=False, default=list, server_default="[]"),  # [{name, role, desk}]
    Index(None, "category", "published_at"),
    Index(None, "url", unique=True),  # one story per canonical URL, whatever guids its feeds give it
    Index(None, "published_at"),
    Index(None, "changed_at"),
)

# Every section a story was published in (its section feeds list it); `articles.category` is the first of them.
article_categories = Table(
    "article_categories", metadata,
    Column("article_id", String(16), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("category", String(64), primary_key=True),
    Index(None, "category"),
)

article_views = Table(
    "article_views", metadata,
    Column("article_id", String(16), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("hour_at", UTCDateTime, primary_key=True),
    Column("views", Integer, nullable=False, default=0),
    Index(None, "hour_at"),
)

# Clicks through signed /r/ links, by channel (email, feed, partner, web), in hourly buckets.
article_clicks = Table(
    "article_clicks", metadata,
    Column("article_id", String(16), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("hour_at", UTCDateTime, primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("clicks", Integer, nullable=False, default=0),
)

# Clicks through signed /r/ links that carry a utm_campaign (a digest edition, a partner campaign), per article.
campaign_clicks = Table(
    "campaign_clicks", metadata,
    Column("campaign", String(64), primary_key=True),
    Column("article_id", String(16), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("clicks", Integer, nullable=False, default=0),
)

partners = Table(
    "partners", metadata,
    Column("slug", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("categories", JSON, nullable=False, default=list),
    Column("full_content", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("include_images", Boolean, nullable=False, default=True, server_default=true()),
    Column("embargo_minutes", Integer, nullable=False, default=0, server_default="0"),
    Column("utm", JSON, nullable=True),  # parameter -> value, added to every link the partner gets
    Column("attribution", Text, nullable=True),
    Column("callback_url", Text, nullable=True),
    Column("push_secret", Text, nullable=True),  # kept in clear: it signs pushes, it does not authenticate
    Column("rate_limit", Integer, nullable=True),  # requests per minute; NULL = no limit
    Column("push_since_at", UTCDateTime, nullable=True),  # articles published before a callback existed are not pushed
    # "config" partners leave with the file (their feeds close); "admin" ones were made by the CLI or the API.
    Column("origin", String(16), nullable=False, default="config", server_default="config"),
)

partner_keys = Table(
    "partner_keys", metadata,
    Column("id", Integer, primary_key=True),
    Column("partner_slug", String(64), ForeignKey("partners.slug", ondelete="CASCADE"), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("label", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),  # shows when a rotated-out key can be revoked
)

# What each partner took, per day (in the site's timezone): one counter row, plus one row per article delivered so
# that "distinct articles" is a count, not a guess.
partner_usage = Table(
    "partner_usage", metadata,
    Column("partner_slug", String(64), ForeignKey("partners.slug", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("requests", Integer, nullable=False, default=0),
    Column("not_modified", Integer, nullable=False, default=0),
    Column("rate_limited", Integer, nullable=False, default=0),
    Column("bytes", BigInteger, nullable=False, default=0),
    Column("clicks", Integer, nullable=False, default=0),
    Column("last_fetch_at", UTCDateTime, nullable=True),
)

partner_articles = Table(
    "partner_articles", metadata,
    Column("partner_slug", String(64), ForeignKey("partners.slug", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("article_id", String(16), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
)

# The push queue: one row per (partner, article), so an article is pushed to a partner at most once whoever runs
# the worker; retried with backoff, parked with its reason after too many failures.
partner_pushes = Table(
    "partner_pushes", metadata,
    Column("id", Integer, primary_key=True),
    Column("partner_slug", String(64), ForeignKey("partners.slug", ondelete="CASCADE"), nullable=False),
    Column("article_id", String(16), ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
    Column("delivery_id", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # pending | delivered | parked
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("parked_at", UTCDateTime, nullable=True),
    UniqueConstraint("partner_slug", "article_id"),
    Index(None, "status", "next_attempt_at"),
)

# What each public feed looked like when subscribers' hubs were last told (WebSub), so that a change made while
# no server ran is still announced, and announced once.
published_feeds = Table(
    "published_feeds", metadata,
    Column("slug", String(64), primary_key=True),
    Column("version", String(64), nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
)

# RFC 5005 archive documents of months that are over, frozen the first time they are built: an archive never
# changes once its month has ended, whatever happens to the articles later.
feed_archives = Table(
    "feed_archives", metadata,
    Column("slug", String(64), primary_key=True),
    Column("month", String(7), primary_key=True),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Scheduling: a lease so that only one process runs the scheduler, and one row per job run so that a
# run can never happen twice even if two processes briefly both believe they hold the lease.
leases = Table(
    "leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

task_runs = Table(
    "task_runs", metadata,
    Column("task", String(200), primary_key=True),
    Column("scheduled_at", UTCDateTime, primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("status", String(16), nullable=False),
    Column("detail", Text, nullable=True),
)

# Reserved for APScheduler's SQLAlchemyJobStore, which creates and owns it.
SCHEDULER_JOBS_TABLE = "apscheduler_jobs"


def make_engine(url: str) -> Engine:
    """An engine for a `sqlite:///` or `postgresql://` URL, tuned for this service.

    SQLite runs in WAL mode with foreign keys on and a busy timeout, so that the web app, the scheduler and
    a CLI command can share the file. PostgreSQL goes through psycopg 3.
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def insert_for(bind: Engine | Connection):  # type: ignore[no-untyped-def]
    """The dialect's INSERT, which has ON CONFLICT (SQLite and PostgreSQL alike)."""
    if bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def migrations_config(engine: Engine):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision`. Safe to run again: applied migrations are skipped."""
    from alembic import command

    command.upgrade(migrations_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(migrations_config(engine)).get_current_head()
