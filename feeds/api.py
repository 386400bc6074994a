"""The admin API of the content side (`/api/...`): bearer-token auth and source health.

Routes are FastAPI's so that they appear in `/api/openapi.json`. Errors are JSON (`{"error": ...}`), mapped by
the app's exception handler; the token is compared in constant time.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Callable

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from .settings import Settings
from .store import ArticleStore


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


def admin_auth(settings: Settings) -> Callable[[Request], None]:
    def check(request: Request) -> None:
        if settings.admin_token is None:
            raise HTTPException(403, "the admin API is off: set [admin] token in the configuration")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.admin_token.encode()):
            raise HTTPException(401, "missing or wrong admin token (Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": 'Bearer realm="gazette-admin"'})
    return check


def router(settings: Settings, store: ArticleStore) -> APIRouter:
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

    return api
