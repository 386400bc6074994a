"""The admin API of the content side (`/api/sources`, `/api/popular`, `/api/partners`).

Routes are FastAPI's so that they appear in `/api/openapi.json`; the admin token, the documented error answers,
the one error mapping (problem+json) and the one shape of a list (`ListPage`, `Paged`) are the kit's
(`feeds.core.http`). Handlers are methods of small classes
holding what they ask; domain errors (an unknown partner, a slug taken, a value refused) propagate to the mapping
with their own status.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Callable, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from ..core.audit import AuditLog
from ..core.http import Access, ListPage, Paged, RowId, acting, admin_router, problems
from ..core.paging import decode_cursor, page_in_memory, page_of
from ..errors import UnknownName
from ..partners import Partner, PartnerStore
from ..push import PushQueue
from ..readership import WINDOWS, most_viewed
from ..settings import Settings
from ..source_book import SourceBook, SourceRow
from ..store import ArticleStore
from ..syndication import register_partner


class SourceHealth(BaseModel):
    name: str
    origin: str  # config (the file's, read-only) | console (stored: the console or POST /api/sources)
    paused: bool
    kind: str
    location: str
    fetch_url: str | None
    category: str | None
    interval_seconds: int
    # new | ok | failing | unhealthy (past the failure limit: checked every 6 h) | disabled | paused | invalid (a stored
    # definition the file no longer allows: not polled)
    status: str
    last_checked_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    next_check_at: datetime | None
    disabled_reason: str | None
    clock_warning: str | None  # its items' times run ahead by whole hours: local time written as UTC?
    skipped_items: int  # its articles no feed could render (left out of the feeds, never the feed)
    last_skip: str | None


class RankedArticle(BaseModel):
    rank: int
    id: str
    title: str
    url: str | None
    category: str | None
    byline: str | None
    published_at: datetime
    views: int


class SourcesApi:
    """`/api/sources` and `/api/popular`."""

    def __init__(self, settings: Settings, store: ArticleStore, clock: Callable[[], datetime], access: Access,
                 book: SourceBook) -> None:
        self._settings = settings
        self._access = access
        self._store = store
        self._book = book
        self._clock = clock

    def router(self) -> APIRouter:
        api = admin_router(self._access, "/api", "sources")
        api.add_api_route("/sources", self.sources, methods=["GET"], response_model=ListPage[SourceHealth],
                          summary="Every source with its health, by name")
        api.add_api_route("/popular", self.popular, methods=["GET"], response_model=ListPage[RankedArticle],
                          summary="Most viewed articles (많이 본 뉴스): the top `limit`, one page",
                          description="A ranking, not a collection: `limit` is how many of the top to rank, and "
                                      "`next_cursor` is always null (the order moves with every view, so a second "
                                      "page could repeat or skip articles).",
                          tags=["views"], responses=problems(404))
        return api

    def sources(self, page: Paged) -> ListPage[SourceHealth]:
        after = decode_cursor(page.cursor, "sources", (str,))
        rows = sorted(self._book.overview(self._settings.fetch.failure_limit), key=lambda row: row.entry.name)
        found = page_in_memory(rows, page.limit, "sources", lambda row: (row.entry.name,), after)
        return ListPage(items=[_health(row) for row in found.items], next_cursor=found.next_cursor)

    def popular(self, window: Literal["1h", "24h", "7d", "30d"] = "24h", category: str | None = None,
                limit: Annotated[int, Query(ge=1, le=100)] = 10) -> ListPage[RankedArticle]:
        settings = self._settings
        if category is not None and settings.category(category) is None:
            raise UnknownName(f"no category {category!r}; configured: " + ", ".join(c.slug for c in settings.categories))
        ranked = most_viewed(self._store, window=WINDOWS[window], now=self._clock(), limit=limit, category=category,
                             max_age=max(settings.views.max_age, WINDOWS[window]))
        return ListPage(items=[RankedArticle(rank=i, id=a.id, title=a.title, url=a.url, category=a.category,
                                             byline=a.byline, published_at=a.published_at, views=a.views)
                               for i, a in enumerate(ranked, start=1)], next_cursor=None)


def _health(row: SourceRow) -> SourceHealth:
    """A source's line: its state as the store keeps it, or, for a stored definition never synced, what it says."""
    entry, state = row.entry, row.state
    known = {"origin": entry.origin, "paused": entry.is_paused, "status": row.health}
    if state is not None:
        return SourceHealth(**known, **{k: getattr(state, k) for k in SourceHealth.model_fields if k not in known})
    definition = entry.definition
    return SourceHealth(**known, name=entry.name, kind=str(definition.get("kind", "")),
                        location=str(definition.get("url") or definition.get("path") or ""), fetch_url=None,
                        category=definition.get("category"), interval_seconds=0, last_checked_at=None,
                        last_success_at=None, last_error=entry.problem, last_error_at=None, consecutive_failures=0,
                        next_check_at=None, disabled_reason=None, clock_warning=None, skipped_items=0, last_skip=None)


