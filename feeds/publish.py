"""Publishing: which public feeds exist, what goes in each, and their bytes, built once per change.

A feed's bytes depend only on its articles, so they are rebuilt when the feed's `FeedVersion` (count and
newest change per category, one grouped query) moves, and served from memory in between; `gazette feeds
build` writes the same bytes to files. Also here: RFC 5005 monthly archives (frozen once the month is over)
and the Google News sitemap.

Why it is long: every public document is made here from the same `FeedDoc` (subscription feeds with their
corrections and tombstones, popular feeds, archives, the sitemap, the static build), and they share one cache and one
version rule; the refresher that rebuilds them beside requests is the short class at the end.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import format_datetime
from pathlib import Path
from typing import Callable

from templates import CATALOGUE

from .article_life import ArticleLife, with_corrections
from .core.loops import BackgroundLoop
from .model import FeedVersion, StoredArticle
from .readership import most_viewed
from .render import (
    CONTENT_TYPES,
    FORMATS,
    DeletedItem,
    FeedDoc,
    FeedItem,
    item_id,
    render_each,
    render_news_sitemap,
)
from .settings import Settings
from .store import ArticleStore

log = logging.getLogger(__name__)

# An empty feed's dates come from this fixed instant, not the clock, so its bytes (and ETag) are stable.
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class FeedInfo:
    slug: str
    title: str
    description: str
    category: str | None  # None for "all" and "popular"
    is_popular: bool = False  # ranked by views: "popular" and "<category>/popular"


@dataclass(frozen=True)
class Rendered:
    body: bytes
    gzipped: bytes
    etag: str
    last_modified: datetime
    content_type: str
    last_modified_http: str = ""  # the HTTP date, formatted once

    def __post_init__(self) -> None:
        if not self.last_modified_http:
            http_date = format_datetime(self.last_modified.replace(microsecond=0).astimezone(UTC), usegmt=True)
            object.__setattr__(self, "last_modified_http", http_date)


def rendered_bytes(body: bytes, fmt: str, last_modified: datetime | None) -> Rendered:
    return Rendered(body=body, gzipped=gzip.compress(body, compresslevel=9, mtime=0),
                    etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
                    last_modified=last_modified or EPOCH, content_type=CONTENT_TYPES[fmt])


def month_of(when: datetime, tz: tzinfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m")


def month_before(month: str) -> str:
    year, number = map(int, month.split("-"))
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def month_after(month: str) -> str:
    year, number = map(int, month.split("-"))
    return f"{year + 1}-01" if number == 12 else f"{year}-{number + 1:02d}"


def month_bounds(month: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of a calendar month in the site's time zone."""
    year, number = map(int, month.split("-"))
    start = datetime(year, number, 1, tzinfo=tz)
    following = month_after(month)
    end = datetime(int(following[:4]), int(following[5:]), 1, tzinfo=tz)
    return start, end


def archive_url(settings: Settings, slug: str, month: str) -> str:
    return f"{settings.site.base_url}/feeds/{slug}/archive/{month}.atom"


def public_feeds(settings: Settings) -> list[FeedInfo]:
    site = settings.site.name
    t = CATALOGUE[settings.site.language]
    feeds = [FeedInfo("all", f"{site} — {t['feed_all_title']}", t.text("feed_all_description", site=site), None),
             FeedInfo("popular", f"{site} — {t['feed_popular_title']}", t.text("feed_popular_description", site=site),
                      None, is_popular=True)]
    for category in settings.categories:
        feeds.append(FeedInfo(category.slug, f"{site} — {category.name}",
                              t.text("feed_category_description", site=site, category=category.name), category.slug))
    for category in settings.categories:
        feeds.append(FeedInfo(f"{category.slug}/popular",
                              f"{site} — {t.text('feed_category_popular_title', category=category.name)}",
                              t.text("feed_category_popular_description", site=site, category=category.name),
                              category.slug, is_popular=True))
    return feeds


def feed_url(settings: Settings, slug: str, fmt: str) -> str:
    return f"{settings.site.base_url}/feeds/{slug}.{fmt}"


