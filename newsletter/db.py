"""The audience side's tables, declared on the one shared `feeds.db.metadata`.

Created by the same Alembic history as the content side (feeds/migrations), since there is one database.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from feeds.db import UTCDateTime, metadata

SUBSCRIBER_STATUSES = ("pending", "confirmed", "unsubscribed", "bounced", "complained")

subscribers = Table(
    "subscribers", metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=True),
    Column("status", String(16), nullable=False),
    Column("categories", JSON, nullable=False, default=list),
    Column("frequency", String(16), nullable=False, default="daily"),
    Column("timezone", String(64), nullable=True),
    Column("language", String(8), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime, nullable=True),
    Column("unsubscribed_at", UTCDateTime, nullable=True),
    Column("consent_method", String(16), nullable=False),
    Column("consent_text", Text, nullable=True),
    Column("consent_ip_hash", String(64), nullable=True),
    Index(None, "status", "frequency"),
)

# One row per scheduled run of an edition: the unique (name, scheduled_at) makes a cron firing idempotent.
editions = Table(
    "editions", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("scheduled_at", UTCDateTime, nullable=False),
    Column("period_start", UTCDateTime, nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    UniqueConstraint("name", "scheduled_at"),
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
    UniqueConstraint("edition_id", "subscriber_id"),
    Index(None, "subscriber_id", "status"),
)
