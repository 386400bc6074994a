"""Ingesting: fetch a source, parse it, normalise its items and store them; record the source's health.

`ingest_source` never raises for a bad source: the error is recorded on the source and returned in the
result, so that a batch of sources always runs to its end. Failing sources back off exponentially (with
jitter) up to a cap and recover by themselves on the next success.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Sequence

from .errors import FeedsError
from .fetch import Fetcher, Validators
from .model import UpsertCounts
from .normalise import normalise
from .parse import parse_feed, parse_jsonl
from .settings import SourceSettings
from .store import ArticleStore

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=6)


@dataclass(frozen=True)
class IngestResult:
    source: str
    status: str  # new | updated | unchanged | error
    counts: UpsertCounts
    error: str | None = None

    def line(self) -> str:
        if self.status == "error":
            return f"{self.source}: error: {self.error}"
        c = self.counts
        return f"{self.source}: {self.status} ({c.new} new, {c.updated} updated, {c.unchanged} unchanged)"


def backoff(interval: timedelta, failures: int, rand: Callable[[], float] = random.random) -> timedelta:
    """Delay before the next check after `failures` consecutive failures: doubling, capped, ±20 % jitter."""
    base = min(interval * (2 ** max(failures - 1, 0)), max(MAX_BACKOFF, interval))
    return base * (0.8 + 0.4 * rand())


def ingest_source(source: SourceSettings, *, store: ArticleStore, fetcher: Fetcher, now: datetime) -> IngestResult:
    state = store.source(source.name)
    if state is None:
        raise FeedsError(f"source {source.name!r} is not in the store; run the configuration sync first")
    empty = UpsertCounts()
    if state.disabled_reason:
        return IngestResult(source.name, "error", empty, f"disabled: {state.disabled_reason}")
    try:
        fetched = fetcher.fetch(source.location, Validators(state.etag, state.last_modified))
        if fetched.is_not_modified:
            counts = empty
        else:
            assert fetched.body is not None
            if source.kind == "jsonl":
                raw = parse_jsonl(fetched.body)
            elif source.kind == "feed":
                raw = parse_feed(fetched.body, content_type=fetched.content_type)
            else:
                raise FeedsError(f"sources of kind {source.kind!r} are not read by this version")
            base_url = fetched.url if fetched.url.startswith(("http://", "https://")) else None
            articles = [normalise(entry, source_url=base_url, default_category=source.category,
                                  category_map=source.category_map, fetched_at=now) for entry in raw]
            counts = store.upsert_articles(articles, source_id=state.id, now=now)
    except Exception as exc:  # one bad source must not stop the batch; a bug is logged with its traceback
        reason = str(exc) if isinstance(exc, FeedsError) else f"unexpected {type(exc).__name__}: {exc}"
        if not isinstance(exc, FeedsError):
            log.exception("source %s: unexpected error", source.name)
        failures = store.record_failure(state.id, reason, now=now,
                                        next_check_at=now + backoff(source.interval, state.consecutive_failures + 1))
        log.warning("source %s failed (%d in a row): %s", source.name, failures, reason)
        return IngestResult(source.name, "error", empty, reason)
    store.record_success(state.id, etag=fetched.validators.etag, last_modified=fetched.validators.last_modified,
                         now=now, next_check_at=now + source.interval)
    status = "new" if counts.new else "updated" if counts.updated else "unchanged"
    log.info("source %s: %s new, %s updated, %s unchanged", source.name, counts.new, counts.updated, counts.unchanged)
    return IngestResult(source.name, status, counts)


def ingest_all(sources: Sequence[SourceSettings], *, store: ArticleStore, fetcher: Fetcher,
               clock: Callable[[], datetime],
               on_result: Callable[[IngestResult], None] = lambda result: None) -> list[IngestResult]:
    results = []
    for source in sources:
        result = ingest_source(source, store=store, fetcher=fetcher, now=clock())
        on_result(result)
        results.append(result)
    return results
