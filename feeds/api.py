"""The admin API of the content side (`/api/...`): bearer-token auth, source health, the most viewed, partners.

Routes are FastAPI's so that they appear in `/api/openapi.json`. Errors are JSON (`{"error": ...}`), mapped by
the app's exception handler; the token is compared in constant time.
"""

from __future__ import annotations

import hmac
from datetime import date, datetime
from typing import Annotated, Callable, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from .errors import ConfigError, StoreError
from .partners import Partner, PartnerStore
from .push import PushQueue
from .settings import Settings, build_partner
from .store import ArticleStore
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


class RankedArticle(BaseModel):
    rank: int
    id: str
    title: str
    url: str | None
    category: str | None
    byline: str | None
    published_at: datetime
    views: int


def admin_auth(settings: Settings) -> Callable[[Request], None]:
    def check(request: Request) -> None:
        if settings.admin_token is None:
            raise HTTPException(403, "the admin API is off: set [admin] token in the configuration")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.admin_token.encode()):
            raise HTTPException(401, "missing or wrong admin token (Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": 'Bearer realm="gazette-admin"'})
    return check


def router(settings: Settings, store: ArticleStore, clock: Callable[[], datetime]) -> APIRouter:
    api = APIRouter(prefix="/api", dependencies=[Depends(admin_auth(settings))], tags=["sources"])

    @api.get("/sources", response_model=list[SourceHealth], summary="Every source with its health")
    def sources() -> list[SourceHealth]:
        configured = {s.name for s in settings.sources}
        out = []
        for state in store.sources():
            if state.name not in configured:
                continue  # removed from the configuration; its articles stay
            if state.disabled_reason:
                status = "disabled"
            elif state.consecutive_failures >= settings.fetch.failure_limit:
                status = "unhealthy"
            elif state.consecutive_failures:
                status = "failing"
            elif state.last_success_at is None:
                status = "new"
            else:
                status = "ok"
            out.append(SourceHealth(status=status, **{k: getattr(state, k) for k in SourceHealth.model_fields
                                                      if k != "status"}))
        return out

    @api.get("/popular", response_model=list[RankedArticle], summary="Most viewed articles (많이 본 뉴스)",
             tags=["views"])
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
    api = APIRouter(prefix="/api/partners", dependencies=[Depends(admin_auth(settings))], tags=["partners"])

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

    @api.post("", response_model=CreatedPartner, status_code=201,
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

    @api.get("/{slug}", response_model=PartnerOut, summary="One partner")
    def get_partner(slug: str) -> PartnerOut:
        return out(found(slug))

    @api.post("/{slug}/keys", response_model=NewPartnerKey, status_code=201,
              summary="A new key for the partner (shown once): rotate by adding one, then revoking the old")
    def create_key(slug: str, body: KeyIn) -> NewPartnerKey:
        found(slug)
        try:
            info, key = partners.add_key(slug, clock(), label=body.label)
        except StoreError as exc:
            raise HTTPException(422, str(exc)) from None
        return NewPartnerKey(**vars(info), key=key)

    @api.delete("/{slug}/keys/{key_id}", response_model=PartnerKey, summary="Revoke a key at once (kept, marked)")
    def revoke_key(slug: str, key_id: int) -> PartnerKey:
        found(slug)
        info = partners.revoke_key(slug, str(key_id), clock())
        if info is None:
            raise HTTPException(404, f"partner {slug!r} has no key {key_id}")
        return PartnerKey(**vars(info))

    @api.get("/{slug}/usage", response_model=PartnerUsage, summary="Requests, 304s, bytes, articles, clicks per day")
    def usage(slug: str, days: Annotated[int, Query(ge=1, le=366)] = 30) -> PartnerUsage:
        found(slug)
        return PartnerUsage(partner=slug, timezone=settings.site.timezone.key,
                            days=[UsageDayOut(**vars(d)) for d in partners.usage(slug, now=clock(), days=days)])

    @api.get("/{slug}/pushes", response_model=list[PushOut], summary="Pushes to the partner's callback, newest first")
    def list_pushes(slug: str, status: Literal["pending", "delivered", "parked"] | None = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[PushOut]:
        found(slug)
        return [PushOut(**vars(p)) for p in pushes.pushes(slug, status, limit)]

    @api.post("/{slug}/pushes/{delivery_id}/retry", response_model=PushOut, summary="Queue a parked push again")
    def retry_push(slug: str, delivery_id: str) -> PushOut:
        found(slug)
        push = pushes.retry(slug, delivery_id, clock())
        if push is None:
            raise HTTPException(404, f"partner {slug!r} has no parked push {delivery_id!r}")
        return PushOut(**vars(push))

    return api
