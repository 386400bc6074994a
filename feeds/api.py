"""The admin API of the content side (`/api/...`): bearer-token auth, source health, the most viewed.

Routes are FastAPI's so that they appear in `/api/openapi.json`. Errors are JSON (`{"error": ...}`), mapped by
the app's exception handler; the token is compared in constant time.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated, Callable, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from .settings import Settings
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