class FeedPublisher:
    """Public feeds, rendered when their articles change and served from memory.

    `refresh()` reads every feed's version with one grouped query (plus one over recent views for
    `popular`) and rebuilds, in every format, only the feeds whose version moved: a new politics article
    rebuilds `politics`, `all` and `popular`, nothing else. Servers call it every `[feeds] refresh`; a
    request never touches the database unless nothing was built yet.
    """

    def __init__(self, settings: Settings, store: ArticleStore, clock: Callable[[], datetime]) -> None:
        self._settings = settings
        self._store = store
        self._life = ArticleLife(store.engine)
        self._clock = clock
        self._feeds = {f.slug: f for f in public_feeds(settings)}
        self._labels = {c.slug: c.name for c in settings.categories}
        self._versions: dict[str, object] = {}
        self._cache: dict[tuple[str, str], Rendered] = {}
        self._sitemap: tuple[object, Rendered] | None = None
        self._views: tuple[int, int] = (0, 0)
        self._views_checked_at: datetime | None = None
        self._lock = threading.Lock()

    def feeds(self) -> list[FeedInfo]:
        return list(self._feeds.values())

    def info(self, slug: str) -> FeedInfo | None:
        return self._feeds.get(slug)

    def get(self, slug: str, fmt: str) -> Rendered | None:
        """The feed's current bytes; None for an unknown slug or format."""
        if slug not in self._feeds or fmt not in FORMATS:
            return None
        rendered = self._cache.get((slug, fmt))
        if rendered is None:
            self.refresh()
            rendered = self._cache[(slug, fmt)]
        return rendered

    def cached(self, slug: str, fmt: str) -> Rendered | None:
        """The feed's bytes if built, without touching the database; None otherwise."""
        return self._cache.get((slug, fmt))

    def versions(self) -> dict[str, object]:
        """Each public feed's version now: equal versions, equal bytes."""
        by_category = self._store.feed_versions()
        everything = by_category.get(None, FeedVersion(0, None, None))
        now = self._clock()
        hour = now.replace(minute=0, second=0, microsecond=0)
        out: dict[str, object] = {}
        # On a busy site views arrive every second; ranked feeds follow them at most once a minute.
        minute = now.replace(second=0, microsecond=0)
        if self._views_checked_at != minute:
            self._views = self._store.views_version(now - self._settings.views.popular_window)
            self._views_checked_at = minute
        views = self._views
        for slug, info in self._feeds.items():
            content = everything if info.category is None else by_category.get(info.category, FeedVersion(0, None, None))
            # A ranking moves with views and with its sliding window; the hour bounds its staleness.
            out[slug] = (content, views, hour) if info.is_popular else content
        return out

    def refresh(self) -> list[str]:
        """Rebuild the feeds whose articles changed; returns their slugs."""
        with self._lock:
            changed = []
            for slug, version in self.versions().items():
                if self._versions.get(slug) == version:
                    continue
                info = self._feeds[slug]
                doc = self.document(info)
                for fmt in FORMATS:
                    self._cache[(slug, fmt)] = self._render(doc, fmt)
                self._versions[slug] = version
                changed.append(slug)
            return changed

    def version(self, slug: str) -> object:
        """The version the feed was last built at (None before the first build)."""
        return self._versions.get(slug)

    def topics(self, slug: str) -> list[str]:
        """The URLs a WebSub hub knows the feed by: one per format."""
        return [feed_url(self._settings, slug, fmt) for fmt in FORMATS]

    def fingerprint(self, slug: str) -> str:
        """A digest of the feed's bytes in every format: what WebSub announcements compare."""
        h = hashlib.sha256()
        for fmt in FORMATS:
            h.update(self.get(slug, fmt).etag.encode())  # type: ignore[union-attr]
        return h.hexdigest()[:32]

    def articles(self, info: FeedInfo) -> list[StoredArticle]:
        limit = self._settings.feeds.items_for(info.slug)
        if info.is_popular:
            views = self._settings.views
            ranked = most_viewed(self._store, window=views.popular_window, now=self._clock(), limit=limit,
                                 category=info.category, max_age=views.max_age)
            if len(ranked) < limit:  # until enough views exist, fill with the newest articles
                seen = {a.id for a in ranked}
                ranked += [a for a in self._store.articles(category=info.category, limit=limit)
                           if a.id not in seen][: limit - len(ranked)]
            return ranked
        return self._store.articles(category=info.category, limit=limit)

    def document(self, info: FeedInfo, articles: list[StoredArticle] | None = None) -> FeedDoc:
        settings = self._settings
        full = settings.feeds.full_content_for(info.slug)
        site = settings.site
        stories = self.articles(info) if articles is None else articles
        items = []
        for a in stories:
            content, summary = with_corrections(a, (a.content_html or None) if full else None, a.summary,
                                                language=site.language, zone=site.timezone)
            items.append(FeedItem(
                id=item_id(site.base_url, a.id, a.published_at), url=a.url, title=a.title, summary=summary,
                content_html=content, byline=a.byline, author_email=a.author_email, category=a.category,
                category_label=self._labels.get(a.category or ""), tags=a.tags, image_url=a.image_url,
                published_at=a.published_at, updated_at=a.updated_at, source_id=a.source_id))
        deleted: tuple[DeletedItem, ...] = ()
        if articles is None and not info.is_popular:
            deleted = self.tombstones(info, stories)
        home = settings.site.base_url + "/"
        links: tuple[tuple[str, str], ...] = ()
        if not info.is_popular:  # RFC 5005: the subscription document points at the last finished month
            first = self._store.first_published_at(info.category)
            previous = month_before(month_of(self._clock(), settings.site.timezone))
            if first is not None and month_of(first, settings.site.timezone) <= previous:
                links = (("prev-archive", archive_url(settings, info.slug, previous)),)
        return FeedDoc(slug=info.slug, title=info.title, description=info.description, home_url=home,
                       language=settings.site.language, author=settings.site.name, timezone=settings.site.timezone,
                       items=tuple(items), hubs=settings.feeds.hubs, links=links, deleted=deleted)

    def tombstones(self, info: FeedInfo, stories: list[StoredArticle]) -> tuple[DeletedItem, ...]:
        """The stories killed within the feed's window (published since its oldest item, or any when it is not full),
        as RFC 6721 tombstones: an Atom reader that has the entry removes it."""
        limit = self._settings.feeds.items_for(info.slug)
        oldest = min((a.published_at for a in stories), default=None) if len(stories) >= limit else None
        killed = self._life.killed(EPOCH, categories=[info.category] if info.category else None, limit=limit,
                                   published_after=oldest)
        comment = CATALOGUE.text(self._settings.site.language, "article_killed_comment")
        return tuple(DeletedItem(item_id(self._settings.site.base_url, a.id, a.published_at), a.status_at or EPOCH,
                                 comment) for a in killed)

    def _render(self, doc: FeedDoc, fmt: str) -> Rendered:
        body = render_each(doc, fmt, feed_url(self._settings, doc.slug, fmt), EPOCH, self._skipped)
        return rendered_bytes(body, fmt, doc.updated_at or EPOCH)

    def _skipped(self, item: FeedItem, exc: Exception) -> None:
        """An article no feed can render: left out, logged, and counted on its source's health."""
        reason = f"{item.id}: {type(exc).__name__}: {exc}"[:500]
        log.error("feed: left out an article that cannot be rendered: %s", reason)
        if item.source_id is not None:
            self._store.record_skip(item.source_id, reason)

    def archive(self, slug: str, month: str) -> Rendered | None:
        """The Atom archive document of `slug` for `month` (YYYY-MM), or None when there is none.

        A finished month's document is built once and kept in the store, so it never changes afterwards; the
        current month has no archive (its articles are in the subscription feed).
        """
        info = self._feeds.get(slug)
        settings = self._settings
        tz = settings.site.timezone
        current = month_of(self._clock(), tz)
        if info is None or info.is_popular or not MONTH_RE.match(month) or month >= current:
            return None
        kept = self._store.archive(slug, month)
        start, end = month_bounds(month, tz)
        if kept is None:
            first = self._store.first_published_at(info.category)
            if first is None or month < month_of(first, tz):
                return None
            articles = self._store.articles(category=info.category, published_after=start - timedelta(microseconds=1),
                                            published_until=end - timedelta(microseconds=1), limit=100_000)
            links = [("current", feed_url(settings, slug, "atom"))]
            if month_of(first, tz) < month:
                links.append(("prev-archive", archive_url(settings, slug, month_before(month))))
            following = month_after(month)
            links.append(("next-archive", archive_url(settings, slug, following) if following < current
                          else feed_url(settings, slug, "atom")))
            doc = replace(self.document(info, articles), links=tuple(links), is_archive=True,
                          title=f"{info.title} ({month})")
            body = render_each(doc, "atom", archive_url(settings, slug, month), end, self._skipped)
            kept = self._store.save_archive(slug, month, body, self._clock())
        return rendered_bytes(kept, "atom", end)

    def news_sitemap(self) -> Rendered:
        """Google News sitemap: articles of the last two days, at most 1,000, newest first.

        Rebuilt when any article changed or the hour turned (the two-day window slides), else from memory.
        """
        if "all" not in self._versions:
            self.refresh()
        key = (self._versions["all"], self._clock().replace(minute=0, second=0, microsecond=0))
        cached = self._sitemap
        if cached is not None and cached[0] == key:
            return cached[1]
        rendered = self._news_sitemap()
        self._sitemap = (key, rendered)
        return rendered

    def _news_sitemap(self) -> Rendered:
        settings = self._settings
        articles = [a for a in self._store.articles(published_after=self._clock() - timedelta(days=2), limit=1000)
                    if a.url]
        body = render_news_sitemap(articles, publication=settings.site.name, language=settings.site.language,
                                   timezone=settings.site.timezone)
        newest = max((a.updated_at for a in articles), default=EPOCH)
        return rendered_bytes(body, "sitemap", newest)

    def build(self, out: Path, on_file: Callable[[Path], None] = lambda path: None) -> list[Path]:
        """Write every public feed under out/feeds/ and the news sitemap under out/, each with a .gz sibling
        (for nginx's gzip_static), the same bytes as served. A file whose bytes did not change is left alone, so its
        mtime (a static server's Last-Modified and ETag) moves only when its bytes do."""
        target = out / "feeds"
        target.mkdir(parents=True, exist_ok=True)
        files: list[tuple[Path, Rendered]] = []
        for info in self.feeds():
            for fmt in FORMATS:
                rendered = self.get(info.slug, fmt)
                assert rendered is not None
                files.append((target / f"{info.slug}.{fmt}", rendered))
        files.append((out / "sitemap-news.xml", self.news_sitemap()))
        written = []
        for path, rendered in files:
            for name, data in ((path, rendered.body), (path.with_name(path.name + ".gz"), rendered.gzipped)):
                if not (name.is_file() and name.read_bytes() == data):
                    _write_atomic(name, data)
                on_file(name)
                written.append(name)
        return written


