"""The plain data that flows through the content side: what a parser yields and what the store keeps.

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


@dataclass(frozen=True)
class UpsertCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: tuple[str, ...] = field(default_factory=tuple)
