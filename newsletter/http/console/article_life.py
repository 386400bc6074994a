"""`/admin/articles/{id}/…`: an editor corrects, kills, holds, releases or marks urgent a story from its page.

Each form posts here with the session's CSRF token (`kit.editor_form`); the rules are `feeds.article_life`'s. A
change is in the audit log with the story's status before and after; a refusal (an empty note, a story killed
already) shows the article's page again with the reason, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from feeds.article_life import ArticleLife
from feeds.errors import StoreError
from feeds.model import StoredArticle

from .articles import MAX_ARTICLE_ID, ArticlesPage
from .kit import ConsoleKit, acting, posted


def life_record(article: StoredArticle) -> dict[str, object]:
    """What the audit log keeps of a story's life: its status and reason, urgency, revision and corrections."""
    return {"status": article.status, "status_reason": article.status_reason, "urgent": article.is_urgent,
            "revision": article.revision, "corrections": [c.note for c in article.corrections]}


class ArticleActions:
    def __init__(self, kit: ConsoleKit, life: ArticleLife, page: ArticlesPage) -> None:
        self.kit, self.life, self.page = kit, life, page

    def router(self) -> APIRouter:
        api = APIRouter(prefix="/admin/articles/{article_id}", include_in_schema=False)
        for name in ("correct", "kill", "hold", "release", "urgent"):
            api.add_api_route(f"/{name}", getattr(self, name), methods=["POST"],
                              dependencies=[Depends(self.kit.editor_form)])
        return api

    def correct(self, request: Request, article_id: str) -> Response:
        note = str(posted(request).get("note") or "")
        return self._change(request, article_id, "article.correct", "console_flash_article_corrected",
                            lambda now: self.life.correct(article_id, note, by=acting(request).email, now=now))

    def kill(self, request: Request, article_id: str) -> Response:
        reason = str(posted(request).get("reason") or "")
        return self._change(request, article_id, "article.kill", "console_flash_article_killed",
                            lambda now: self.life.kill(article_id, reason, now=now))

    def hold(self, request: Request, article_id: str) -> Response:
        reason = str(posted(request).get("reason") or "")
        return self._change(request, article_id, "article.hold", "console_flash_article_held",
                            lambda now: self.life.hold(article_id, reason, now=now))

    def release(self, request: Request, article_id: str) -> Response:
        return self._change(request, article_id, "article.release", "console_flash_article_released",
                            lambda now: self.life.release(article_id, now=now))

    def urgent(self, request: Request, article_id: str) -> Response:
        urgent = posted(request).get("urgent") == "1"
        return self._change(request, article_id, "article.urgent", "console_flash_article_urgent",
                            lambda now: self.life.mark_urgent(article_id, urgent, now=now))

    def _change(self, request: Request, article_id: str, action: str, flash: str,
                change: Callable[..., StoredArticle]) -> Response:
        before = self.page.store.article(article_id) if 0 < len(article_id) <= MAX_ARTICLE_ID else None
        if before is None:
            return self.page.show(request, article_id)  # the missing page, 404
        try:
            after = change(self.kit.clock())
        except StoreError as refused:
            return self.page.show(request, article_id, problem=str(refused), status=refused.status)
        self.kit.audit.record(acting(request), action, f"article:{article_id}", before=life_record(before),
                              after=life_record(after))
        return self.kit.redirect(f"/admin/articles/{article_id}", flash=flash)
