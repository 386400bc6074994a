"""Who read what: views counted honestly and cheaply, the signed redirects that count clicks, and the most viewed.
(Named for what it counts: "views" here are page views of articles, not HTTP views, which live in `feeds.http`.)

`ViewCounter.record()` decides whether a beacon hit counts: not a crawler (crawlerdetect's maintained list, matched
in bounded time by `agents.CrawlerCheck`), an article we know, a visitor not already counted for that article in the last `dedupe` window, and an IP
under its daily cap for that article. The visitor is a hash of a salt that rotates daily, the IP and the
user agent: no cookie is set and no raw IP is kept, not even in memory. Counts are buffered and written as
hourly buckets every `flush_interval` or `flush_events`, and on shutdown, so a graceful stop loses nothing
and a crash at most the last interval. `ViewCounter.is_click()` applies the same visitor rules to clicks through
signed redirects: one click per visitor, link and `dedupe` window, and `Clicks.follow()` is what following a signed
link (`/r/{token}`) does: where it leads, and which counts it adds to (article and channel, digest edition, partner).

Dedupe state (the day's salt, who was counted, each address's count) lives in each process, or with `[queue]
redis_url` in Redis for every process at once (`feeds.core.shared.SharedVisits`), falling back to the process's own
while Redis is away.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from itsdangerous import BadSignature, URLSafeSerializer

from .agents import CrawlerCheck
from .core.loops import BackgroundLoop
from .core.shared import SharedVisits
from .dates import parse_date
from .errors import StoreError
from .model import KILLED, StoredArticle
from .store import ArticleStore

log = logging.getLogger(__name__)

CHANNELS = ("email", "feed", "partner", "web", "widget", "push")  # widget: the most viewed box; push: Web Push
# The dedupe memory is bounded whatever the traffic: past these sizes the oldest visits are forgotten first (a
# flood of made-up visitors then costs memory no more than it costs counts).
MAX_VISITS = 200_000
MAX_IPS = 200_000
SALT_CHECK = timedelta(minutes=1)  # with Redis: how often a process makes sure its salt is still the shared one
TRANSPARENT_GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
                   b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def most_viewed(store: ArticleStore, *, window: timedelta, now: datetime, limit: int, category: str | None = None,
                max_age: timedelta | None = None) -> list[StoredArticle]:
    """The most viewed articles of the last `window` (by hourly buckets, the current hour included), of one
    category or all, leaving out articles published more than `max_age` ago; ties go to the newer article."""
    return store.most_viewed(since=now - window, until=now + timedelta(hours=1), limit=limit, category=category,
                             published_after=now - max_age if max_age else None)


@dataclass(frozen=True)
class ViewRules:
    dedupe: timedelta = timedelta(minutes=30)
    per_ip_cap: int = 20  # counted views of one article from one IP per day
    flush_interval: timedelta = timedelta(seconds=1)
    flush_events: int = 1000


class ViewCounter:
    def __init__(self, store: ArticleStore, rules: ViewRules, clock: Callable[[], datetime],
                 is_known: Callable[[str], bool], shared: SharedVisits | None = None) -> None:
        self._store = store
        self._shared = shared
        self._salt_is_shared = False
        self._salt_checked_at: datetime | None = None
        self._rules = rules
        self._clock = clock
        self._is_known = is_known
        self._crawlers = CrawlerCheck()
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, datetime], int] = {}
        self._pending_events = 0
        self._seen: OrderedDict[tuple[bytes, str], datetime] = OrderedDict()  # (visitor, article) -> counted at
        self._per_ip: dict[tuple[bytes, str], int] = {}
        self._salt_day: date | None = None
        self._salt = b""
        # Flushes every flush_interval, sooner when flush_events are buffered, and once more at stop.
        self._flusher = BackgroundLoop("gazette-views", self.flush, rules.flush_interval, last_step=True,
                                       failure="writing view counts failed; they stay buffered", logger=log)

    @property
    def is_shared(self) -> bool:
        """Whether counting asks Redis (a network round trip, kept off an event loop)."""
        return self._shared is not None

    def start(self) -> None:
        self._flusher.start()

    def stop(self) -> None:
        """Write everything still buffered: a graceful stop loses no view."""
        self._flusher.stop()

    def is_crawler(self, user_agent: str) -> bool:
        return self._crawlers(user_agent)

    def is_click(self, link: str, ip: str, user_agent: str) -> bool:
        """Whether a click on `link` (what the signed link leads to and for whom: article, channel, partner)
        counts: not a crawler, and the first from this visitor within the dedupe window, so that a reload, a
        prefetch or a script replaying the link counts once."""
        if self.is_crawler(user_agent):
            return False
        now = self._clock()
        self._rotate_salt(now)
        with self._lock:
            key = (self._visitor(ip, user_agent)[1], "click:" + link)
        if self._shared is not None:
            verdict = self._shared.visit("clicks", key, self._rules.dedupe)
            if verdict is not None:
                return verdict == "counted"
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last < self._rules.dedupe:
                return False
            self._seen[key] = now
            self._seen.move_to_end(key)
            self._prune(now)
        return True

    def _visitor(self, ip: str, user_agent: str) -> tuple[bytes, bytes]:
        """(IP hash, visitor hash) under today's salt; the caller holds the lock."""
        ip_hash = hashlib.blake2b(ip.encode(), key=self._salt, digest_size=16).digest()
        return ip_hash, hashlib.blake2b(user_agent.encode(), key=ip_hash, digest_size=16).digest()

    def record(self, article_id: str, ip: str, user_agent: str) -> str:
        """Returns why the hit did or did not count: counted | crawler | unknown | repeat | capped."""
        if not self._is_known(article_id):
            return "unknown"
        if self.is_crawler(user_agent):
            return "crawler"
        now = self._clock()
        self._rotate_salt(now)
        with self._lock:
            ip_hash, visitor = self._visitor(ip, user_agent)
        if self._shared is not None:
            verdict = self._shared.visit("views", (visitor, article_id), self._rules.dedupe, (ip_hash, article_id),
                                         cap=self._rules.per_ip_cap, until=_day_end(now) - now)
            if verdict is not None:
                if verdict == "counted":
                    with self._lock:
                        self._buffer(article_id, now)
                return verdict
        with self._lock:
            last = self._seen.get((visitor, article_id))
            if last is not None and now - last < self._rules.dedupe:
                return "repeat"
            if self._per_ip.get((ip_hash, article_id), 0) >= self._rules.per_ip_cap:
                return "capped"
            self._seen[(visitor, article_id)] = now
            self._seen.move_to_end((visitor, article_id))
            self._per_ip[(ip_hash, article_id)] = self._per_ip.get((ip_hash, article_id), 0) + 1
            self._prune(now)
            self._buffer(article_id, now)
        return "counted"

    def _buffer(self, article_id: str, now: datetime) -> None:
        """One counted view into its hour's bucket; the caller holds the lock."""
        hour = now.replace(minute=0, second=0, microsecond=0)
        self._pending[(article_id, hour)] = self._pending.get((article_id, hour), 0) + 1
        self._pending_events += 1
        if self._pending_events >= self._rules.flush_events:
            self._flusher.poke()

    def _rotate_salt(self, now: datetime) -> None:
        """A new random salt each (UTC) day: yesterday's visitors cannot be linked to today's, nor recomputed.
        With Redis, the day's salt is the one in Redis (the same in every process), asked for outside the lock
        until it is had, and again every `SALT_CHECK` (a Redis restarted empty gets a new one, which every process
        then takes); while Redis is away the process makes its own, as without Redis."""
        today = now.date()
        checked = self._salt_checked_at
        if today == self._salt_day and (self._shared is None or (
                self._salt_is_shared and checked is not None and now - checked < SALT_CHECK)):
            return
        shared = self._shared.salt(today, now) if self._shared is not None else None
        with self._lock:
            if shared is not None:
                self._salt_checked_at = now
                if (today, shared) != (self._salt_day, self._salt):
                    self._salt_day, self._salt = today, shared
                    self._seen.clear()
                    self._per_ip.clear()
                self._salt_is_shared = True
            elif today != self._salt_day:
                self._salt_day, self._salt, self._salt_is_shared = today, secrets.token_bytes(32), False
                self._seen.clear()
                self._per_ip.clear()

    def _prune(self, now: datetime) -> None:
        while self._seen:
            key, counted_at = next(iter(self._seen.items()))
            if now - counted_at < self._rules.dedupe and len(self._seen) <= MAX_VISITS:
                break
            del self._seen[key]
        if len(self._per_ip) > MAX_IPS:
            self._per_ip.clear()

    def flush(self) -> int:
        with self._lock:
            pending, self._pending, self._pending_events = self._pending, {}, 0
        if not pending:
            return 0
        try:
            self._store.add_views_batch((article_id, hour, count) for (article_id, hour), count in pending.items())
        except Exception:
            # Keep the counts for the next round rather than drop them.
            with self._lock:
                for key, count in pending.items():
                    self._pending[key] = self._pending.get(key, 0) + count
                    self._pending_events += count
            raise
        return sum(pending.values())


