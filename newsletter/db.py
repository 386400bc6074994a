"""The audience side's tables and migrations: subscribers, their editions and consents, suppressions, editions,
their segments and deliveries, and what each breaking-news alert says.

Declared on the audience side's own `metadata`; created and changed only by its Alembic branch ("newsletter") in
`newsletter/migrations/versions` (`MIGRATIONS`), which `feeds.db.migrate` runs with the other sides' folders. No table
here refers to a content table, so the branch stands on its own (its base depends on no other branch).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (JSON, BigInteger, Boolean, Column, Date, ForeignKey, Index, Integer, String, Table, Text,
                        UniqueConstraint)

from feeds.core.database import UTCDateTime, new_metadata

MIGRATIONS = Path(__file__).with_name("migrations") / "versions"

metadata = new_metadata()

SUBSCRIBER_STATUSES = ("pending", "confirmed", "unsubscribed", "bounced", "complained")

subscribers = Table(
    "subscribers", metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False),  # as the reader wrote it, for display
    Column("email_hash", String(64), nullable=False, unique=True),  # identity: SHA-256 of the address in lower case
    Column("name", String(200), nullable=True),
    Column("status", String(16), nullable=False),
    Column("public_id", String(32), nullable=False, unique=True),  # what links name the reader by: random, no address
    Column("categories", JSON, nullable=False, default=list),
    Column("timezone", String(64), nullable=True),
    Column("language", String(8), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime, nullable=True),
    Column("unsubscribed_at", UTCDateTime, nullable=True),
    Column("consent_method", String(16), nullable=False),
    Column("consent_text", Text, nullable=True),
    Column("consent_ip_hash", String(64), nullable=True),
    Column("paused_at", UTCDateTime, nullable=True),
    Column("confirmation_sent_at", UTCDateTime, nullable=True),  # at most one confirmation mail an hour
    Column("updated_at", UTCDateTime, nullable=True),
    # Hard bounces in a row; reset by a delivered mail. The server default is the one the legacy history gave it.
    Column("bounces", Integer, nullable=False, default=0, server_default="0"),
    Column("confirmation_nonce", String(32), nullable=True),  # what the current confirmation link must carry
    Column("ad_consent_at", UTCDateTime, nullable=True),  # advertising consent given or last re-confirmed; None: none
    Column("ad_reconfirm_sent_at", UTCDateTime, nullable=True),  # the two-yearly question (§50⑧) last sent
    Index(None, "status"),
    Index(None, "confirmed_at"),  # the daily figures count a day's confirmations and departures by range
    Index(None, "unsubscribed_at"),
)
# Searching a part of an address (the console): on PostgreSQL a trigram index, which `email ILIKE '%…%'` uses; on
# SQLite, which has none, a plain one by the same name, so that both schemas are the one declared here.
Index("ix_subscribers_email_trigrams", subscribers.c.email, postgresql_using="gin",
      postgresql_ops={"email": "gin_trgm_ops"})

# The editions a reader receives: any configured `[digests.<name>]`. An edition that leaves the configuration keeps
# its rows (`gazette check` reports them) so that putting it back loses nobody.
subscriber_editions = Table(
    "subscriber_editions", metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("edition", String(64), primary_key=True),
    Index(None, "edition"),
)

# Every consent given, refused or withdrawn, with the exact words the reader saw (개인정보 보호법 §22,
# 정보통신망법 §50): kind "privacy" (collection and use of personal data, required) or "ads" (advertising, optional).
consents = Table(
    "consents", metadata,
    Column("id", Integer, primary_key=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("method", String(16), nullable=False),  # form | import | admin | reconfirm | unsubscribe
    Column("text", Text, nullable=False),
    Column("ip_hash", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "subscriber_id"),
)

# Addresses that must not be mailed again without a fresh confirmation, kept as a keyed hash (not the address)
# so that erasing a subscriber on request does not let the next import add them back.
suppressions = Table(
    "suppressions", metadata,
    Column("email_hash", String(64), primary_key=True),
    Column("reason", String(16), nullable=False),  # unsubscribed | bounced | complained | erased
    Column("created_at", UTCDateTime, nullable=False),
)

# One row per scheduled run of an edition: the unique (name, scheduled_at) makes a cron firing idempotent.
editions = Table(
    "editions", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("scheduled_at", UTCDateTime, nullable=False),
    Column("period_start", UTCDateTime, nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # sending | paused | done
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("paused_at", UTCDateTime, nullable=True),  # when an operator paused the run (status "paused")
    Column("audience", String(16), nullable=True),  # "everyone" (a manual send) or "zones": whom a resume sends to
    # With [queue]: when the run's last page was frozen into batches. Until then (a freeze under way, or cut short by a
    # crash) no worker finishes the run, and the resume job freezes the rest once its open batches are done.
    Column("frozen_at", UTCDateTime, nullable=True),
    UniqueConstraint("name", "scheduled_at"),
)

# One segment's rendered mail (placeholders where each subscriber's address and links go): what the archive page
# ("view in browser") shows, without keeping a copy per subscriber.
edition_segments = Table(
    "edition_segments", metadata,
    Column("id", Integer, primary_key=True),
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(64), nullable=False),  # what the segment shares: categories, language, zone, high-water
    Column("language", String(8), nullable=False),
    Column("subject", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("articles", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("edition_id", "key"),
)

# One row per (edition, subscriber), never two: the row is written before the mail goes out, so a restart
# knows who already has it.
deliveries = Table(
    "deliveries", metadata,
    Column("id", Integer, primary_key=True),
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), nullable=False),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("message_id", String(255), nullable=True),
    Column("articles", Integer, nullable=False, default=0),
    Column("high_water_at", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("segment_id", Integer, ForeignKey("edition_segments.id", ondelete="SET NULL"), nullable=True),
    Column("next_attempt_at", UTCDateTime, nullable=True),  # a retry or a mail held back for the night
    # With [queue]: the worker (its `holder_id`) sending this row now; another takes it over only once that worker's
    # lease has lapsed (newsletter/batches.py).
    Column("claimed_by", String(200), nullable=True),
    UniqueConstraint("edition_id", "subscriber_id"),
    Index(None, "subscriber_id", "status"),
)


# With [queue]: an edition's readers as the Celery tasks that send them, a range of subscriber ids each. Open until a
# task finds nothing left in its range to send now; the resume job sends an open batch again only when its message
# may have been lost (`newsletter/batches.py`).
edition_batches = Table(
    "edition_batches", metadata,
    Column("id", Integer, primary_key=True),
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), nullable=False),
    Column("first_id", Integer, nullable=False),
    Column("last_id", Integer, nullable=False),
    Column("enqueued_at", UTCDateTime, nullable=False),
    Column("done_at", UTCDateTime, nullable=True),
    Index(None, "edition_id", "done_at"),
)

# Each reader's high-water mark: the newest article of any digest sent to them, where their next digest starts. Kept
# as deliveries are recorded "sent" (`DeliveryStore.record`), so that finding it is one key lookup whatever the length
# of the delivery history (grouping every past delivery cost 1.7 s a send at three million rows, and grew).
reader_marks = Table(
    "reader_marks", metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("high_water_at", UTCDateTime, nullable=False),
)

# The dashboard's figures, rolled up by `figures:daily` (newsletter/dashboard.py) so that the dashboard reads a few
# hundred rows, never the subscribers or the deliveries. One row per (day in the site's time zone, figure, key):
# e.g. ("confirmations", ""), ("views", "2026-11-25T03:00Z"), ("articles", <source name>), ("partner_requests",
# <partner slug>). Re-rolling a day replaces its rows.
daily_figures = Table(
    "daily_figures", metadata,
    Column("day", Date, primary_key=True),
    Column("figure", String(32), primary_key=True),
    Column("key", String(200), primary_key=True, default=""),
    Column("value", BigInteger, nullable=False),
)

# Each edition's funnel, counted from its deliveries while it can still change (sending, or recently finished:
# clicks keep coming) and then left alone, so that a year of editions never scans the deliveries again.
edition_figures = Table(
    "edition_figures", metadata,
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("scheduled_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("recipients", Integer, nullable=False),  # every delivery but the skipped ones
    Column("sent", Integer, nullable=False),
    Column("failed", Integer, nullable=False),  # refused (a hard bounce) or given up
    Column("pending", Integer, nullable=False),  # queued, retrying or held for the night
    Column("skipped", Integer, nullable=False),
    Column("clicks", Integer, nullable=False),  # through the edition's signed links (campaign "{name}-{id}")
    Column("counted_at", UTCDateTime, nullable=False),
    Index(None, "scheduled_at"),
)

# What one breaking-news alert says and whom it is for. Its run is its `editions` row (name "alerts", the same id),
# so the ledger, the outbox and the reports treat it as any edition; this row lets a resumed or retried send render
# the same mail to the same audience.
alerts = Table(
    "alerts", metadata,
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("link", Text, nullable=True),  # an article's own address, or the one the editor gave
    Column("article_id", String(16), nullable=True),  # the story it is about: its link is tracked (clicks)
    Column("categories", JSON, nullable=False),  # only readers of these sections; empty: everyone who asked
    Column("has_ads", Boolean, nullable=False),  # "(광고)", advertising consent only, held at night (§50)
    Column("created_by", String(320), nullable=True),  # who sent it: an account's address, or "admin token"
    Column("created_at", UTCDateTime, nullable=False),
)

# [push]: browsers subscribed to breaking alerts by Web Push. A subscription is its endpoint (the push service's URL
# for one browser) and the keys its messages are encrypted to; `endpoint_hash` (SHA-256) is its identity, so a
# browser that subscribes again updates its row. Removed when the push service says it is gone (404/410) or the
# reader unsubscribes: there is nothing else to keep (no address, no name).
push_subscriptions = Table(
    "push_subscriptions", metadata,
    Column("id", Integer, primary_key=True),
    Column("endpoint_hash", String(64), nullable=False, unique=True),
    Column("endpoint", Text, nullable=False),
    Column("p256dh", String(100), nullable=False),  # the browser's P-256 public point, base64url (65 bytes)
    Column("auth", String(40), nullable=False),  # its authentication secret, base64url (16 bytes)
    Column("categories", JSON, nullable=False),  # sections followed; empty: every alert
    Column("language", String(8), nullable=True),
    Column("timezone", String(64), nullable=True),  # the night rule's clock; the site's when unknown
    Column("ad_consent_at", UTCDateTime, nullable=True),  # agreed to alerts that carry advertising (§50); None: not
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_success_at", UTCDateTime, nullable=True),
    Column("failures", Integer, nullable=False, default=0, server_default="0"),  # failed sends in a row
)

# One row per (alert, subscription), never two: written `queued` before the POST and `sent` after, so a resumed or
# repeated send reaches nobody twice. No foreign key to the subscription: a row outlives a removed one (the report
# counts "removed").
push_deliveries = Table(
    "push_deliveries", metadata,
    Column("id", Integer, primary_key=True),
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), nullable=False),
    Column("subscription_id", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # queued | sent | held | retry | failed | removed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=True),  # a retry, or a push held for the night
    Column("last_error", Text, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("edition_id", "subscription_id"),
    Index(None, "status", "next_attempt_at"),
)
