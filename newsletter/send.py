"""Sending an edition: every confirmed subscriber of its frequency gets at most one mail per edition.

The edition row is unique per (name, scheduled time), so a cron firing seen twice is one edition. Each
recipient gets a delivery row *before* the mail is handed over (status "sending"), then "sent": a process
killed in between resends only the few messages that were in flight, and a rerun skips everyone already
served. Each subscriber's high-water mark (the newest article they were sent) makes a second edition on the
same day send only what is new, and nothing when nothing is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from jinja2 import Environment
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from feeds.settings import EditionSettings, Settings
from feeds.store import ArticleStore

from .compose import build_message, render_digest
from .db import deliveries, editions
from .digest import build_digest
from .errors import DeliveryError
from .subscribers import Subscriber, SubscriberStore
from .transport import Transport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendReport:
    edition: str
    edition_id: int | None
    scheduled_at: datetime
    recipients: int
    sent: int
    skipped: int
    failed: int
    already_done: int
    is_dry_run: bool

    def line(self) -> str:
        what = "would send" if self.is_dry_run else "sent"
        return (f"{self.edition} at {self.scheduled_at.isoformat()}: {self.recipients} recipients, {what} {self.sent}, "
                f"nothing new for {self.skipped}, failed {self.failed}, already done {self.already_done}")


class DeliveryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open_edition(self, name: str, scheduled_at: datetime, period_start: datetime, now: datetime) -> int:
        """The edition for this firing, created once however often it is asked for."""
        query = select(editions.c.id).where(editions.c.name == name, editions.c.scheduled_at == scheduled_at)
        with self.engine.begin() as conn:
            found = conn.execute(query).scalar()
            if found is not None:
                return int(found)
        try:
            with self.engine.begin() as conn:
                return int(conn.execute(insert(editions).values(
                    name=name, scheduled_at=scheduled_at, period_start=period_start, period_end=scheduled_at,
                    status="sending", created_at=now)).inserted_primary_key[0])
        except IntegrityError:
            with self.engine.connect() as conn:
                return int(conn.execute(query).scalar_one())

    def finish_edition(self, edition_id: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(editions).where(editions.c.id == edition_id).values(status="done", finished_at=now))

    def high_water(self, subscriber_id: int) -> datetime | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(deliveries.c.high_water_at))
                                 .where(deliveries.c.subscriber_id == subscriber_id, deliveries.c.status == "sent")).scalar()
        return deliveries.c.high_water_at.type.process_result_value(value, None) if value is not None else None

    def status(self, edition_id: int, subscriber_id: int) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(deliveries.c.status).where(deliveries.c.edition_id == edition_id,
                                                                   deliveries.c.subscriber_id == subscriber_id)).scalar()

    def record(self, edition_id: int, subscriber_id: int, **values: object) -> None:
        """Insert or update the one delivery row of (edition, subscriber)."""
        where = (deliveries.c.edition_id == edition_id, deliveries.c.subscriber_id == subscriber_id)
        with self.engine.begin() as conn:
            if conn.execute(update(deliveries).where(*where).values(**values)).rowcount == 0:
                conn.execute(insert(deliveries).values(edition_id=edition_id, subscriber_id=subscriber_id, **values))


def send_edition(edition: EditionSettings, *, scheduled_at: datetime, settings: Settings, articles: ArticleStore,
                 subscribers: SubscriberStore, deliveries_: DeliveryStore, transport: Transport, templates: Environment,
                 clock: Callable[[], datetime], dry_run: bool = False,
                 progress: Callable[[Subscriber, str], None] = lambda subscriber, outcome: None) -> SendReport:
    period_start = scheduled_at - edition.window
    recipients = subscribers.confirmed(edition.name)
    edition_id = None if dry_run else deliveries_.open_edition(edition.name, scheduled_at, period_start, clock())
    labels = {c.slug: c.name for c in settings.categories}
    order = [c.slug for c in settings.categories]
    most_viewed = articles.most_viewed(since=period_start, until=scheduled_at, limit=edition.most_viewed) \
        if edition.most_viewed else []
    sent = skipped = failed = already = 0
    for subscriber in recipients:
        if edition_id is not None and deliveries_.status(edition_id, subscriber.id) in ("sent", "skipped", "failed"):
            already += 1
            progress(subscriber, "already")
            continue
        high_water = deliveries_.high_water(subscriber.id)
        after = max(high_water, period_start) if high_water else period_start
        candidates = articles.articles(categories=subscriber.categories or order, published_after=after,
                                       published_until=scheduled_at, limit=edition.max_articles)
        digest = build_digest(edition.name, candidates=candidates, most_viewed=most_viewed, category_order=order,
                              labels=labels, max_articles=edition.max_articles, period_end=scheduled_at)
        if digest is None:
            skipped += 1
            if edition_id is not None:
                deliveries_.record(edition_id, subscriber.id, status="skipped", articles=0)
            progress(subscriber, "skipped")
            continue
        if dry_run:
            sent += 1
            progress(subscriber, "sent")
            continue
        assert edition_id is not None
        message = build_message(settings, render_digest(templates, settings, digest, subscriber), to=subscriber.email,
                                to_name=subscriber.name, now=clock(), list_id=edition.name)
        deliveries_.record(edition_id, subscriber.id, status="sending", articles=digest.article_count,
                           message_id=message["Message-ID"], high_water_at=digest.high_water_at)
        try:
            transport.send(message)
        except DeliveryError as exc:
            failed += 1
            log.warning("edition %s: delivery to subscriber %s failed: %s", edition.name, subscriber.id, exc)
            deliveries_.record(edition_id, subscriber.id, status="failed" if exc.is_permanent else "sending",
                               last_error=str(exc)[:2000])
            progress(subscriber, "failed")
            continue
        deliveries_.record(edition_id, subscriber.id, status="sent", sent_at=clock())
        sent += 1
        progress(subscriber, "sent")
    if edition_id is not None:
        deliveries_.finish_edition(edition_id, clock())
    report = SendReport(edition=edition.name, edition_id=edition_id, scheduled_at=scheduled_at,
                        recipients=len(recipients), sent=sent, skipped=skipped, failed=failed, already_done=already,
                        is_dry_run=dry_run)
    log.info("edition %s", report.line())
    return report
