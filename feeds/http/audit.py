"""`GET /api/audit`: the audit log for scripts, admins only, newest first, with the console's filters.

The log is the shared layer's (`feeds.core.audit`), written by both sides' routes and the console; reading it needs
nothing of the audience side, so the route sits with the content side's admin API. Paging is by id: each page
gives `next`, the URL of the following (older) page, or null at the end.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from ..core.audit import AuditLog
from ..core.database import MAX_ID
from ..core.http import Access, admin_router

MAX_PAGE = 500


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_kind: str  # user | token | cli | system
    action: str
    target: str
    before: Any
    after: Any


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next: str | None  # the older entries' page, with the same filters


class AuditApi:
    def __init__(self, access: Access, audit: AuditLog) -> None:
        self._access = access
        self._audit = audit

    def router(self) -> APIRouter:
        api = admin_router(self._access, "/api/audit", "audit")
        api.add_api_route("", self.entries, methods=["GET"], dependencies=[Depends(self._access.admin)],
                          response_model=AuditPage,
                          summary="Who changed what, newest first: filter by action prefix, actor, target; page on")
        return api

    def entries(self, action: Annotated[str | None, Query(max_length=64, description="a prefix: `partner.`")] = None,
                actor: Annotated[str | None, Query(max_length=320, description="part of the address")] = None,
                target: Annotated[str | None, Query(max_length=300, description="part of the target")] = None,
                before_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="older than this entry")] = None,
                limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50) -> AuditPage:
        found = self._audit.entries(action=action, actor=actor, target=target, before_id=before_id, limit=limit + 1)
        shown = found[:limit]
        following = None
        if len(found) > limit:
            query = {k: v for k, v in (("action", action), ("actor", actor), ("target", target)) if v}
            following = "/api/audit?" + urlencode({**query, "before_id": shown[-1].id, "limit": limit})
        return AuditPage(entries=[AuditEntryOut(**vars(e)) for e in shown], next=following)
