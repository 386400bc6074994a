"""`/admin/audit`: who changed what, newest first, for admins: filtered by an action prefix (`partner.`), a part of
the actor's address, a part of the target; paged by entry id (`AuditLog.entries`' `before_id`). The values before
and after are shown as indented JSON, escaped like any text. Scripts read the same through `GET /api/audit`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from feeds.core.audit import AuditLog
from feeds.core.database import MAX_ID
from feeds.settings import Settings

from .kit import ConsoleKit, acting

PAGE = 50


def readable(value: Any) -> str | None:
    """A before or after value as people read JSON; None when there is none."""
    return None if value is None else json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


def action_choices(actions: list[str]) -> list[str]:
    """The filter's choices: each family (`partner.`) before its actions."""
    families = sorted({a.split(".", 1)[0] + "." for a in actions if "." in a})
    return sorted([*families, *actions])


class AuditPage:
    def __init__(self, kit: ConsoleKit, settings: Settings, audit: AuditLog) -> None:
        self.kit = kit
        self.settings = settings
        self.audit = audit

    def router(self) -> APIRouter:
        api = APIRouter(prefix="/admin/audit", include_in_schema=False)
        api.add_api_route("", self.show, methods=["GET"], dependencies=[Depends(self.kit.admin)])
        return api

    def show(self, request: Request, action: str = Query("", max_length=64), actor: str = Query("", max_length=320),
             target: str = Query("", max_length=300), before_id: int | None = Query(None, ge=1, le=MAX_ID)) -> Response:
        action, actor, target = action.strip(), actor.strip(), target.strip()
        found = self.audit.entries(action=action or None, actor=actor or None, target=target or None,
                                   before_id=before_id, limit=PAGE + 1)
        shown = found[:PAGE]
        filters = {k: v for k, v in (("action", action), ("actor", actor), ("target", target)) if v}
        older = f"/admin/audit?{urlencode({**filters, 'before_id': shown[-1].id})}" if len(found) > PAGE else None
        newest = f"/admin/audit?{urlencode(filters)}" if before_id is not None else None
        tz = self.settings.site.timezone
        entries = [{"entry": e, "at": e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
                    "before": readable(e.before), "after": readable(e.after)} for e in shown]
        return self.kit.page(request, acting(request), "console/audit.html", entries=entries, older=older,
                             newest=newest, action=action, actor_filter=actor, target=target,
                             choices=action_choices(self.audit.actions()))
