"""The audience side's `/metrics` families: subscribers by status, and recent editions' deliveries by status."""

from __future__ import annotations

from datetime import datetime, timedelta

from prometheus_client.metrics_core import Metric
from sqlalchemy import Engine, func, select

from feeds.metrics import gauge

from .db import deliveries, editions, subscribers

RECENT = timedelta(days=2)


def audience_metrics(engine: Engine, now: datetime) -> list[Metric]:
    with engine.connect() as conn:
        by_status = dict(conn.execute(select(subscribers.c.status, func.count()).group_by(subscribers.c.status)).all())
        paused = conn.execute(select(func.count()).select_from(subscribers)
                              .where(subscribers.c.status == "confirmed", subscribers.c.paused_at.is_not(None))).scalar_one()
        recent = conn.execute(
            select(editions.c.name, deliveries.c.status, func.count())
            .join(deliveries, deliveries.c.edition_id == editions.c.id)
            .where(editions.c.scheduled_at >= now - RECENT)
            .group_by(editions.c.name, deliveries.c.status)).all()
        sending = conn.execute(select(func.count()).select_from(editions).where(editions.c.status == "sending")).scalar_one()
    return [
        gauge("gazette_subscribers", "Subscribers by status.", ["status"],
              (([k], v) for k, v in sorted(by_status.items()))),
        gauge("gazette_subscribers_paused", "Confirmed subscribers who paused their mail.", samples=[([], paused)]),
        gauge("gazette_deliveries", "Deliveries of the editions of the last two days, by edition and status.",
              ["edition", "status"], (([name, status], n) for name, status, n in recent)),
        gauge("gazette_editions_unfinished", "Editions with deliveries still queued, retrying or held.",
              samples=[([], sending)]),
    ]
