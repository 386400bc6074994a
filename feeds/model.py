"""The plain data that flows through the content side: what a parser yields and what the store keeps, a source's
state with its one health rule (`source_health`), and a feed's version.

    source bytes --parse--> RawEntry --normalise--> Article --store--> StoredArticle --render--> feeds
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .bylines import Reporter


@dataclass(frozen=True)
class RawEntry:
    """One item as a source described it, before any cleaning. Strings may hold untrusted HTML."""

    guid: str | None
    is_guid_trusted: bool
    url: str | None
    title: str
    summary_html: str
    content_html: str
    byline: str | None
    author_email: str | None
    categories: tuple[str, ...]
    image_url: str | None
    published_at: datetime | None
    updated_at: datetime | None
    views: int | None = None  # a CMS's own running total (JSON Lines `views`)


@dataclass(frozen=True)
class Article:
    """A normalised article, ready for the store: sanitised HTML, plain-text summary, aware datetimes."""

    id: str
    identity: str
    guid: str | None
    url: str | None
    title: str
    summary: str
    content_html: str
    byline: str | None
    author_email: str | None
    category: str | None
    tags: tuple[str, ...]
    image_url: str | None
    published_at: datetime
    updated_at: datetime
    content_hash: str
    external_views: int | None = None
    reporters: tuple[Reporter, ...] = ()  # the byline as data; `byline` is how readers see it
    extra_categories: tuple[str, ...] = ()  # sections the same story was also seen in, in the same batch

    @property
    def all_categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for c in (self.category, *self.extra_categories) if c))


LIVE, HELD, KILLED = "live", "held", "killed"
STATUSES = (LIVE, HELD, KILLED)


@dataclass(frozen=True)
class Correction:
    """A public correction (정정): the note readers see under the story, and when it was made."""

    note: str
    corrected_at: datetime
    revision: int


@dataclass(frozen=True)
class StoredArticle:
    """An article as read back from the store, with its bookkeeping."""

    id: str
    guid: str | None
    url: str | None
    title: str
    summary: str
    content_html: str
    byline: str | None
    author_email: str | None
    category: str | None
    tags: tuple[str, ...]
    image_url: str | None
    published_at: datetime
    updated_at: datetime
    changed_at: datetime
    revision: int
    views: int = 0
    categories: tuple[str, ...] = ()  # every section it was published in; `category` is its first
    reporters: tuple[Reporter, ...] = ()
    source_id: int | None = None
    status: str = LIVE  # LIVE | HELD | KILLED: only live stories are in feeds, digests, rankings and partner feeds
    status_reason: str | None = None  # why it was killed or held
    status_at: datetime | None = None
    is_urgent: bool = False
    corrections: tuple[Correction, ...] = ()  # oldest first

    @property
    def is_live(self) -> bool:
        return self.status == LIVE

    @property
    def corrected_at(self) -> datetime | None:
        return self.corrections[-1].corrected_at if self.corrections else None


@dataclass(frozen=True)
class UpsertCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class SourceState:
    id: int
    name: str
    kind: str
    location: str
    category: str | None
    interval_seconds: int
    fetch_url: str | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    last_checked_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    next_check_at: datetime | None
    disabled_reason: str | None
    clock_warning: str | None = None
    skipped_items: int = 0
    last_skip: str | None = None


HEALTHY = ("new", "ok")  # the labels of `source_health` that need nobody's attention


def source_health(state: SourceState, failure_limit: int) -> str:
    """The health label of a source: one rule for the admin API, /metrics and `gazette sources list`.

    unhealthy: at or past `[fetch] failure_limit` failures in a row (then polled every 6 hours only)."""
    if state.disabled_reason:
        return "disabled"
    if state.consecutive_failures >= failure_limit:
        return "unhealthy"
    if state.consecutive_failures:
        return "failing"
    return "new" if state.last_success_at is None else "ok"


@dataclass(frozen=True)
class FeedVersion:
    """Cheap validator of a feed's content: changes whenever an article in it is added or changed."""

    count: int
    last_changed_at: datetime | None
    last_updated_at: datetime | None
