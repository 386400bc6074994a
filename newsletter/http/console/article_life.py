"""`/admin/articles/{id}/…`: an editor corrects, kills, holds, releases or marks urgent a story from its page.

Marking a story urgent can also send it as a breaking alert (mail to the readers who asked for alerts, Web Push to the
browsers that follow its sections) when the editor ticks "send a breaking alert too": the alert is the story's, made
and sent as from `/admin/alerts`, and its report is where the editor lands.

Each form posts here with the session's CSRF token (`kit.editor_form`); the rules are `feeds.article_life`'s. A
change is in the audit log with the story's status before and after; a refusal (an empty note, a story killed
already) shows the article's page again with the reason, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, Request
from starlette.background import BackgroundTask
from starlette.responses import Response

from feeds.article_life import ArticleLife, life_record
from feeds.errors import StoreError
from feeds.model import StoredArticle

from ...alerts import AlertDesk, AlertDraft, audit_values
from ...errors import AlertRefused
from .articles import MAX_ARTICLE_ID, ArticlesPage
from .kit import ConsoleKit, acting, posted


class ArticleActions:
    def __init__(self, kit: ConsoleKit, life: ArticleLife, page: ArticlesPage, alerts: AlertDesk) -> None:
        self.kit, self.life, self.page, self.alerts = kit, life, page, alerts

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
        form = posted(request)
        urgent = form.get("urgent") == "1"
        answer = self._change(request, article_id, "article.urgent", "console_flash_article_urgent",
                              lambda now: self.life.mark_urgent(article_id, urgent, now=now))
        if not (urgent and form.get("alert") == "1" and answer.status_code == 303):
            return answer
        story = self.page.store.article(article_id)
        assert story is not None
        try:  # the story's own alert, to the readers of its sections who asked for alerts
            alert = self.alerts.create(AlertDraft(article_id=article_id, categories=story.categories),
                                       created_by=acting(request).email)
        except AlertRefused as refused:
            return self.page.show(request, article_id, problem=str(refused), status=422)
        self.kit.audit.record(acting(request), "alert.send", f"alert:{alert.id}", after=audit_values(alert))
        response = self.kit.redirect(f"/admin/alerts/{alert.id}", flash="console_flash_alert_sent")
        response.background = BackgroundTask(self.alerts.send, alert.id)  # after the answer, as /admin/alerts does
        return response

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
