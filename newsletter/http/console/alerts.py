"""`/admin/alerts`: breaking news. Pick a story (the newest, or found by its title) or write a subject and a short
text, choose sections or everyone who asked for alerts, preview it (the HTML in a sandboxed iframe and the text
part), confirm, and send it now; then its report. Past alerts are listed with their counts.

    GET  /admin/alerts              the past alerts and, for an editor, the form (`?q=` finds stories)
    POST /admin/alerts/preview      the preview and the confirmation step (editor)
    POST /admin/alerts/edit         back to the form with what was written (editor)
    POST /admin/alerts/send         sends it (the box ticked), records it in the audit log, shows its report (editor)
    GET  /admin/alerts/{id}         an alert's report: deliveries by state, failures with reasons, clicks
                                    (with [push], its pushes by state beside the mail)

The work is `newsletter.alerts.AlertDesk`'s, the same the API calls: the same engine as the editions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.responses import Response

import templates as ui

from ...alerts import MAX_SUBJECT, MAX_TEXT, AlertDesk, AlertDraft, audit_values
from ...errors import AlertRefused
from .kit import ConsoleKit, acting, posted

STATES = ("sent", "failed", "retry", "held", "queued", "skipped")
STATE_WORDS = {"queued": "console_alerts_state_queued", "sent": "console_alerts_state_sent",
               "failed": "console_alerts_state_failed", "retry": "console_alerts_state_retry",
               "held": "console_alerts_state_held", "skipped": "console_alerts_state_skipped"}
STATUS_WORDS = {"sending": "console_alerts_status_sending", "done": "console_alerts_status_done"}


def draft_of(form: FormData) -> AlertDraft:
    """The alert as the form wrote it."""
    return AlertDraft(subject=str(form.get("subject") or "")[:1000], text=str(form.get("text") or "")[:10_000],
                      link=str(form.get("link") or "").strip()[:2000] or None,
                      article_id=str(form.get("article_id") or "").strip()[:64] or None,
                      categories=tuple(str(c) for c in form.getlist("categories"))[:100],
                      has_ads=bool(form.get("ads")))


def values_of(draft: AlertDraft) -> dict[str, Any]:
    """What the form shows again (or carries hidden to the next step)."""
    return {"subject": draft.subject, "text": draft.text, "link": draft.link or "", "article_id": draft.article_id or "",
            "categories": list(draft.categories), "ads": draft.has_ads}


class AlertsPage:
    def __init__(self, kit: ConsoleKit, desk: AlertDesk, push_count: Callable[[], int] | None = None) -> None:
        self.kit = kit
        self.desk = desk
        self.push_count = push_count  # [push]: browsers subscribed to Web Push (None: push is off)

    def router(self) -> APIRouter:
        api = APIRouter(prefix="/admin/alerts", include_in_schema=False)
        api.add_api_route("", self.show, methods=["GET"], dependencies=[Depends(self.kit.viewer)])
        api.add_api_route("/preview", self.preview, methods=["POST"], dependencies=[Depends(self.kit.editor_form)])
        api.add_api_route("/edit", self.edit, methods=["POST"], dependencies=[Depends(self.kit.editor_form)])
        api.add_api_route("/send", self.send, methods=["POST"], dependencies=[Depends(self.kit.editor_form)])
        api.add_api_route("/{alert_id:int}", self.report, methods=["GET"], dependencies=[Depends(self.kit.viewer)])
        return api

    def show(self, request: Request) -> Response:
        return self.compose(request, AlertDraft(), search=request.query_params.get("q", "")[:200])

    def compose(self, request: Request, draft: AlertDraft, *, search: str = "", error: str | None = None,
                status: int = 200) -> Response:
        actor = acting(request)
        stories = self.desk.recent_articles(limit=12, search=search) if actor.can("editor") else []
        if draft.article_id and all(a.id != draft.article_id for a in stories):
            chosen = self.desk.articles.article(draft.article_id)
            stories = [chosen, *stories] if chosen is not None else stories
        return self.kit.page(request, actor, "console/alerts.html", status=status, search=search, stories=stories,
                             values=values_of(draft), error=error, alerts=self.desk.recent(limit=50),
                             categories=self._categories(), state_words=STATE_WORDS, status_words=STATUS_WORDS,
                             max_subject=MAX_SUBJECT, max_text=MAX_TEXT,
                             push_subscribers=self.push_count() if self.push_count is not None else None)

    def edit(self, request: Request) -> Response:
        return self.compose(request, draft_of(posted(request)))

    def preview(self, request: Request, error: str | None = None, status: int = 200) -> Response:
        draft = draft_of(posted(request))
        try:
            content = self.desk.resolve(draft)
            shown = self.desk.preview(draft)
        except AlertRefused as exc:
            return self.compose(request, draft, error=str(exc), status=422)
        labels = dict(self._categories())
        return self.kit.page(request, acting(request), "console/alerts_preview.html", status=status, error=error,
                             values=values_of(draft), content=content, preview=shown,
                             chosen_sections=[labels.get(c, c) for c in content.categories])

    def send(self, request: Request) -> Response:
        form = posted(request)
        if form.get("confirm") != "1":
            t = ui.words(self.kit.language(request))
            return self.preview(request, error=t["console_alerts_confirm_missing"], status=422)
        actor = acting(request)
        try:
            alert = self.desk.create(draft_of(form), created_by=actor.email)
        except AlertRefused as exc:
            return self.compose(request, draft_of(form), error=str(exc), status=422)
        self.kit.audit.record(actor, "alert.send", f"alert:{alert.id}", after=audit_values(alert))
        response = self.kit.redirect(f"/admin/alerts/{alert.id}", flash="console_flash_alert_sent")
        response.background = BackgroundTask(self.desk.send, alert.id)  # after the answer: the report shows it go
        return response

    def report(self, request: Request, alert_id: int) -> Response:
        found = self.desk.report(alert_id)  # UnknownAlert: the 404 page
        labels = dict(self._categories())
        story = self.desk.articles.article(found.alert.content.article_id) if found.alert.content.article_id else None
        return self.kit.page(request, acting(request), "console/alerts_report.html", report=found, story=story,
                             chosen_sections=[labels.get(c, c) for c in found.alert.content.categories], states=STATES,
                             state_words=STATE_WORDS, status_words=STATUS_WORDS, tz=self.kit.settings.site.timezone,
                             has_push=self.push_count is not None)

    def _categories(self) -> list[tuple[str, str]]:
        return [(c.slug, c.name) for c in self.kit.settings.categories]