def _day_end(now: datetime) -> datetime:
    """When the (UTC) day of `now` ends: the per-IP caps and the salt are the day's."""
    return datetime(now.year, now.month, now.day, tzinfo=now.tzinfo) + timedelta(days=1)


class KnownArticles:
    """The ids of stored articles, kept in memory so that a beacon for an unknown id costs no query."""

    def __init__(self, store: ArticleStore) -> None:
        self._store = store
        self._ids: frozenset[str] = frozenset()
        self._version: object = None

    def refresh(self, version: object) -> None:
        if version != self._version:
            self._ids = frozenset(self._store.article_ids())
            self._version = version

    def __call__(self, article_id: str) -> bool:
        return article_id in self._ids


class Redirects:
    """Signed links to articles (`/r/{token}`) for mails and feeds: they count a click with its channel and
    can only lead to the article they were made for."""

    def __init__(self, signing_key: str, base_url: str) -> None:
        self._serializer = URLSafeSerializer(signing_key, salt="gazette.redirect")
        self._base_url = base_url

    def url(self, article_id: str, channel: str, *, partner: str | None = None,
            query: Mapping[str, str] | None = None) -> str:
        """`partner` counts the click for that partner too; `query` (UTM parameters) is added to the article's
        URL on the way: both are signed, so the link still leads only to the article it was made for."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        payload: list[object] = [article_id, channel]
        if partner is not None or query:
            payload += [partner, dict(query or {})]
        return f"{self._base_url}/r/{self._serializer.dumps(payload)}"

    def read(self, token: str) -> tuple[str, str] | None:
        target = self.target(token)
        return (target.article_id, target.channel) if target else None

    def target(self, token: str) -> RedirectTarget | None:
        try:
            article_id, channel, *rest = self._serializer.loads(token)
        except (BadSignature, ValueError, TypeError):
            return None
        if not isinstance(article_id, str) or channel not in CHANNELS:
            return None
        partner, query = (rest + [None, None])[:2]
        if not isinstance(partner, str | None) or not isinstance(query, dict | None):
            return None
        return RedirectTarget(article_id, channel, partner, {str(k): str(v) for k, v in (query or {}).items()})


class Clicks:
    """Following signed links: each leads only to the URL stored for its article (plus its signed UTM), never
    anywhere else, and counts a click once per visitor and link (`ViewCounter.is_click`)."""

    def __init__(self, redirects: Redirects, store: ArticleStore, counter: ViewCounter, clock: Callable[[], datetime],
                 on_partner_click: Callable[[str, datetime], None] = lambda partner, at: None) -> None:
        self._redirects = redirects
        self._store = store
        self._counter = counter
        self._clock = clock
        self._on_partner_click = on_partner_click

    def follow(self, token: str, ip: str, user_agent: str) -> str | None:
        """Where the link leads, its click counted for the article and channel, the digest edition it came in
        (`utm_campaign`) and the partner it was made for; None for a token we did not sign or an article that
        is gone or has no URL. `Unavailable` for a story killed or held: no click is counted."""
        found = self._redirects.target(token)
        article = self._store.article(found.article_id) if found else None
        if found is None or article is None or not article.url:
            return None
        if not article.is_live:  # a link in an old mail or feed: a notice, never the withdrawn page
            raise Unavailable(article.status)
        link = "/".join((article.id, found.channel, found.partner or "", found.query.get("utm_campaign", "")))
        if self._counter.is_click(link, ip, user_agent):
            self._store.add_click(article.id, self._clock(), found.channel)
            if found.query.get("utm_campaign"):  # a digest edition's own count, for its statistics
                self._store.add_campaign_click(found.query["utm_campaign"], article.id)
            if found.partner:
                self._on_partner_click(found.partner, self._clock())
        return found.destination(article.url)


class Unavailable(StoreError):
    """A signed link to a story that was killed (410 Gone) or is held (404 for now)."""

    def __init__(self, article_status: str) -> None:
        super().__init__(f"the article is {article_status}")
        self.article_status = article_status
        self.status = 410 if article_status == KILLED else 404


@dataclass(frozen=True)
class RedirectTarget:
    article_id: str
    channel: str
    partner: str | None = None
    query: Mapping[str, str] = field(default_factory=dict)

    def destination(self, url: str) -> str:
        """The article's URL with the signed query parameters added."""
        return with_query(url, self.query)


