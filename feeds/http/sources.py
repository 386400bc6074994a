"""The admin API's writes to sources (`/api/sources`): add, edit, pause, resume and delete the sources stored in the
database, and test a definition (fetch and read it now, store nothing). Listing is `feeds.http.api`'s
`GET /api/sources`.

Thin: each handler asks the `SourceBook` one thing and maps its answer; its errors carry their status (422 naming
the key of a bad definition, 409 for a source of the configuration file or a name taken, 404 for an unknown name,
502 when a test cannot fetch) and reach the kit's one mapping as problem+json. Names are path parameters of any
text (`{name:path}`: a source's name may hold a slash); a running `serve` picks every change up within
`[scheduler] reload`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from ..core.audit import AuditLog
from ..core.http import Access, acting, admin_router, problems
from ..ingest import Preview
from ..source_book import ListedSource, SourceBook

class SourceDefinition(BaseModel):
    """A source as a `[[sources]]` table of the configuration file holds it (the same keys, the same rule); a
    source added here reads a URL, and `allow_private_network` only where the file allows it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str  # feed | html | jsonl
    url: str | None = None
    path: str | None = None  # refused here: a local file is only for the file's sources
    interval: str | None = None  # "10m" when left out
    category: str | None = None
    category_map: dict[str, Any] | None = None
    allow_private_network: bool | None = None
    allow_hosts: list[Any] | None = None
    wall_clock_zone: str | None = None


class SourceTest(SourceDefinition):
    """A definition to test: its name may be left out (a source not added yet)."""

    name: str = "test"  # type: ignore[assignment]


class SourceChanges(BaseModel):
    """The keys to change; a key set to null goes back to its default. The name cannot change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    kind: str | None = None
    url: str | None = None
    interval: str | None = None
    category: str | None = None
    category_map: dict[str, Any] | None = None
    allow_private_network: bool | None = None
    allow_hosts: list[Any] | None = None
    wall_clock_zone: str | None = None


class SourceOut(BaseModel):
    name: str
    origin: str  # config (read-only) | console
    editable: bool
    paused: bool
    definition: dict[str, Any]
    problem: str | None  # a stored definition that no longer passes the rule (its category left the file)
    created_at: datetime | None
    created_by: str | None
    updated_at: datetime | None
    updated_by: str | None


class PreviewItem(BaseModel):
    """An article exactly as Gazette would store it: sanitised HTML, plain-text summary, canonical URL, its id."""

    id: str
    guid: str | None
    url: str | None
    title: str
    summary: str
    content_html: str
    byline: str | None
    category: str | None
    categories: list[str]
    tags: list[str]
    image_url: str | None
    published_at: datetime
    updated_at: datetime


class PreviewOut(BaseModel):
    source: str
    url: str  # where the bytes came from, after redirects
    total: int  # articles read
    notes: list[str]
    items: list[PreviewItem]  # the first ten; nothing was stored


def source_out(entry: ListedSource) -> SourceOut:
    return SourceOut(name=entry.name, origin=entry.origin, editable=entry.is_editable, paused=entry.is_paused,
                     definition=dict(entry.definition), problem=entry.problem, created_at=entry.created_at,
                     created_by=entry.created_by, updated_at=entry.updated_at, updated_by=entry.updated_by)


def preview_out(preview: Preview) -> PreviewOut:
    items = [PreviewItem(id=a.id, guid=a.guid, url=a.url, title=a.title, summary=a.summary, content_html=a.content_html,
                         byline=a.byline, category=a.category, categories=list(a.all_categories), tags=list(a.tags),
                         image_url=a.image_url, published_at=a.published_at, updated_at=a.updated_at)
             for a in preview.articles]
    return PreviewOut(source=preview.source, url=preview.url, total=preview.total, notes=list(preview.notes),
                      items=items)


class SourcesWriteApi:
    """`POST /api/sources`, `PATCH|DELETE /api/sources/{name}`, `POST /api/sources/{name}/pause|resume|test`,
    `POST /api/sources/test`. Every route changes or fetches, so each needs an editor (the admin token is an admin);
    each change is in the audit log with the source before and after."""

    def __init__(self, access: Access, book: SourceBook, audit: AuditLog) -> None:
        self._access = access
        self._book = book
        self._audit = audit

    def router(self) -> APIRouter:
        api = admin_router(self._access, "/api/sources", "sources")
        api.add_api_route("", self.create, methods=["POST"], response_model=SourceOut, status_code=201,
                          responses=problems(409), summary="Add a source (stored in the database; polled within "
                                                          "[scheduler] reload)")
        api.add_api_route("/test", self.test, methods=["POST"], response_model=PreviewOut, responses=problems(502),
                          summary="Fetch and read a definition now: its first items as they would be stored; "
                                  "nothing is stored")
        api.add_api_route("/{name:path}/pause", self.pause, methods=["POST"], response_model=SourceOut,
                          responses=problems(404, 409), summary="Stop polling a source (kept, with its articles)")
        api.add_api_route("/{name:path}/resume", self.resume, methods=["POST"], response_model=SourceOut,
                          responses=problems(404, 409), summary="Poll a paused source again")
        api.add_api_route("/{name:path}/test", self.test_source, methods=["POST"], response_model=PreviewOut,
                          responses=problems(404, 502), summary="Fetch and read a source now; nothing is stored")
        api.add_api_route("/{name:path}", self.edit, methods=["PATCH"], response_model=SourceOut,
                          responses=problems(404, 409), summary="Change a source added here (not one of the file)")
        api.add_api_route("/{name:path}", self.delete, methods=["DELETE"], status_code=204,
                          response_class=Response, responses=problems(404, 409),
                          summary="Delete a source added here: polled no more; its articles stay")
        return api

    def create(self, request: Request, body: SourceDefinition) -> SourceOut:
        actor = acting(request)
        entry = self._book.add(body.model_dump(exclude_none=True), actor.email)
        self._audit.record(actor, "source.create", f"source:{entry.name}", after=entry.record())
        return source_out(entry)

    def edit(self, request: Request, name: str, body: SourceChanges) -> SourceOut:
        actor = acting(request)
        before, after = self._book.edit(name, body.model_dump(exclude_unset=True), actor.email)
        self._audit.record(actor, "source.update", f"source:{name}", before=before.record(), after=after.record())
        return source_out(after)

    def pause(self, request: Request, name: str) -> SourceOut:
        actor = acting(request)
        before, after = self._book.pause(name, actor.email)
        self._audit.record(actor, "source.pause", f"source:{name}", before=before.record(), after=after.record())
        return source_out(after)

    def resume(self, request: Request, name: str) -> SourceOut:
        actor = acting(request)
        before, after = self._book.resume(name, actor.email)
        self._audit.record(actor, "source.resume", f"source:{name}", before=before.record(), after=after.record())
        return source_out(after)

    def delete(self, request: Request, name: str) -> Response:
        actor = acting(request)
        before = self._book.delete(name, actor.email)
        self._audit.record(actor, "source.delete", f"source:{name}", before=before.record())
        return Response(status_code=204)

    def test(self, body: SourceTest) -> PreviewOut:
        return preview_out(self._book.test(body.model_dump(exclude_none=True)))

    def test_source(self, name: str) -> PreviewOut:
        return preview_out(self._book.test_source(name))
