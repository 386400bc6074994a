"""The admin API of the content side (`/api/...`): bearer-token auth, source health, the most viewed, partners.

Routes are FastAPI's so that they appear in `/api/openapi.json`. Errors are JSON (`{"error": ...}`), mapped by
the app's exception handler; the token is compared in constant time.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Callable, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPBearer
from pydantic import BaseModel

from .db import MAX_ID
from .core.errors import ConfigError
from .errors import StoreError
from .guard import check_admin_token
from .partners import Partner, PartnerStore
from .push import PushQueue
from .settings import Settings, build_partner
from .store import ArticleStore, source_health
from .views import WINDOWS, most_viewed


class SourceHealth(BaseModel):
    name: str
    kind: str
    location: str
    fetch_url: str | None
    category: str | None
    interval_seconds: int
    status: str  # new | ok | failing | unhealthy (past the failure limit: checked every 6 h) | disabled
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


# RFC 9457 problem details, as every error of the API answers; `error` repeats `detail` for older clients.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "error": {"type": "string"},
                   "errors": {"type": "array", "items": {"type": "object"}}}}
_MEANINGS = {400: "The request is not acceptable, e.g. a NUL character in the URL (the detail says why)", 401: "No admin token, or a wrong one",
             403: "The admin API is off ([admin] token is not set)", 404: "No such thing",
             409: "Conflicts with what is stored", 413: "The body is larger than 1 MiB",
             422: "A parameter or the body is not valid", 429: "Too many requests; Retry-After says when to try again",
             431: "The request's headers are too large", 502: "A server we depend on (the mail relay) refused"}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses."""
    return {status: {"description": _MEANINGS[status],
                     "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}}} for status in statuses}


# A stored row's id in a path: larger numbers are refused by validation (422), never passed to the database.
RowId = Annotated[int, Path(ge=0, le=MAX_ID)]

# What any admin route may answer besides its own errors.
COMMON_PROBLEMS = problems(400, 401, 403, 413, 422, 431)
_BEARER = HTTPBearer(auto_error=False, scheme_name="adminToken",
                     description="The `[admin] token` of the configuration, as `Authorization: Bearer <token>`.")


def admin_auth(settings: Settings) -> Callable[..., None]:
    def check(request: Request, _credentials: Annotated[Any, Depends(_BEARER)] = None) -> None:
        refusal = check_admin_token(settings.admin_token, request.headers.get("authorization"))
        if refusal is not None:
            raise HTTPException(refusal.status, refusal.message, headers=dict(refusal.headers) or None)
    return check


def admin_router(settings: Settings, prefix: str, tag: str) -> APIRouter:
    """A router of admin routes: the token checked, the common error answers documented."""
    return APIRouter(prefix=prefix, dependencies=[Depends(admin_auth(settings))], tags=[tag],
                     responses=COMMON_PROBLEMS)


def router(settings: Settings, store: ArticleStore, clock: Callable[[], datetime]) -> APIRouter:
    api = admin_router(settings, "/api", "sources")

    @api.get("/sources", response_model=list[SourceHealth], summary="Every source with its health")
    def sources() -> list[SourceHealth]:
        configured = {s.name for s in settings.sources}
        out = []
        for state in store.sources():
            if state.name not in configured:
                continue  # removed from the configuration; its articles stay
            out.append(SourceHealth(status=source_health(state, settings.fetch.failure_limit),
                                    **{k: getattr(state, k) for k in SourceHealth.model_fields if k != "status"}))
        return out

    @api.get("/popular", response_model=list[RankedArticle], summary="Most viewed articles (많이 본 뉴스)",
             tags=["views"], responses=problems(404))
    def popular(window: Literal["1h", "24h", "7d", "30d"] = "24h", category: str | None = None,
                limit: Annotated[int, Query(ge=1, le=100)] = 10) -> list[RankedArticle]:
        if category is not None and settings.category(category) is None:
            raise HTTPException(404, f"no category {category!r}; configured: "
                                + ", ".join(c.slug for c in settings.categories))
        ranked = most_viewed(store, window=WINDOWS[window], now=clock(), limit=limit, category=category,
                             max_age=max(settings.views.max_age, WINDOWS[window]))
        return [RankedArticle(rank=i, id=a.id, title=a.title, url=a.url, category=a.category, byline=a.byline,
                              published_at=a.published_at, views=a.views) for i, a in enumerate(ranked, start=1)]

    return api


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


def partners_router(settings: Settings, partners: PartnerStore, pushes: PushQueue,
                    clock: Callable[[], datetime]) -> APIRouter:
    api = admin_router(settings, "/api/partners", "partners")

    def found(slug: str) -> Partner:
        partner = partners.partner(slug)
        if partner is None:
            raise HTTPException(404, f"no partner {slug!r}")
        return partner

    def out(partner: Partner) -> PartnerOut:
        plain = {k: getattr(partner, k) for k in PartnerOut.model_fields if k not in ("keys", "pushes", "utm", "categories")}
        return PartnerOut(**plain, categories=list(partner.categories), utm=dict(partner.utm),
                          keys=[PartnerKey(**vars(k)) for k in partners.keys(partner.slug)],
                          pushes=pushes.counts(partner.slug))

    @api.get("", response_model=list[PartnerOut], summary="Every partner with its keys (never the keys themselves)")
    def list_partners() -> list[PartnerOut]:
        return [out(p) for p in partners.partners()]

    @api.post("", response_model=CreatedPartner, status_code=201, responses=problems(409),
              summary="Create a partner and its first key (shown once)")
    def create_partner(body: PartnerIn) -> CreatedPartner:
        try:
            chosen = build_partner("partner", body.model_dump(exclude_none=True), {c.slug for c in settings.categories})
            partner = partners.create(chosen, clock())
        except ConfigError as exc:
            raise HTTPException(422, str(exc)) from None
        except StoreError as exc:
            raise HTTPException(409, str(exc)) from None
        info, key = partners.add_key(partner.slug, clock(), label="first")
        return CreatedPartner(partner=out(partner), key=NewPartnerKey(**vars(info), key=key))

    @api.get("/{slug}", response_model=PartnerOut, summary="One partner", responses=problems(404))
    def get_partner(slug: str) -> PartnerOut:
        return out(found(slug))

    @api.post("/{slug}/keys", response_model=NewPartnerKey, status_code=201, responses=problems(404),
              summary="A new key for the partner (shown once): rotate by adding one, then revoking the old")
    def create_key(slug: str, body: KeyIn) -> NewPartnerKey:
        found(slug)
        try:
            info, key = partners.add_key(slug, clock(), label=body.label)
        except StoreError as exc:
            raise HTTPException(422, str(exc)) from None
        return NewPartnerKey(**vars(info), key=key)

    @api.delete("/{slug}/keys/{key_id}", response_model=PartnerKey, summary="Revoke a key at once (kept, marked)",
                responses=problems(404))
    def revoke_key(slug: str, key_id: RowId) -> PartnerKey:
        found(slug)
        info = partners.revoke_key(slug, str(key_id), clock())
        if info is None:
            raise HTTPException(404, f"partner {slug!r} has no key {key_id}")
        return PartnerKey(**vars(info))

    @api.get("/{slug}/usage", response_model=PartnerUsage, summary="Requests, 304s, bytes, articles, clicks per day",
             responses=problems(404))
    def usage(slug: str, days: Annotated[int, Query(ge=1, le=366)] = 30) -> PartnerUsage:
        found(slug)
        return PartnerUsage(partner=slug, timezone=settings.site.timezone.key,
                            days=[UsageDayOut(**vars(d)) for d in partners.usage(slug, now=clock(), days=days)])

    @api.get("/{slug}/pushes", response_model=list[PushOut], summary="Pushes to the partner's callback, newest first",
             responses=problems(404))
    def list_pushes(slug: str, status: Literal["pending", "delivered", "parked"] | None = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[PushOut]:
        found(slug)
        return [PushOut(**vars(p)) for p in pushes.pushes(slug, status, limit)]

    @api.post("/{slug}/pushes/{delivery_id}/retry", response_model=PushOut, summary="Queue a parked push again",
              responses=problems(404))
    def retry_push(slug: str, delivery_id: str) -> PushOut:
        found(slug)
        push = pushes.retry(slug, delivery_id, clock())
        if push is None:
            raise HTTPException(404, f"partner {slug!r} has no parked push {delivery_id!r}")
        return PushOut(**vars(push))

    return api