def with_query(url: str, params: Mapping[str, str]) -> str:
    """`url` with `params` added to its query, replacing any of the same name; the rest is kept as it was."""
    if not params:
        return url
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode(kept + sorted(params.items()))))


@dataclass(frozen=True)
class ImportedViews:
    line: int
    url_or_id: str
    views: int
    counted_at: datetime  # the hour bucket the views go into: the period's start, else the import time


def read_views_csv(text: str, *, timezone: tzinfo, now: datetime) -> tuple[list[ImportedViews], list[tuple[int, str]]]:
    """An analytics export: `url_or_id,views[,from,to]` with a header. Bad rows come back with their line."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "url_or_id" not in fields or "views" not in fields:
        return [], [(1, "the header must name the columns url_or_id and views (optionally from, to)")]
    rows, problems = [], []
    for row in reader:
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        line = reader.line_num
        if not row.get("url_or_id"):
            problems.append((line, "no url_or_id"))
            continue
        if not row.get("views", "").isdigit():
            problems.append((line, f"views {row.get('views')!r} is not a whole number"))
            continue
        start = parse_date(row["from"], timezone) if row.get("from") else None
        if row.get("from") and start is None:
            problems.append((line, f"from {row['from']!r} is not a date"))
            continue
        rows.append(ImportedViews(line, row["url_or_id"], int(row["views"]), start or now))
    return rows, problems
