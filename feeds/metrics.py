"""The figures `GET /metrics` serves: a few gauges an operator alerts on, read from the stores at each scrape.

Each side contributes its own families (`content_metrics` here, `newsletter.metrics` for the audience) as
prometheus_client metric families; `StoreCollector` reads them at each scrape. The route that serves them, in a
registry of its own, is `feeds.http.metrics`. Every process reports the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Iterable, Sequence

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from . import db
from .model import source_health
from .settings import Settings, SourceSettings
from .store import ArticleStore

Figures = Callable[[], Iterable[Metric]]


def gauge(name: str, documentation: str, labels: Sequence[str] = (),
          samples: Iterable[tuple[Sequence[str], float]] = ()) -> GaugeMetricFamily:
    """A gauge family; each sample is (label values in the order of `labels`, value)."""
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


class StoreCollector(Collector):
    """The figures, read from the stores at each scrape (never cached: a scrape says how things are now)."""

    def __init__(self, figures: Figures) -> None:
        self._figures = figures

    def collect(self) -> Iterable[Metric]:
        return self._figures()


def content_metrics(settings: Settings, store: ArticleStore, now: datetime,
                    sources: Sequence[SourceSettings] | None = None) -> list[Metric]:
    """`sources`: the active ones (the file's and those added in the console); None: the file's."""
    limit = settings.fetch.failure_limit
    by_status: dict[str, int] = {"ok": 0, "new": 0, "failing": 0, "unhealthy": 0, "disabled": 0}
    failures: list[tuple[Sequence[str], float]] = []
    skipped: list[tuple[Sequence[str], float]] = []
    last_success: list[tuple[Sequence[str], float]] = []
    for state in store.sources(settings.sources if sources is None else sources):
        by_status[source_health(state, limit)] += 1
        failures.append(([state.name], state.consecutive_failures))
        skipped.append(([state.name], state.skipped_items))
        if state.last_success_at is not None:
            last_success.append(([state.name], state.last_success_at.timestamp()))
    with store.engine.connect() as conn:
        articles = dict(conn.execute(select(db.articles.c.category, func.count()).group_by(db.articles.c.category)).all())
        pushes = dict(conn.execute(select(db.partner_pushes.c.status, func.count())
                                   .group_by(db.partner_pushes.c.status)).all())
        hooks = dict(conn.execute(select(db.webhook_deliveries.c.status, func.count())
                                  .group_by(db.webhook_deliveries.c.status)).all())
    return [
        gauge("gazette_articles", "Articles in the store, by category.", ["category"],
              (([k or ""], v) for k, v in sorted(articles.items(), key=lambda kv: kv[0] or ""))),
        gauge("gazette_sources", "Configured sources by health.", ["status"], (([k], v) for k, v in by_status.items())),
        gauge("gazette_source_consecutive_failures", "Failed polls in a row, per source.", ["source"], failures),
        gauge("gazette_source_skipped_items", "Articles of each source left out of feeds because they could not be "
              "rendered (the feeds themselves stay up).", ["source"], skipped),
        gauge("gazette_source_last_success_timestamp_seconds", "When each source was last read without error.",
              ["source"], last_success),
        gauge("gazette_partner_pushes", "Partner push queue rows by status.", ["status"],
              (([k], v) for k, v in sorted(pushes.items()))),
        gauge("gazette_webhook_deliveries", "Webhook delivery rows by status.", ["status"],
              (([k], v) for k, v in sorted(hooks.items()))),
        gauge("gazette_scrape_timestamp_seconds", "When these figures were read.", samples=[([], now.timestamp())]),
    ]
