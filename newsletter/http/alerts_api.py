"""The breaking-news alerts API: `/api/alerts` (admin).

    POST /api/alerts/preview   what a reader would get (HTML and text), and how many readers it would reach
    POST /api/alerts           record the alert and send it now (202 with its id; the send runs after the answer)
    GET  /api/alerts           recent alerts with their counts, newest first (a page: `ListPage`, `Paged`)
    GET  /api/alerts/{id}      one alert's report: deliveries by state, failures with reasons, clicks, pushes

Thin: each endpoint reads the body, calls `newsletter.alerts.AlertDesk`, maps the result. A viewer reads, an editor
previews and sends (`Access`); every send is written to the audit log ("alert.send", "alert:<id>"). An alert's id is its
edition's id, so `/api/editions/{id}` and `/api/editions/{id}/deliveries` show it too. Refusals (`AlertRefused`,
422) and unknown ids (`UnknownAlert`, 404) become problem documents through the one error mapping.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, BackgroundTasks, Request
from pydantic import BaseModel, Field

from feeds.core.audit import AuditLog
from feeds.core.http import Access, ListPage, Paged, RowId, acting, admin_router, problems
from feeds.core.paging import decode_cursor, page_of

from ..alerts import AlertDesk, AlertDraft, AlertReport, audit_values
from ..settings import Settings

class AlertIn(BaseModel):
    subject: str = Field(default="", max_length=1000, description="one line; an article's title when empty")
    text: str = Field(default="", max_length=10_000, description="a short text (at most 2,000 characters); the "
                                                                 "article's summary when empty")
    link: str | None = Field(default=None, max_length=2000, description="an http(s) address; the article's when empty")
    article_id: str | None = Field(default=None, max_length=64, description="the story: its link is tracked")
    categories: list[str] = Field(default_factory=list, max_length=100,
                                  description="section slugs: only readers of these; empty: everyone who asked")
    ads: bool = Field(default=False, description="carries advertising: (광고), only readers who consented, held "
                                                 "21:00-08:00 on the reader's clock")

    def draft(self) -> AlertDraft:
        return AlertDraft(subject=self.subject, text=self.text, link=self.link, article_id=self.article_id or None,
                          categories=tuple(self.categories), has_ads=self.ads)


class PreviewIn(AlertIn):
    to: str | None = Field(default=None, max_length=320,
                           description="preview as this subscriber (their language and links); a sample reader if "
                                       "empty or not a subscriber")


class PreviewOut(BaseModel):
    subject: str
    html: str
    text: str
    recipients: int = Field(description="readers the alert would reach now")


class AlertOut(BaseModel):
    id: int = Field(description="the alert's edition id (also under /api/editions)")
    subject: str
    text: str
    link: str | None
    article_id: str | None
    categories: list[str]
    ads: bool
    created_at: datetime
    created_by: str | None
    status: str = Field(description="sending | done")
    finished_at: datetime | None
    counts: dict[str, int] = Field(description="deliveries by state: queued, sent, failed, retry, held, skipped")
    clicks: int
    push: dict[str, int] = Field(default_factory=dict, description="[push]: pushes to browsers by state: queued, "
                                 "sent, removed (the browser left: 404/410), failed, retry, held (the night rule), "
                                 "skipped; empty without [push]")


class FailureOut(BaseModel):
    subscriber_id: int
    email: str | None
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None


class AlertReportOut(AlertOut):
    failures: list[FailureOut] = Field(description="failed, retrying and held deliveries with their reasons")
    failure_total: int
    clicks_by_article: dict[str, int]


class AlertPage(ListPage[AlertOut]):
    total: int = Field(description="alerts sent so far, all pages together")


class Sending(BaseModel):
    id: int
    status: str
    report: str = Field(description="where the alert's report is")


def _out(report: AlertReport) -> dict[str, object]:
    a, c = report.alert, report.alert.content
    return dict(id=a.id, subject=c.subject, text=c.text, link=c.link, article_id=c.article_id,
                categories=list(c.categories), ads=c.has_ads, created_at=a.created_at, created_by=a.created_by,
                status=a.status, finished_at=a.finished_at, counts=report.counts, clicks=report.clicks,
                push=report.push_counts)


class AlertsApi:
    """`/api/alerts` over an `AlertDesk`."""

    def __init__(self, settings: Settings, desk: AlertDesk, access: Access, audit: AuditLog) -> None:
        self.settings = settings
        self.desk = desk
        self.access = access
        self.audit = audit

    def router(self) -> APIRouter:
        api = admin_router(self.access, "/api/alerts", "alerts")
        api.add_api_route("/preview", self.preview, methods=["POST"], response_model=PreviewOut,
                          summary="Preview a breaking-news alert as a reader would get it", responses=problems(422))
        api.add_api_route("", self.send, methods=["POST"], response_model=Sending, status_code=202,
                          summary="Send a breaking-news alert now", responses=problems(422))
        api.add_api_route("", self.list_alerts, methods=["GET"], response_model=AlertPage,
                          summary="Recent breaking-news alerts with their counts, newest first")
        api.add_api_route("/{alert_id}", self.report, methods=["GET"], response_model=AlertReportOut,
                          summary="One alert's report: deliveries by state, failures, clicks", responses=problems(404))
        return api

    def preview(self, body: PreviewIn) -> PreviewOut:
        found = self.desk.preview(body.draft(), body.to or None)
        return PreviewOut(subject=found.subject, html=found.html, text=found.text, recipients=found.recipients)

    def send(self, request: Request, body: AlertIn, background: BackgroundTasks) -> Sending:
        actor = acting(request)
        alert = self.desk.create(body.draft(), created_by=actor.email)
        self.audit.record(actor, "alert.send", f"alert:{alert.id}", after=audit_values(alert))
        background.add_task(self.desk.send, alert.id)  # after the answer: a large audience takes a while
        return Sending(id=alert.id, status=alert.status, report=f"/api/alerts/{alert.id}")

    def list_alerts(self, page: Paged) -> AlertPage:
        before = decode_cursor(page.cursor, "alerts", (datetime, int))
        after = None if before is None else (before[0], before[1])
        rows = self.desk.recent(page.limit + 1, before=after)  # type: ignore[arg-type]
        found = page_of(rows, page.limit, "alerts", lambda r: (r.alert.created_at, r.alert.id))
        return AlertPage(total=self.desk.store.count(), next_cursor=found.next_cursor,
                         items=[AlertOut(**_out(r)) for r in found.items])  # type: ignore[arg-type]

    def report(self, alert_id: RowId) -> AlertReportOut:
        found = self.desk.report(alert_id)
        return AlertReportOut(**_out(found), failure_total=found.failure_total,  # type: ignore[arg-type]
                              clicks_by_article=found.clicks_by_article,
                              failures=[FailureOut(subscriber_id=r.subscriber_id, email=r.email, status=r.status,
                                                   attempts=r.attempts, last_error=r.last_error,
                                                   next_attempt_at=r.next_attempt_at) for r in found.failures])