# --- partners ---------------------------------------------------------------------------------------------------

class PartnerKey(BaseModel):
    id: int
    label: str | None
    fingerprint: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewPartnerKey(PartnerKey):
    key: str  # shown this once; only its hash is kept


class PartnerOut(BaseModel):
    slug: str
    name: str
    categories: list[str]
    full_content: bool
    include_images: bool
    embargo_minutes: int
    utm: dict[str, str]
    attribution: str | None
    callback_url: str | None
    rate_limit: int
    origin: str  # config | admin
    created_at: datetime
    keys: list[PartnerKey]
    pushes: dict[str, int]  # pending | delivered | parked


class PartnerIn(BaseModel):
    slug: str
    name: str
    categories: list[str]
    full_content: bool = True
    include_images: bool = True
    embargo_minutes: int = 0
    utm: dict[str, str] | None = None
    attribution: str | None = None
    callback_url: str | None = None
    callback_secret: str | None = None
    rate_limit: int = 60


class CreatedPartner(BaseModel):
    partner: PartnerOut
    key: NewPartnerKey


class KeyIn(BaseModel):
    label: str | None = None


class UsageDayOut(BaseModel):
    day: date
    requests: int
    not_modified: int
    rate_limited: int
    bytes: int
    articles: int
    clicks: int
    last_fetch_at: datetime | None


class PartnerUsage(BaseModel):
    partner: str
    timezone: str
    days: list[UsageDayOut]


class PushOut(BaseModel):
    delivery_id: str
    article_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    parked_at: datetime | None


