"""Pushing articles and their later life to partners that gave a callback URL: a queue of signed POSTs, retried, then
parked.

Each (partner, article) gets one `article.published` row once the article is past the partner's embargo, if it was
published after the partner's callback was set; each later event of the article's in the event log (`feeds.events`:
`article.updated`, `article.corrected`, `article.killed`) gets one row per partner that has the article (its
publication was pushed to it, or, for a kill, it took the article in a feed). The rows are unique per (partner,
article, event), so neither a second process, nor a restart, nor a retry can make another. A push whose article was
killed before it went is dropped, not sent; one whose article is held waits until it is released. The worker, run
only by the process holding the scheduler lease, claims due rows and POSTs the item as a JSON Feed document (its
`_gazette.ninjs` the same story as a ninjs 3.1 item), signed with HMAC-SHA256 over the body and the partner's secret
(`X-Gazette-Signature: sha256=<hex>`) and carrying the row's delivery id (`X-Gazette-Delivery`, also inside the
signed body) so that the receiver can drop a repeat. A failure is retried with exponential backoff; after
`max_attempts` the row is parked with its reason, visible in the admin API, until an admin retries it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Sequence

import httpx
from sqlalchemy import Engine, exists, func, or_, select

from . import db
from .core import database
from .core.loops import BackgroundLoop
from .model import HELD, KILLED, LIVE, StoredArticle
from .ninjs import canceled_item, ninjs_item
from .partners import Partner, PartnerStore, render_partner_feed
from .readership import Redirects
from .settings import Settings
from .store import ArticleStore

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Gazette-Signature"
DELIVERY_HEADER = "X-Gazette-Delivery"
EVENT_HEADER = "X-Gazette-Event"
STATUSES = ("pending", "delivered", "parked", "dropped")
PUBLISHED = "article.published"
LATER = ("article.updated", "article.corrected", "article.killed")
HELD_RECHECK = timedelta(minutes=5)  # a push of a held story looks again this often: it goes once it is released
EVENT_HORIZON = timedelta(days=7)  # a later event older than this is not pushed: it would tell a partner nothing new


@dataclass(frozen=True)
class PushPolicy:
    max_attempts: int = 8  # with the delays below: retried for about an hour (30 s, 1 min, … 32 min), then parked
    first_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    claim: timedelta = timedelta(minutes=2)  # a claimed row whose pusher died is tried again after this
    timeout: float = 10.0
    batch: int = 50


def backoff(policy: PushPolicy, attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: first_delay, doubled each time, at most max_delay."""
    return min(policy.first_delay * 2 ** max(0, attempts - 1), policy.max_delay)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def is_signed(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: recompute the signature and compare in constant time."""
    return header is not None and hmac.compare_digest(sign(secret, body).encode(), header.encode())


@dataclass(frozen=True)
class Push:
    id: int
    partner_slug: str
    article_id: str
    delivery_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    parked_at: datetime | None
    event: str = PUBLISHED
    event_id: int = 0


class PushQueue:
    """The `partner_pushes` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def enqueue(self, partner: Partner, now: datetime, limit: int = 500) -> int:
        """Queue the partner's live articles that are new to it and out of embargo, and the later events of the
        articles it has; returns how many."""
        if not partner.callback_url or partner.push_since_at is None:
            return 0
        return self._enqueue_published(partner, now, limit) + self._enqueue_later(partner, now, limit)

    def _enqueue_published(self, partner: Partner, now: datetime, limit: int) -> int:
        a, q = db.articles, db.partner_pushes
        assert partner.push_since_at is not None
        query = (select(a.c.id).where(a.c.status == LIVE, a.c.published_at >= partner.push_since_at,
                                      a.c.published_at <= partner.visible_until(now),
                                      ~exists().where(q.c.partner_slug == partner.slug, q.c.article_id == a.c.id,
                                                      q.c.event_id == 0))
                 .order_by(a.c.published_at, a.c.id).limit(limit))
        if "all" not in partner.categories:
            query = query.where(a.c.category.in_(list(partner.categories)))
        with self.engine.begin() as conn:
            ids = conn.execute(query).scalars().all()
            if ids:
                conn.execute(database.insert_for(self.engine)(q).on_conflict_do_nothing(), [
                    {"partner_slug": partner.slug, "article_id": article_id, "delivery_id": uuid.uuid4().hex,
                     "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
                     "event": PUBLISHED, "event_id": 0}
                    for article_id in ids])
        return len(ids)

    def _enqueue_later(self, partner: Partner, now: datetime, limit: int) -> int:
        """The events after publication of the articles the partner has: whose publication was delivered to it,
        or (a kill) that it took in one of its feeds too, so that it can take the story down."""
        assert partner.push_since_at is not None
        e, q, pa = db.events, db.partner_pushes, db.partner_articles
        pushed = exists().where(q.c.partner_slug == partner.slug, q.c.article_id == e.c.subject, q.c.event_id == 0,
                                q.c.status == "delivered")
        fetched = exists().where(pa.c.partner_slug == partner.slug, pa.c.article_id == e.c.subject)
        query = (select(e.c.id, e.c.type, e.c.subject)
                 .where(e.c.type.in_(LATER), e.c.occurred_at >= max(partner.push_since_at, now - EVENT_HORIZON),
                        or_(pushed, (e.c.type == "article.killed") & fetched),
                        ~exists().where(q.c.partner_slug == partner.slug, q.c.event_id == e.c.id))
                 .order_by(e.c.id).limit(limit))
        with self.engine.begin() as conn:
            rows = conn.execute(query).all()
            if rows:
                conn.execute(database.insert_for(self.engine)(q).on_conflict_do_nothing(), [
                    {"partner_slug": partner.slug, "article_id": row.subject, "delivery_id": uuid.uuid4().hex,
                     "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
                     "event": row.type, "event_id": row.id} for row in rows])
        return len(rows)

    def received(self, article_id: str) -> list[tuple[str, datetime | None]]:
        """The partners that have the article (its push delivered, or taken in a feed), with when they got it
        first: the newsroom follows up with them when the story is killed."""
        q, pa = db.partner_pushes, db.partner_articles
        first: dict[str, datetime | None] = {}
        with self.engine.connect() as conn:
            for slug, at in conn.execute(select(q.c.partner_slug, q.c.delivered_at).where(
                    q.c.article_id == article_id, q.c.event_id == 0, q.c.status == "delivered")):
                first[slug] = at
            for slug, day in conn.execute(select(pa.c.partner_slug, func.min(pa.c.day))
                                          .where(pa.c.article_id == article_id).group_by(pa.c.partner_slug)):
                first.setdefault(slug, None)
        return sorted(first.items())

    def postpone(self, push: Push, until: datetime) -> None:
        """Try the row again at `until`, its attempts as they were (its story is held)."""
        q = db.partner_pushes
        with self.engine.begin() as conn:
            conn.execute(q.update().where(q.c.id == push.id).values(next_attempt_at=until))

    def dropped(self, push: Push, reason: str, now: datetime) -> None:
        """Never to be sent: the story was killed before this push went."""
        q = db.partner_pushes
        with self.engine.begin() as conn:
            conn.execute(q.update().where(q.c.id == push.id).values(status="dropped", last_error=reason[:1000],
                                                                    next_attempt_at=None, parked_at=now))

    def due(self, now: datetime, partner_slugs: Sequence[str], limit: int) -> list[Push]:
        q = db.partner_pushes
        with self.engine.connect() as conn:
            rows = conn.execute(select(q).where(q.c.status == "pending", q.c.next_attempt_at <= now,
                                                q.c.partner_slug.in_(list(partner_slugs)))
                                .order_by(q.c.next_attempt_at, q.c.id).limit(limit))
            return [Push(**r._mapping) for r in rows]

    def claim(self, push: Push, now: datetime, until: datetime) -> bool:
        """Take a due row for one attempt; False if another process took it first."""
        q = db.partner_pushes
        with self.engine.begin() as conn:
            result = conn.execute(q.update().where(q.c.id == push.id, q.c.status == "pending",
                                                   q.c.next_attempt_at <= now).values(next_attempt_at=until))
            return result.rowcount == 1

    def delivered(self, push: Push, now: datetime) -> None:
        q = db.partner_pushes
        with self.engine.begin() as conn:
            conn.execute(q.update().where(q.c.id == push.id).values(
                status="delivered", attempts=q.c.attempts + 1, delivered_at=now, next_attempt_at=None))

    def failed(self, push: Push, reason: str, now: datetime, retry_at: datetime | None) -> None:
        """Record a failed attempt: try again at `retry_at`, or park the row when None."""
        q = db.partner_pushes
        values: dict[str, object] = {"attempts": q.c.attempts + 1, "last_error": reason[:1000],
                                     "next_attempt_at": retry_at}
        if retry_at is None:
            values.update(status="parked", parked_at=now)
        with self.engine.begin() as conn:
            conn.execute(q.update().where(q.c.id == push.id).values(**values))

    def pushes(self, partner_slug: str, status: str | None = None, limit: int = 100,
               before_id: int | None = None) -> list[Push]:
        """Newest first; with `before_id`, those older than that row (the API's next page)."""
        q = db.partner_pushes
        query = select(q).where(q.c.partner_slug == partner_slug).order_by(q.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(q.c.status == status)
        if before_id is not None:
            query = query.where(q.c.id < before_id)
        with self.engine.connect() as conn:
            return [Push(**r._mapping) for r in conn.execute(query)]

    def counts(self, partner_slug: str) -> dict[str, int]:
        q = db.partner_pushes
        with self.engine.connect() as conn:
            rows = conn.execute(select(q.c.status, func.count()).where(q.c.partner_slug == partner_slug)
                                .group_by(q.c.status)).all()
        return {status: 0 for status in STATUSES} | {status: int(n) for status, n in rows}

    def retry(self, partner_slug: str, delivery_id: str, now: datetime) -> Push | None:
        """Put a parked row back in the queue with a fresh set of attempts; None if there is no such parked row."""
        q = db.partner_pushes
        which = (q.c.partner_slug == partner_slug, q.c.delivery_id == delivery_id)
        with self.engine.begin() as conn:
            result = conn.execute(q.update().where(*which, q.c.status == "parked").values(
                status="pending", attempts=0, next_attempt_at=now, parked_at=None))
            if result.rowcount != 1:
                return None
            return Push(**conn.execute(select(q).where(*which)).one()._mapping)


@dataclass(frozen=True)
class Attempt:
    error: str | None  # None: delivered
    is_final: bool = False
    is_moot: bool = False  # nothing to send any more (the story was killed first): dropped, not parked
    is_held: bool = False  # not now: the story is held; the push waits, its attempts untouched


@dataclass(frozen=True)
class PushRound:
    queued: int = 0
    delivered: int = 0
    failed: int = 0
    parked: int = 0


class PushWorker:
    """Queues and delivers pushes every `interval`, in a thread, when `is_leader()`."""

    def __init__(self, settings: Settings, partners: PartnerStore, queue: PushQueue, store: ArticleStore,
                 redirects: Redirects, clock: Callable[[], datetime], *, is_leader: Callable[[], bool],
                 interval: timedelta, policy: PushPolicy = PushPolicy(), client: httpx.Client | None = None) -> None:
        self._settings, self._partners, self._queue, self._store = settings, partners, queue, store
        self._redirects, self._clock, self._is_leader = redirects, clock, is_leader
        self._policy = policy
        self._client = client or httpx.Client(timeout=policy.timeout, follow_redirects=False,
                                              headers={"User-Agent": f"Gazette/0.1 (+{settings.site.base_url})"})
        # A failed round (a database hiccup) is logged; the queue is in the database, the next round goes on.
        self._loop = BackgroundLoop("gazette-push", self.step, interval, failure="pushing to partners failed",
                                    logger=log)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop(timeout=self._policy.timeout + 5)  # a push under way ends within its timeout
        self._client.close()

    def step(self) -> PushRound:
        if not self._is_leader():
            return PushRound()
        pushing = {p.slug: p for p in self._partners.partners() if p.callback_url and p.push_secret}
        if not pushing:
            return PushRound()
        now = self._clock()
        queued = sum(self._queue.enqueue(partner, now) for partner in pushing.values())
        delivered = failed = parked = 0
        for push in self._queue.due(now, list(pushing), self._policy.batch):
            if self._loop.is_stopping:
                break
            now = self._clock()
            if not self._queue.claim(push, now, now + self._policy.claim):
                continue
            attempt = self.deliver(push, pushing[push.partner_slug])
            now = self._clock()
            if attempt.is_moot:
                self._queue.dropped(push, attempt.error or "", now)
                continue
            if attempt.is_held:
                self._queue.postpone(push, now + HELD_RECHECK)
                continue
            if attempt.error is None:
                self._queue.delivered(push, now)
                delivered += 1
                continue
            attempts = push.attempts + 1
            is_last = attempt.is_final or attempts >= self._policy.max_attempts
            self._queue.failed(push, attempt.error, now, None if is_last else now + backoff(self._policy, attempts))
            failed += 1
            parked += is_last
            log.warning("push %s of %s to %s failed (attempt %d): %s", push.delivery_id, push.article_id,
                        push.partner_slug, attempts, attempt.error)
        return PushRound(queued, delivered, failed, parked)

    def body(self, push: Push, partner: Partner) -> bytes | Attempt:
        """The document of one push: a JSON Feed holding the article as the partner's feeds give it (none for a
        kill), its `_gazette` object saying which event it is, with the story as a ninjs item (canceled for a
        kill); or why there can be none."""
        article = self._store.article(push.article_id)
        if article is None:
            return Attempt("the article is gone", is_final=True)  # retrying cannot help: parked for an admin to see
        top: dict[str, object] = {"delivery_id": push.delivery_id, "partner": partner.slug, "event": push.event}
        if push.event == "article.killed":
            top["article"] = killed_notice(article)
            top["ninjs"] = canceled_item(article, self._settings.site)
            return render_partner_feed(self._settings, partner, article.category or "all", "json", [],
                                       self._redirects, top=top)
        if article.status == HELD:  # it waits for the release (or the kill, which drops it)
            return Attempt("the article is held", is_held=True)
        if not article.is_live:
            return Attempt(f"the article was {article.status} before this push went", is_moot=True)
        if not partner.may_take(article.category):
            return Attempt(f"the partner no longer licenses {article.category!r}", is_final=True)
        if push.event == "article.corrected" and article.corrections:
            top["correction"] = {"note": article.corrections[-1].note,
                                 "corrected_at": article.corrections[-1].corrected_at.isoformat()}
        top["ninjs"] = ninjs_item(article, partner, site=self._settings.site,
                                  labels={c.slug: c.name for c in self._settings.categories}, redirects=self._redirects)
        return render_partner_feed(self._settings, partner, article.category or "all", "json", [article],
                                   self._redirects, top=top)

    def deliver(self, push: Push, partner: Partner) -> Attempt:
        """One attempt: taken by the partner (any 2xx), or why not."""
        body = self.body(push, partner)
        if isinstance(body, Attempt):
            return body
        assert partner.callback_url and partner.push_secret
        headers = {"Content-Type": "application/feed+json; charset=utf-8", DELIVERY_HEADER: push.delivery_id,
                   SIGNATURE_HEADER: sign(partner.push_secret, body), "X-Gazette-Partner": partner.slug,
                   EVENT_HEADER: push.event}
        try:
            response = self._client.post(partner.callback_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Attempt(f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:
            return Attempt(None)
        return Attempt(f"HTTP {response.status_code}: {response.text[:200]}")


def killed_notice(article: StoredArticle) -> dict[str, object]:
    """What a kill tells a partner: which story (its id and canonical URL), when, and the editors' reason."""
    return {"id": article.id, "url": article.url, "title": article.title, "status": KILLED,
            "killed_at": article.status_at.isoformat() if article.status_at else None, "reason": article.status_reason}
