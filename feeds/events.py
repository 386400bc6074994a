"""The event log: what happened, in order, recorded in the transaction that made it happen.

    article.published  article.updated  article.corrected  article.killed      (the content side)
    subscriber.confirmed  subscriber.unsubscribed  subscriber.bounced  edition.sent   (the audience side)

Whoever tells the outside reads the log by id: partner pushes (`feeds.push`) the article events, the newsroom's
webhooks every type. A change is therefore recorded once, even when nobody is listening yet, and told by the one
process that reads the log; a reader that died resumes from the last id it handed on. `data` holds ids and a few
facts, never a secret or a reader's address beyond what the event is about.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, select

from . import db

ARTICLE_EVENTS = ("article.published", "article.updated", "article.corrected", "article.killed")
AUDIENCE_EVENTS = ("subscriber.confirmed", "subscriber.unsubscribed", "subscriber.bounced", "edition.sent")
TYPES = ARTICLE_EVENTS + AUDIENCE_EVENTS
KEEP = timedelta(days=90)  # the log is a delivery queue, not an archive: older events go (`events:prune`, daily)


@dataclass(frozen=True)
class Event:
    id: int
    type: str
    subject: str
    occurred_at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)


def record(conn: Connection, type: str, subject: str, at: datetime, data: Mapping[str, Any] | None = None) -> None:
    """Add an event inside the caller's transaction: it is in the log if and only if the change committed."""
    record_many(conn, [(type, subject, data or {})], at)


def record_many(conn: Connection, items: Sequence[tuple[str, str, Mapping[str, Any]]], at: datetime) -> None:
    unknown = {t for t, _, _ in items} - set(TYPES)
    if unknown:
        raise ValueError(f"unknown event types {sorted(unknown)}")
    if items:
        conn.execute(db.events.insert(), [{"type": t, "subject": str(s)[:64], "data": dict(d), "occurred_at": at}
                                          for t, s, d in items])


def forget_address(conn: Connection, subject: str, types: Sequence[str]) -> int:
    """Drop `email` from the data of a subject's events (a reader erased), inside the caller's transaction; a
    webhook not yet sent is then sent without it (its body is made from the log). Returns how many changed."""
    e = db.events
    rows = conn.execute(select(e.c.id, e.c.data).where(e.c.subject == subject, e.c.type.in_(list(types)))).all()
    changed = [(r.id, {k: v for k, v in (r.data or {}).items() if k != "email"}) for r in rows
               if "email" in (r.data or {})]
    for event_id, data in changed:
        conn.execute(e.update().where(e.c.id == event_id).values(data=data))
    return len(changed)


class EventLog:
    """Reading the log: after an id, of some types, in order."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def after(self, last_id: int, types: Sequence[str] = TYPES, limit: int = 500,
              since: datetime | None = None) -> list[Event]:
        e = db.events
        query = select(e).where(e.c.id > last_id, e.c.type.in_(list(types))).order_by(e.c.id).limit(limit)
        if since is not None:
            query = query.where(e.c.occurred_at >= since)
        with self.engine.connect() as conn:
            return [Event(r.id, r.type, r.subject, r.occurred_at, r.data or {}) for r in conn.execute(query)]

    def of(self, subject: str, types: Sequence[str] = TYPES, limit: int = 100) -> list[Event]:
        """One subject's last `limit` events, oldest first (an article's history)."""
        e = db.events
        with self.engine.connect() as conn:
            rows = conn.execute(select(e).where(e.c.subject == subject, e.c.type.in_(list(types)))
                                .order_by(e.c.id.desc()).limit(limit)).all()
            return [Event(r.id, r.type, r.subject, r.occurred_at, r.data or {}) for r in reversed(rows)]

    def last_id(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(db.events.c.id).order_by(db.events.c.id.desc()).limit(1)).scalar() or 0)

    def prune(self, now: datetime, keep: timedelta = KEEP) -> int:
        """Delete the events older than `keep`, and the webhook deliveries of theirs that went, but not an event a
        webhook delivery still waits for (pending, or parked for an admin to retry: its body is made from the
        event). A subscriber's address in an event goes with it. Returns how many events were deleted."""
        e, w = db.events, db.webhook_deliveries
        before = now - keep
        with self.engine.begin() as conn:
            conn.execute(delete(w).where(w.c.status == "delivered", w.c.created_at < before))
            waiting = select(w.c.event_id).where(w.c.event_id.is_not(None), w.c.status.in_(["pending", "parked"]))
            return conn.execute(delete(e).where(e.c.occurred_at < before, e.c.id.not_in(waiting))).rowcount
