"""`GET /api/audit`: the audit log for scripts, admins only, newest first, with the console's filters.

The log is the shared layer's (`feeds.core.audit`), written by both sides' routes and the console; reading it needs
nothing of the audience side, so the route sits with the content side's admin API. It pages as every list of the
API does (`ListPage`, `Paged`): by id, newest first, `next_cursor` naming the last entry shown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from ..core.audit import AuditLog
from ..core.http import Access, ListPage, Paged, admin_router
from ..core.paging import decode_cursor, page_of


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_kind: str  # user | token | cli | system
    action: str
    target: str
    before: Any
    after: Any


class AuditApi:
    def __init__(self, access: Access, audit: AuditLog) -> None:
        self._access = access
        self._audit = audit

    def router(self) -> APIRouter:
        api = admin_router(self._access, "/api/audit", "audit")
        api.add_api_route("", self.entries, methods=["GET"], dependencies=[Depends(self._access.admin)],
                          response_model=ListPage[AuditEntryOut],
                          summary="Who changed what, newest first: filter by action prefix, actor, target; page on")
        return api

    def entries(self, page: Paged,
                action: Annotated[str | None, Query(max_length=64, description="a prefix: `partner.`")] = None,
                actor: Annotated[str | None, Query(max_length=320, description="part of the address")] = None,
                target: Annotated[str | None, Query(max_length=300, description="part of the target")] = None,
                ) -> ListPage[AuditEntryOut]:
        before = decode_cursor(page.cursor, "audit", (int,))
        rows = self._audit.entries(action=action, actor=actor, target=target, limit=page.limit + 1,
                                   before_id=None if before is None else int(before[0]))
        found = page_of(rows, page.limit, "audit", lambda e: (e.id,))
        return ListPage(items=[AuditEntryOut(**vars(e)) for e in found.items], next_cursor=found.next_cursor)
