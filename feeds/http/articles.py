"""`/api/articles/{id}`: an article's life after publication, for editors' scripts.

    GET    /api/articles/{id}               its status, corrections, urgency, history and the partners that have it
    POST   /api/articles/{id}/corrections   a public correction (note); 201
    POST   /api/articles/{id}/kill          withdraw it for good (reason)
    POST   /api/articles/{id}/hold          keep it out of everything (reason)
    POST   /api/articles/{id}/release       back to live
    PUT    /api/articles/{id}/urgent        {"urgent": true|false}

Reading needs a viewer, changing an editor; every change is in the audit log with the article before and after.
The rules are `feeds.article_life.ArticleLife`'s; this module only maps them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from ..article_life import MAX_NOTE, MAX_REASON, ArticleLife
from ..core.audit import AuditLog
from ..core.http import Access, acting, admin_router, problems
from ..errors import UnknownName
from ..events import ARTICLE_EVENTS, EventLog
from ..model import StoredArticle
from ..push import PushQueue
from ..store import ArticleStore

ArticleId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=MAX_NOTE, description="Shown to readers under the story")


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=MAX_REASON)


class UrgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    urgent: bool


class CorrectionOut(BaseModel):
    note: str
    corrected_at: datetime
    revision: int


class Recipient(BaseModel):
    partner: str
    delivered_at: datetime | None = Field(description="When its push was delivered; null: it took it in a feed")


class HistoryEntry(BaseModel):
    event: str
    at: datetime
    revision: int | None = None


class ArticleLifeOut(BaseModel):
    id: str
    title: str
    url: str | None
    status: str = Field(description="live | held | killed")
    status_reason: str | None
    status_at: datetime | None
    urgent: bool
    revision: int
    updated_at: datetime
    corrections: list[CorrectionOut]
    partners: list[Recipient] = Field(description="Partners that have the story: follow up with them after a kill")
    history: list[HistoryEntry]


class ArticlesApi:
    def __init__(self, access: Access, store: ArticleStore, pushes: PushQueue, audit: AuditLog,
                 clock: Callable[[], datetime]) -> None:
        self._access, self._store, self._pushes, self._audit, self._clock = access, store, pushes, audit, clock
        self._life = ArticleLife(store.engine)
        self._log = EventLog(store.engine)

    def router(self) -> APIRouter:
        api = admin_router(self._access, "/api/articles", "articles")
        api.add_api_route("/{article_id}", self.show, methods=["GET"], response_model=ArticleLifeOut,
                          responses=problems(404),
                          summary="An article's status, corrections and the partners that have it")
        api.add_api_route("/{article_id}/corrections", self.correct, methods=["POST"], status_code=201,
                          response_model=ArticleLifeOut, responses=problems(404, 409),
                          summary="Publish a correction: a new revision, the note under the story in every feed")
        api.add_api_route("/{article_id}/kill", self.kill, methods=["POST"], response_model=ArticleLifeOut,
                          responses=problems(404, 409), summary="Withdraw the story from every feed, digest and "
                                                                "partner; partners that have it are told")
        api.add_api_route("/{article_id}/hold", self.hold, methods=["POST"], response_model=ArticleLifeOut,
                          responses=problems(404, 409), summary="Keep a live story out of everything until released")
        api.add_api_route("/{article_id}/release", self.release, methods=["POST"], response_model=ArticleLifeOut,
                          responses=problems(404, 409), summary="Put a held story back")
        api.add_api_route("/{article_id}/urgent", self.urgent, methods=["PUT"], response_model=ArticleLifeOut,
                          responses=problems(404), summary="Mark a story urgent (ninjs urgency 1) or not")
        return api

    def show(self, article_id: ArticleId) -> ArticleLifeOut:
        article = self._store.article(article_id)
        if article is None:
            raise UnknownName(f"no article {article_id!r}")
        return self._out(article)

    def correct(self, request: Request, article_id: ArticleId, body: CorrectionIn) -> ArticleLifeOut:
        actor = acting(request)
        before = self.show(article_id)
        after = self._life.correct(article_id, body.note, by=actor.email, now=self._clock())
        return self._done(request, "article.correct", before, after)

    def kill(self, request: Request, article_id: ArticleId, body: ReasonIn) -> ArticleLifeOut:
        before = self.show(article_id)
        return self._done(request, "article.kill", before, self._life.kill(article_id, body.reason, now=self._clock()))

    def hold(self, request: Request, article_id: ArticleId, body: ReasonIn) -> ArticleLifeOut:
        before = self.show(article_id)
        return self._done(request, "article.hold", before, self._life.hold(article_id, body.reason, now=self._clock()))

    def release(self, request: Request, article_id: ArticleId) -> ArticleLifeOut:
        before = self.show(article_id)
        return self._done(request, "article.release", before, self._life.release(article_id, now=self._clock()))

    def urgent(self, request: Request, article_id: ArticleId, body: UrgentIn) -> ArticleLifeOut:
        before = self.show(article_id)
        after = self._life.mark_urgent(article_id, body.urgent, now=self._clock())
        return self._done(request, "article.urgent", before, after)

    def _done(self, request: Request, action: str, before: ArticleLifeOut, after: StoredArticle) -> ArticleLifeOut:
        out = self._out(after)
        keep = {"status", "status_reason", "urgent", "revision", "corrections"}
        self._audit.record(acting(request), action, f"article:{after.id}",
                           before=before.model_dump(mode="json", include=keep),
                           after=out.model_dump(mode="json", include=keep))
        return out

    def _out(self, a: StoredArticle) -> ArticleLifeOut:
        return ArticleLifeOut(
            id=a.id, title=a.title, url=a.url, status=a.status, status_reason=a.status_reason, status_at=a.status_at,
            urgent=a.is_urgent, revision=a.revision, updated_at=a.updated_at,
            corrections=[CorrectionOut(note=c.note, corrected_at=c.corrected_at, revision=c.revision)
                         for c in a.corrections],
            partners=[Recipient(partner=slug, delivered_at=at) for slug, at in self._pushes.received(a.id)],
            history=[HistoryEntry(event=e.type, at=e.occurred_at, revision=e.data.get("revision"))
                     for e in self._log.of(a.id, ARTICLE_EVENTS)])