class PartnersApi:
    """`/api/partners`: partners, their keys, usage and pushes."""

    def __init__(self, settings: Settings, partners: PartnerStore, pushes: PushQueue,
                 clock: Callable[[], datetime], access: Access, audit: AuditLog) -> None:
        self._settings = settings
        self._access = access
        self._audit = audit
        self._partners = partners
        self._pushes = pushes
        self._clock = clock

    def router(self) -> APIRouter:
        api = admin_router(self._access, "/api/partners", "partners")
        admin = [Depends(self._access.admin)]  # partners and their keys are an admin's
        api.add_api_route("", self.list_partners, methods=["GET"], response_model=ListPage[PartnerOut],
                          summary="Every partner with its keys (never the keys themselves), by slug")
        api.add_api_route("", self.create_partner, methods=["POST"], dependencies=admin, response_model=CreatedPartner, status_code=201,
                          responses=problems(409), summary="Create a partner and its first key (shown once)")
        api.add_api_route("/{slug}", self.get_partner, methods=["GET"], response_model=PartnerOut,
                          summary="One partner", responses=problems(404))
        api.add_api_route("/{slug}/keys", self.create_key, methods=["POST"], dependencies=admin, response_model=NewPartnerKey,
                          status_code=201, responses=problems(404),
                          summary="A new key for the partner (shown once): rotate by adding one, then revoking the old")
        api.add_api_route("/{slug}/keys/{key_id}", self.revoke_key, methods=["DELETE"], dependencies=admin, response_model=PartnerKey,
                          summary="Revoke a key at once (kept, marked)", responses=problems(404))
        api.add_api_route("/{slug}/usage", self.usage, methods=["GET"], response_model=PartnerUsage,
                          summary="Requests, 304s, bytes, articles, clicks per day", responses=problems(404))
        api.add_api_route("/{slug}/pushes", self.list_pushes, methods=["GET"], response_model=ListPage[PushOut],
                          summary="Pushes to the partner's callback, newest first", responses=problems(404))
        api.add_api_route("/{slug}/pushes/{delivery_id}/retry", self.retry_push, methods=["POST"], dependencies=admin,
                          response_model=PushOut, summary="Queue a parked push again", responses=problems(404))
        return api

    def _found(self, slug: str) -> Partner:
        partner = self._partners.partner(slug)
        if partner is None:
            raise UnknownName(f"no partner {slug!r}")
        return partner

    def _out(self, partner: Partner) -> PartnerOut:
        plain = {k: getattr(partner, k) for k in PartnerOut.model_fields if k not in ("keys", "pushes", "utm", "categories")}
        return PartnerOut(**plain, categories=list(partner.categories), utm=dict(partner.utm),
                          keys=[PartnerKey(**vars(k)) for k in self._partners.keys(partner.slug)],
                          pushes=self._pushes.counts(partner.slug))

    def list_partners(self, page: Paged) -> ListPage[PartnerOut]:
        after = decode_cursor(page.cursor, "partners", (str,))
        found = page_in_memory(self._partners.partners(), page.limit, "partners", lambda p: (p.slug,), after)
        return ListPage(items=[self._out(p) for p in found.items], next_cursor=found.next_cursor)

    def create_partner(self, request: Request, body: PartnerIn) -> CreatedPartner:
        partner, info, key = register_partner(self._settings, self._partners, body.model_dump(exclude_none=True),
                                              self._clock())
        self._audit.record(acting(request), "partner.create", f"partner:{partner.slug}",
                           after=body.model_dump(exclude={"callback_secret"}, exclude_none=True))
        return CreatedPartner(partner=self._out(partner), key=NewPartnerKey(**vars(info), key=key))

    def get_partner(self, slug: str) -> PartnerOut:
        return self._out(self._found(slug))

    def create_key(self, request: Request, slug: str, body: KeyIn) -> NewPartnerKey:
        info, key = self._partners.add_key(slug, self._clock(), label=body.label)  # UnknownName, InvalidValue
        self._audit.record(acting(request), "partner.key_create", f"partner:{slug}",
                           after={"key_id": info.id, "fingerprint": info.fingerprint, "label": info.label})
        return NewPartnerKey(**vars(info), key=key)

    def revoke_key(self, request: Request, slug: str, key_id: RowId) -> PartnerKey:
        self._found(slug)
        info = self._partners.revoke_key(slug, str(key_id), self._clock())
        if info is None:
            raise UnknownName(f"partner {slug!r} has no key {key_id}")
        self._audit.record(acting(request), "partner.key_revoke", f"partner:{slug}",
                           after={"key_id": info.id, "fingerprint": info.fingerprint})
        return PartnerKey(**vars(info))

    def usage(self, slug: str, days: Annotated[int, Query(ge=1, le=366)] = 30) -> PartnerUsage:
        self._found(slug)
        return PartnerUsage(partner=slug, timezone=self._settings.site.timezone.key,
                            days=[UsageDayOut(**vars(d)) for d in self._partners.usage(slug, now=self._clock(), days=days)])

    def list_pushes(self, slug: str, page: Paged,
                    status: Literal["pending", "delivered", "parked"] | None = None) -> ListPage[PushOut]:
        before = decode_cursor(page.cursor, "pushes", (int,))
        self._found(slug)
        rows = self._pushes.pushes(slug, status, page.limit + 1, before_id=None if before is None else int(before[0]))
        found = page_of(rows, page.limit, "pushes", lambda p: (p.id,))
        return ListPage(items=[PushOut(**vars(p)) for p in found.items], next_cursor=found.next_cursor)

    def retry_push(self, request: Request, slug: str, delivery_id: str) -> PushOut:
        self._found(slug)
        push = self._pushes.retry(slug, delivery_id, self._clock())
        if push is None:
            raise UnknownName(f"partner {slug!r} has no parked push {delivery_id!r}")
        self._audit.record(acting(request), "partner.push_retry", f"partner:{slug}", after={"delivery_id": delivery_id})
        return PushOut(**vars(push))
