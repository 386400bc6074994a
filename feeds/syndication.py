"""What a partner's feed request gets, whatever carries it: the key checked, the partner's rate limit, the feed's
scope (licensed categories, embargo), its bytes cached until they change, and every request counted in its usage.
The formats are the public ones (RSS, Atom, JSON Feed) and ninjs 3.1 (`feeds.ninjs`), which also lists the stories
killed lately as canceled items.

`PartnerDesk.open()` decides; the HTTP layer (`feeds.http.partners`) turns its `PartnerAnswer` into a response and
reports back with `PartnerDesk.delivered()` what it sent (a 304 or the bytes), which the usage counts. Refusals of a
valid key are counted here, as they are decided.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Literal, Mapping, Sequence

from .article_life import ArticleLife
from .core.errors import ConfigError, Invalid
from .model import StoredArticle
from .ninjs import FORMAT as NINJS
from .ninjs import KILL_WINDOW, render_ninjs_feed
from .partners import (
    FeedScope,
    KeyInfo,
    Partner,
    PartnerStore,
    feed_scope,
    render_partner_feed,
)
from .publish import EPOCH, Rendered, rendered_bytes
from .readership import Redirects
from .render import FORMATS
from .settings import Settings, build_partner
from .store import ArticleStore

CACHE_LIMIT = 512
# (partner, its rate limit a minute) -> 0 when the request may go ahead, else the whole seconds until it may:
# `feeds.core.limits.RateLimiter.hit`, refilling steadily.
Limiter = Callable[[str, int], int]
PARTNER_FORMATS = (*FORMATS, NINJS)
Outcome = Literal["ok", "missing", "wrong", "revoked", "limited", "unknown", "unlicensed"]


class PartnerFeeds:
    """Partner feeds' bytes, rendered again only when the partner's settings or the articles it gets changed.

    The articles are read on every request (one indexed query; ninjs two, the stories killed lately too): the
    embargo lets articles in as time passes, so what a partner gets depends on the clock as well as on the store.
    A correction or a kill moves the story's `changed_at`, so the version, and the bytes are made again.
    """

    def __init__(self, settings: Settings, store: ArticleStore, redirects: Redirects) -> None:
        self._settings = settings
        self._store = store
        self._life = ArticleLife(store.engine)
        self._redirects = redirects
        self._cache: dict[tuple[str, str, str], tuple[object, Rendered]] = {}
        self._lock = threading.Lock()

    def articles(self, partner: Partner, slug: str, scope: FeedScope, now: datetime) -> list[StoredArticle]:
        return self._store.articles(categories=scope.categories, published_until=partner.visible_until(now),
                                    limit=self._settings.feeds.items_for(slug))

    def killed(self, partner: Partner, slug: str, scope: FeedScope, now: datetime) -> list[StoredArticle]:
        """The stories of the feed killed in the last `KILL_WINDOW` that the partner could have had (past its
        embargo when they were killed), newest kill first."""
        killed = self._life.killed(now - KILL_WINDOW, categories=scope.categories,
                                   limit=self._settings.feeds.items_for(slug))
        return [a for a in killed if a.published_at <= partner.visible_until(a.status_at or now)]

    def get(self, partner: Partner, slug: str, scope: FeedScope, fmt: str, now: datetime,
            ) -> tuple[Rendered, Sequence[str]]:
        """The feed's bytes and the ids of the (live) articles in it."""
        articles = self.articles(partner, slug, scope, now)
        killed = self.killed(partner, slug, scope, now) if fmt in (NINJS, "atom") else []
        version = (partner, tuple((a.id, a.changed_at) for a in (*articles, *killed)))
        key = (partner.slug, slug, fmt)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == version:
            return cached[1], [a.id for a in articles]
        if fmt == NINJS:
            body = render_ninjs_feed(self._settings, partner, articles, killed, self._redirects)
        else:
            body = render_partner_feed(self._settings, partner, slug, fmt, articles, self._redirects, killed=killed)
        last = max((max(a.updated_at, a.corrected_at or a.updated_at) for a in articles), default=EPOCH)
        rendered = rendered_bytes(body, fmt, max([last, *(a.status_at or a.changed_at for a in killed)]))
        with self._lock:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = (version, rendered)
        return rendered, [a.id for a in articles]