class FeedRefresher:
    """Keeps a publisher's feeds current in a server process, and has changes announced.

    Every `interval` it refreshes the publisher (one query when nothing changed). When `is_announcer()` — the
    process that holds the scheduler lease, so that one process speaks for all — it compares each feed's
    fingerprint with the one last announced (stored, so a change made while no server ran is announced too)
    and hands the topics of changed feeds to `announce`.
    """

    def __init__(self, publisher: FeedPublisher, store: ArticleStore, interval: timedelta, *,
                 announce: Callable[[list[str]], None] | None, is_announcer: Callable[[], bool],
                 clock: Callable[[], datetime], after_refresh: Callable[[], None] = lambda: None) -> None:
        self._publisher, self._store = publisher, store
        self._announce, self._is_announcer, self._clock = announce, is_announcer, clock
        self._after_refresh = after_refresh
        # A failed round (a database hiccup) is logged; the process serves what it has until the next one.
        self._loop = BackgroundLoop("gazette-feeds", self.step, interval, failure="refreshing feeds failed",
                                    logger=log)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def step(self) -> list[str]:
        """One round; returns the slugs announced."""
        self._publisher.refresh()
        self._after_refresh()
        if self._announce is None or not self._is_announcer():
            return []
        announced = []
        for info in self._publisher.feeds():
            if self._store.record_published(info.slug, self._publisher.fingerprint(info.slug), self._clock()):
                announced.append(info.slug)
        if announced:
            self._announce([topic for slug in announced for topic in self._publisher.topics(slug)])
        return announced


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
