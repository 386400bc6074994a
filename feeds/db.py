"""The content side's tables and migrations, and the one step that brings a database from before the split up.

The tables are declared on the content side's own `metadata`; its Alembic branch ("feeds") is in
`feeds/migrations/versions` (`MIGRATIONS`). The audience side declares and migrates its own tables (`newsletter.db`),
the shared layer its scheduling tables (`feeds.core.scheduling`, created by this branch's base). Whoever needs the
whole schema calls `migrate(engine, locations)` with every side's folder; a test checks that the migrations and the
declarations agree.

Databases made before the split carry one history for everything, 0001..0011, kept in `feeds/migrations/legacy`
(`LEGACY_MIGRATIONS`) and never run on a new database: `migrate` finishes that history, then records the two base
revisions in its place (they create the very schema of 0011), then upgrades every branch as usual.

The shared database kit (`make_engine`, `insert_for`, `UTCDateTime`, `MAX_ID`, `is_storable_id`) is re-exported here
for the content side's modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    true,
)

from .core import database
from .core.database import UTCDateTime

MIGRATIONS = Path(__file__).with_name("migrations") / "versions"
LEGACY_MIGRATIONS = Path(__file__).with_name("migrations") / "legacy"
LEGACY_REVISIONS = frozenset(f"{n:04d}" for n in range(1, 12))  # 0001..0011, frozen: nothing is added to them
LEGACY_HEAD = "0011"
# The base revisions that create the schema of LEGACY_HEAD between them: the content branch's (with the shared
# layer's tables) and the audience branch's. A legacy database holds both sides' tables, so both are recorded.
SUCCESSORS = ("feeds_0001", "newsletter_0001")

metadata = database.new_metadata()


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

# Sources added in the console or through the API, beside the file's `[[sources]]`: each one's definition, as the
# `[[sources]]` table that would make it (checked by the same rule, `feeds.settings.build_source`). Their polling
# state is a `sources` row like any other source's; deleting one here leaves that row and its articles.
console_sources = Table(
    "console_sources", metadata,
    Column("name", String(200), primary_key=True),
    Column("definition", JSON, nullable=False),
    Column("is_paused", Boolean, nullable=False, default=False, server_default=false()),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(320), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(320), nullable=False),
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
    # Its life after publication (feeds/article_life.py): "live", "held" (kept out of everything until released)
    # or "killed" (withdrawn for good); why and when it last changed, and whether editors marked it urgent.
    Column("status", String(16), nullable=False, default="live", server_default="live"),
    Column("status_reason", Text, nullable=True),
    Column("status_at", UTCDateTime, nullable=True),
    Column("is_urgent", Boolean, nullable=False, default=False, server_default=false()),
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

# Public corrections (정정): each one a note readers see under the story, with when it was made and by whom.
article_corrections = Table(
    "article_corrections", metadata,
    Column("id", Integer, primary_key=True),
    Column("article_id", String(16), ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
    Column("note", Text, nullable=False),
    Column("revision", Integer, nullable=False),  # the article's revision the correction made
    Column("corrected_at", UTCDateTime, nullable=False),
    Column("made_by", String(320), nullable=True),
    Index(None, "article_id"),
)

# What happened, in order (feeds/events.py): an article published, updated, corrected or killed; a reader
# confirmed, left or bounced; an edition sent. Partner pushes and the newsroom's webhooks read it by id, so a change
# is recorded once, in the transaction that made it, and delivered by whoever reads the log.
events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True),
    Column("type", String(40), nullable=False),
    Column("subject", String(64), nullable=False),  # an article id, a subscriber row id, an edition id
    Column("data", JSON, nullable=False, default=dict),
    Column("occurred_at", UTCDateTime, nullable=False),
    Index(None, "type", "id"),
    Index(None, "subject"),
)

article_views = Table(
    "article_views", metadata,
    Column("article_id", String(16), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("hour_at", UTCDateTime, primary_key=True),
    Column("views", Integer, nullable=False, default=0),
    Index(None, "hour_at"),
)

# Clicks through signed /r/ links, by channel (email, feed, partner, web, widget, push), in hourly buckets.
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
    # What the push tells: article.published (once per partner and article), or a later event of the article's
    # (`event_id`: its row in `events`) to a partner that has the article.
    Column("event", String(32), nullable=False, default="article.published", server_default="article.published"),
    Column("event_id", Integer, nullable=False, default=0, server_default="0"),
    Column("delivery_id", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # pending | delivered | parked | dropped
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("parked_at", UTCDateTime, nullable=True),
    UniqueConstraint("partner_slug", "article_id", "event_id"),
    Index(None, "status", "next_attempt_at"),
)

# The newsroom's own systems told of events (`feeds.webhooks`): an endpoint per system, with the event types it
# wants and its cursor in the event log, and one delivery row per (endpoint, event): never two, whoever fans out.
webhook_endpoints = Table(
    "webhook_endpoints", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),  # kept in clear: it signs, it does not authenticate; shown once
    Column("events", JSON, nullable=False, default=list),
    Column("is_active", Boolean, nullable=False, default=True, server_default=true()),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(320), nullable=True),
    Column("updated_at", UTCDateTime, nullable=True),
    Column("last_event_id", Integer, nullable=False, default=0),  # the log's cursor: fanned out up to here
    Column("first_event_id", Integer, nullable=False, default=0),  # nothing at or before this (its history)
)

webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", Integer, primary_key=True),
    Column("endpoint_id", Integer, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", Integer, nullable=True),  # NULL: a test event (`webhook.test`), sent at an admin's word
    Column("event", String(40), nullable=False),
    Column("delivery_id", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # pending | delivered | parked
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("response_status", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("parked_at", UTCDateTime, nullable=True),
    UniqueConstraint("endpoint_id", "event_id"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "endpoint_id", "id"),
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


def migrate(engine: Engine, locations: Sequence[Path], revision: str = "heads") -> None:
    """Upgrade every branch in `locations` to `revision` (default: all heads), a database from before the split
    included (see the module's docstring). Safe to run again."""
    adopt_legacy(engine, locations)
    database.migrate(engine, locations, revision)


def adopt_legacy(engine: Engine, locations: Sequence[Path]) -> bool:
    """If the database carries the history from before the split, finish it (up to 0011) and record the two base
    revisions instead; True if it did. A new or already adopted database is left alone."""
    current = database.current_revisions(engine)
    if not current or not current <= LEGACY_REVISIONS:
        return False
    missing = set(SUCCESSORS) - database.known_revisions(locations)
    if missing:
        raise ValueError(f"a database from before the split holds both sides' tables, and {sorted(missing)} are not "
                         f"in {[str(location) for location in locations]}: migrate it with every side's migrations")
    if current != {LEGACY_HEAD}:
        upgrade_legacy(engine, LEGACY_HEAD)
    database.stamp(engine, locations, SUCCESSORS)
    return True


def upgrade_legacy(engine: Engine, revision: str = LEGACY_HEAD) -> None:
    """Run the history from before the split up to `revision`, as databases were built then (tests build old
    databases this way; new databases never run it)."""
    database.migrate(engine, [LEGACY_MIGRATIONS], revision)
