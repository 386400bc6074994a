"""Publishing: which public feeds exist, what goes in each, and their bytes, built once per change.

A feed's bytes depend only on its articles, so they are cached keyed by the feed's `FeedVersion` (count and
newest change, read from the store with one cheap query). A request renders nothing unless an article of that
feed changed since the last build; `gazette feeds build` writes the same bytes to files.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Callable

from .model import StoredArticle
from .render import FORMATS, FeedDoc, FeedItem, item_id, render
from .settings import Settings
from .store import ArticleStore

POPULAR_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class FeedInfo:
    slug: str
    title: str
    description: str
    category: str | None  # None for "all" and "popular"


@dataclass(frozen=True)
class Rendered:
    body: bytes
    gzipped: bytes
    etag: str
    last_modified: datetime
    content_type: str

    @property
    def last_modified_http(self) -> str:
        return format_datetime(self.last_modified.replace(microsecond=0), usegmt=True)


def public_feeds(settings: Settings) -> list[FeedInfo]:
    site = settings.site.name
    ko = settings.site.language == "ko"
    feeds = [FeedInfo("all", f"{site} — {'전체 기사' if ko else 'All articles'}",
                      f"{site}의 모든 기사" if ko else f"Every article from {site}", None),
             FeedInfo("popular", f"{site} — {'많이 본 뉴스' if ko else 'Most viewed'}",
                      f"{site}에서 최근 24시간 많이 본 기사" if ko else f"Most viewed on {site} in the last 24 hours", None)]
    for category in settings.categories:
        feeds.append(FeedInfo(category.slug, f"{site} — {category.name}",
                              f"{site} {category.name} 기사" if ko else f"{category.name} from {site}", category.slug))
    return feeds


def feed_url(settings: Settings, slug: str, fmt: str) -> str:
    return f"{settings.site.base_url}/feeds/{slug}.{fmt}"


class FeedPublisher:
    def __init__(self, settings: Settings, store: ArticleStore, clock: Callable[[], datetime]) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock
        self._feeds = {f.slug: f for f in public_feeds(settings)}
        self._labels = {c.slug: c.name for c in settings.categories}
        self._cache: dict[tuple[str, str], tuple[object, Rendered]] = {}
        self._lock = threading.Lock()

    def feeds(self) -> list[FeedInfo]:
        return list(self._feeds.values())

    def info(self, slug: str) -> FeedInfo | None:
        return self._feeds.get(slug)

    def get(self, slug: str, fmt: str) -> Rendered | None:
        """The feed's current bytes; None for an unknown slug or format."""
        info = self._feeds.get(slug)
        if info is None or fmt not in FORMATS:
            return None
        key = (slug, fmt)
        version = self._version(info)
        cached = self._cache.get(key)
        if cached and cached[0] == version:
            return cached[1]
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached[0] == version:
                return cached[1]
            rendered = self._render(info, fmt)
            self._cache[key] = (version, rendered)
            return rendered

    def _version(self, info: FeedInfo) -> object:
        if info.slug == "popular":
            # The ranking moves with views and time; the hour bucket bounds how stale it can be.
            now = self._clock()
            return (self._store.feed_version(None), now.replace(minute=0, second=0, microsecond=0))
        return self._store.feed_version(info.category)

    def articles(self, info: FeedInfo) -> list[StoredArticle]:
        limit = self._settings.feeds.items
        if info.slug == "popular":
            now = self._clock()
            ranked = self._store.most_viewed(since=now - POPULAR_WINDOW, until=now + timedelta(hours=1), limit=limit)
            if len(ranked) < limit:  # until enough views exist, fill with the newest articles
                seen = {a.id for a in ranked}
                ranked += [a for a in self._store.articles(limit=limit) if a.id not in seen][: limit - len(ranked)]
            return ranked
        return self._store.articles(category=info.category, limit=limit)

    def document(self, info: FeedInfo) -> FeedDoc:
        settings = self._settings
        full = settings.feeds.full_content
        items = tuple(
            FeedItem(id=item_id(settings.site.base_url, a.id, a.published_at), url=a.url, title=a.title,
                     summary=a.summary, content_html=(a.content_html or None) if full else None, byline=a.byline,
                     author_email=a.author_email, category=a.category, category_label=self._labels.get(a.category or ""),
                     tags=a.tags, image_url=a.image_url, published_at=a.published_at, updated_at=a.updated_at)
            for a in self.articles(info))
        home = settings.site.base_url + "/"
        return FeedDoc(slug=info.slug, title=info.title, description=info.description, home_url=home,
                       language=settings.site.language, author=settings.site.name, timezone=settings.site.timezone,
                       items=items)

    def _render(self, info: FeedInfo, fmt: str) -> Rendered:
        doc = self.document(info)
        # An empty feed's dates come from the configuration's epoch, not the clock, so its bytes are stable.
        fallback = datetime.fromisoformat("2020-01-01T00:00:00+00:00")
        body = render(doc, fmt, feed_url(self._settings, info.slug, fmt), fallback)
        return Rendered(body=body, gzipped=gzip.compress(body, compresslevel=9, mtime=0),
                        etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
                        last_modified=doc.updated_at or fallback, content_type=FORMATS[fmt])

    def build(self, out: Path, on_file: Callable[[Path], None] = lambda path: None) -> list[Path]:
        """Write every public feed (and a .gz sibling) under out/feeds/, the same bytes as served."""
        written = []
        target = out / "feeds"
        target.mkdir(parents=True, exist_ok=True)
        for info in self.feeds():
            for fmt in FORMATS:
                rendered = self.get(info.slug, fmt)
                assert rendered is not None
                for path, data in ((target / f"{info.slug}.{fmt}", rendered.body),
                                   (target / f"{info.slug}.{fmt}.gz", rendered.gzipped)):
                    _write_atomic(path, data)
                    on_file(path)
                    written.append(path)
        return written


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