@dataclass(frozen=True)
class PartnerAnswer:
    """What a partner's request gets: `outcome` "ok" with the feed's bytes and article ids, or why not."""

    outcome: Outcome
    partner: Partner | None = None
    key_id: int | None = None
    now: datetime | None = None
    rendered: Rendered | None = None
    article_ids: Sequence[str] = ()
    retry_after: int = 0  # seconds, for "limited"


class PartnerDesk:
    def __init__(self, settings: Settings, partners: PartnerStore, feeds: PartnerFeeds, limiter: Limiter,
                 clock: Callable[[], datetime]) -> None:
        self._known = [c.slug for c in settings.categories]
        self._partners = partners
        self._feeds = feeds
        self._limiter = limiter
        self._clock = clock

    def open(self, partner_slug: str, key: str | None, slug: str, fmt: str) -> PartnerAnswer:
        """The partner's feed `slug` in `fmt`, for the key presented. In this order: a key missing or not the
        partner's (not counted: whose usage would it be?), a revoked key, the rate limit, a feed that does not
        exist, a category not licensed; each refusal of a valid key is counted in the partner's usage."""
        access = self._partners.authenticate(partner_slug, key)
        if access.status == "missing":
            return PartnerAnswer("missing")
        if access.status == "wrong" or access.partner is None:
            return PartnerAnswer("wrong")
        partner, now = access.partner, self._clock()
        if access.status == "revoked":
            return self._refused("revoked", partner, now, 403)
        wait = self._limiter(partner.slug, partner.rate_limit)
        if wait:
            self._partners.record_request(partner.slug, now, status=429)
            return PartnerAnswer("limited", partner, now=now, retry_after=wait)
        scope = feed_scope(partner, slug, self._known)
        if fmt not in PARTNER_FORMATS or scope.status == "unknown":
            return self._refused("unknown", partner, now, 404)
        if scope.status == "unlicensed":
            return self._refused("unlicensed", partner, now, 403)
        rendered, article_ids = self._feeds.get(partner, slug, scope, fmt, now)
        return PartnerAnswer("ok", partner, access.key_id, now, rendered, article_ids)

    def _refused(self, outcome: Outcome, partner: Partner, now: datetime, status: int) -> PartnerAnswer:
        self._partners.record_request(partner.slug, now, status=status)
        return PartnerAnswer(outcome, partner, now=now)

    def delivered(self, answer: PartnerAnswer, *, status: int, sent_bytes: int | None) -> None:
        """Count what an "ok" answer became: a 304, or a 200 with `sent_bytes` of body; None when no body went
        (HEAD), and then its articles do not count as delivered either."""
        assert answer.partner is not None and answer.now is not None
        self._partners.record_request(answer.partner.slug, answer.now, status=status, key_id=answer.key_id,
                                      sent_bytes=sent_bytes or 0,
                                      article_ids=answer.article_ids if sent_bytes is not None else ())


def register_partner(settings: Settings, partners: PartnerStore, fields: Mapping[str, object], now: datetime,
                     ) -> tuple[Partner, KeyInfo, str]:
    """A partner made through the admin API, with its first key (returned once, in clear): `fields` are checked as
    the configuration's `[[partners]]` are (Invalid, 422, naming the field); a slug taken is a StoreError (409)."""
    try:
        chosen = build_partner("partner", dict(fields), {c.slug for c in settings.categories})
    except ConfigError as exc:
        raise Invalid(str(exc)) from exc
    partner = partners.create(chosen, now)
    info, key = partners.add_key(partner.slug, now, label="first")
    return partner, info, key


def amend_partner(settings: Settings, partners: PartnerStore, fields: Mapping[str, object], now: datetime,
                  ) -> tuple[Partner, Partner]:
    """New licence and terms for a partner the admin made: `fields` (the slug included) are checked as
    `register_partner`'s are; a partner from the configuration file is refused (StoreError, 409). Before and after."""
    try:
        chosen = build_partner("partner", dict(fields), {c.slug for c in settings.categories})
    except ConfigError as exc:
        raise Invalid(str(exc)) from exc
    return partners.update(chosen, now)
