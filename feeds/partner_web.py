"""HTTP of partner syndication: `GET /partners/{partner}/feeds/{slug}.rss|.atom|.json`.

The key comes as `Authorization: Bearer KEY` or `?key=KEY`. Answers, all errors as JSON: 401 with
`WWW-Authenticate` for no key or a key that is not this partner's; 403 for a revoked key or a category the
partner did not license; 404 for no such feed; 429 with `Retry-After` past the partner's rate limit. A feed answers
conditional GET and gzip as public feeds do (`web.feed_response`), but only private caches may keep it. Every
request with a valid key is counted in the partner's usage.
"""

from __future__ import annotations

import math
import threading
from datetime import datetime
from typing import Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .guard import problem_body, status_title
from .model import StoredArticle
from .partners import Partner, PartnerStore, FeedScope, feed_scope, render_partner_feed
from .publish import EPOCH, Rendered, rendered_bytes
from .render import FORMATS
from .settings import Settings
from .store import ArticleStore
from .views import Redirects
from .web import feed_response

REALM = 'Bearer realm="gazette-partners"'
CACHE_LIMIT = 512


class RateLimiter:
    """A token bucket per partner, in this process's memory: `limit` requests a minute on average, bursts of up
    to `limit`. Behind several processes each keeps its own buckets, so a partner may get a multiple of it."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, datetime]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, limit: int) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        if limit <= 0:
            return 0.0
        now = self._clock()
        per_second = limit / 60
        with self._lock:
            tokens, at = self._buckets.get(key, (float(limit), now))
            tokens = min(float(limit), tokens + max(0.0, (now - at).total_seconds()) * per_second)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / per_second


class PartnerFeeds:
    """Partner feeds' bytes, rendered again only when the partner's settings or the articles it gets changed.

    The articles are read on every request (one indexed query): the embargo lets articles in as time passes,
    so what a partner gets depends on the clock as well as on the store.
    """

    def __init__(self, settings: Settings, store: ArticleStore, redirects: Redirects) -> None:
        self._settings = settings
        self._store = store
        self._redirects = redirects
        self._cache: dict[tuple[str, str, str], tuple[object, Rendered]] = {}
        self._lock = threading.Lock()

    def articles(self, partner: Partner, slug: str, scope: FeedScope, now: datetime) -> list[StoredArticle]:
        return self._store.articles(categories=scope.categories, published_until=partner.visible_until(now),
                                    limit=self._settings.feeds.items_for(slug))

    def get(self, partner: Partner, slug: str, scope: FeedScope, fmt: str, now: datetime,
            ) -> tuple[Rendered, Sequence[str]]:
        """The feed's bytes and the ids of the articles in it."""
        articles = self.articles(partner, slug, scope, now)
        version = (partner, tuple((a.id, a.changed_at) for a in articles))
        key = (partner.slug, slug, fmt)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == version:
            return cached[1], [a.id for a in articles]
        body = render_partner_feed(self._settings, partner, slug, fmt, articles, self._redirects)
        rendered = rendered_bytes(body, fmt, max((a.updated_at for a in articles), default=EPOCH))
        with self._lock:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = (version, rendered)
        return rendered, [a.id for a in articles]


def presented_key(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query_params.get("key") or None


def routes(settings: Settings, partners: PartnerStore, feeds: PartnerFeeds, limiter: RateLimiter,
           clock: Callable[[], datetime]) -> list[Route]:
    known = [c.slug for c in settings.categories]
    max_age = settings.feeds.max_age

    def error(status: int, message: str, **headers: str) -> Response:
        named = {name.replace("_", "-"): value for name, value in headers.items()}
        return Response(problem_body(status, message, status_title(status)), status_code=status,
                        media_type="application/problem+json", headers={"Cache-Control": "no-store", **named})

    def feed(request: Request) -> Response:  # plain function: Starlette runs it in its thread pool
        partner_slug, slug, fmt = (request.path_params[k] for k in ("partner", "slug", "fmt"))
        access = partners.authenticate(partner_slug, presented_key(request))
        if access.status == "missing":
            return error(401, "a partner key is required: Authorization: Bearer KEY (or ?key=KEY)",
                         WWW_Authenticate=REALM)
        if access.status == "wrong" or access.partner is None:
            return error(401, f"this key is not a key of partner {partner_slug!r}",
                         WWW_Authenticate=f'{REALM}, error="invalid_token"')
        partner, now = access.partner, clock()

        def refuse(status: int, message: str, **headers: str) -> Response:
            partners.record_request(partner.slug, now, status=status)
            return error(status, message, **headers)

        if access.status == "revoked":
            return refuse(403, "this key was revoked; use another of the partner's keys or ask for a new one")
        wait = limiter.take(partner.slug, partner.rate_limit)
        if wait:
            return refuse(429, f"more than {partner.rate_limit} requests a minute; try again later",
                          Retry_After=str(max(1, math.ceil(wait))))
        scope = feed_scope(partner, slug, known)
        if fmt not in FORMATS or scope.status == "unknown":
            return refuse(404, f"no partner feed {slug}.{fmt}: the feeds are all.<fmt> and <category>.<fmt> for "
                               f"the categories licensed ({', '.join(partner.categories)}); fmt is rss, atom or json")
        if scope.status == "unlicensed":
            return refuse(403, f"partner {partner.slug!r} does not license {slug!r}; licensed: "
                               + ", ".join(partner.categories))
        rendered, article_ids = feeds.get(partner, slug, scope, fmt, now)
        response = feed_response(request, rendered, max_age)
        # The bytes depend on the key: shared caches must not keep them or hand them to anyone else.
        response.headers["Cache-Control"] = f"private, max-age={max_age}"
        response.headers["Vary"] = "Accept-Encoding, Authorization"
        delivered = response.status_code == 200 and request.method == "GET"
        partners.record_request(partner.slug, now, status=response.status_code, key_id=access.key_id,
                                sent_bytes=len(response.body) if delivered else 0,
                                article_ids=article_ids if delivered else ())
        return response

    return [Route("/partners/{partner}/feeds/{slug}.{fmt}", feed, methods=["GET", "HEAD"])]
