"""`/admin/editions`: the digest editions: when each runs next (per time zone), the recent runs, one run's report
(deliveries by state, failures with their reasons, clicks per article), a preview as any subscriber, "send a test to
me", retrying the failed deliveries, pausing and resuming a run.

    GET  /admin/editions                     the schedule, the recent runs, the preview form
    GET  /admin/editions/preview             one reader's digest: the HTML framed, the text part, the test form
    GET  /admin/editions/preview/frame       the HTML alone, for the sandboxed iframe (no scripts, no same origin)
    POST /admin/editions/preview/test        the digest of that reader, to the logged-in user's own address
    GET  /admin/editions/{id}                one run's report
    POST /admin/editions/{id}/retry|pause|resume

Viewers read; editors act; every action is in the audit log. The framed preview is a mail's HTML (article titles
and summaries from the feeds): it is served with its own `Content-Security-Policy: sandbox` as well as the
console's, and framed with `sandbox=""`, so even opened on its own it runs nothing and cannot act as the console.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Callable, Protocol
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import HTMLResponse, Response

import templates as ui

from feeds.core.http import RowId
from feeds.model import StoredArticle

from ...deliveries import STATUSES, DeliveryStore, EditionStats
from ...errors import DeliveryError, EditionState, SubscriberError, UnknownEdition
from ...records import ALERTS, normalise_email
from ...retry import RetryReport
from ...settings import EditionSettings
from ...subscribers import SubscriberStore
from ...timing import next_runs, zone_of
from .kit import ConsoleKit, acting, posted

RECENT = 30  # runs listed on the overview
SHOWN_ROWS = 100  # failures (and waiting rows) listed on a report
FRAME_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'self'"
STATUS_WORDS = {"sending": "console_editions_status_sending", "paused": "console_editions_status_paused",
                "done": "console_editions_status_done"}
STATUS_BADGES = {"sending": "warn", "paused": "bad", "done": "good"}
STATE_WORDS = {"queued": "console_editions_state_queued", "sent": "console_editions_state_sent",
               "skipped": "console_editions_state_skipped", "failed": "console_editions_state_failed",
               "retry": "console_editions_state_retry", "held": "console_editions_state_held"}


class EditionRuns(Protocol):
    """What the page asks of the edition runs (the wiring's `Components` has it)."""

    def preview(self, edition_name: str, scheduled_at: datetime, email: str, *,
                stand_in_links: bool = False) -> dict[str, Any] | None: ...

    def send_test(self, edition_name: str, scheduled_at: datetime, as_reader: str, to: str) -> str | None: ...

    def retry(self, edition_name: str, edition_id: int, scheduled_at: datetime) -> RetryReport: ...

    def pause(self, edition_id: int) -> EditionStats: ...

    def resume_soon(self, edition_id: int) -> EditionStats: ...


class Articles(Protocol):
    def article(self, article_id: str) -> StoredArticle | None: ...

    def campaign_clicks(self, campaign: str) -> dict[str, int]: ...


@dataclass(frozen=True)
class ZoneRun:
    """An edition's next run for the readers of one time zone."""

    zone: str
    at: datetime  # the instant
    local: datetime  # on that zone's wall clock
    shown: datetime  # in the site's zone


@dataclass(frozen=True)
class Schedule:
    edition: EditionSettings
    label: str
    runs: tuple[ZoneRun, ...]  # soonest first

    @property
    def next(self) -> ZoneRun | None:
        return self.runs[0] if self.runs else None


@dataclass(frozen=True)
class ArticleClicks:
    article_id: str
    title: str | None
    url: str | None
    clicks: int


def schedules(editions: tuple[EditionSettings, ...], zone_names: list[str | None], site_zone: ZoneInfo,
              language: str, now: datetime) -> list[Schedule]:
    """Each edition's next run in the site's zone and every zone a reader chose, soonest first."""
    zones = list(dict.fromkeys([site_zone, *(zone_of(name, site_zone) for name in zone_names)]))
    out = []
    for edition in editions:
        runs = sorted((ZoneRun(zone.key, at, at.astimezone(zone), at.astimezone(site_zone))
                       for zone, at in next_runs(edition.schedule, zones, now)), key=lambda r: (r.at, r.zone))
        out.append(Schedule(edition, edition.label_in(language), tuple(runs)))
    return out


def clicks_by_article(articles: Articles, stats: EditionStats) -> list[ArticleClicks]:
    """The run's clicks through its tracked links, per article, most clicked first."""
    counted = articles.campaign_clicks(f"{stats.name}-{stats.id}")
    out = []
    for article_id, clicks in sorted(counted.items(), key=lambda item: (-item[1], item[0])):
        found = articles.article(article_id)
        out.append(ArticleClicks(article_id, found.title if found else None, found.url if found else None, clicks))
    return out


class EditionsPage:
    def __init__(self, kit: ConsoleKit, deliveries: DeliveryStore, subscribers: SubscriberStore, articles: Articles,
                 runs: EditionRuns) -> None:
        self.kit = kit
        self.settings = kit.settings
        self.deliveries = deliveries
        self.subscribers = subscribers
        self.articles = articles
        self.runs = runs

    def router(self) -> APIRouter:
        api = APIRouter(prefix="/admin/editions", include_in_schema=False)
        viewer, editor = [Depends(self.kit.viewer)], [Depends(self.kit.editor_form)]
        api.add_api_route("", self.overview, methods=["GET"], dependencies=viewer)
        api.add_api_route("/preview", self.preview, methods=["GET"], dependencies=viewer)
        api.add_api_route("/preview/frame", self.frame, methods=["GET"], dependencies=viewer)
        api.add_api_route("/preview/test", self.send_test, methods=["POST"], dependencies=editor)
        api.add_api_route("/{edition_id}", self.report, methods=["GET"], dependencies=viewer)
        api.add_api_route("/{edition_id}/retry", self.retry, methods=["POST"], dependencies=editor)
        api.add_api_route("/{edition_id}/pause", self.pause, methods=["POST"], dependencies=editor)
        api.add_api_route("/{edition_id}/resume", self.resume, methods=["POST"], dependencies=editor)
        return api

    # --- reading ---------------------------------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        lang = self.kit.language(request)
        site = self.settings.site
        recent = [e for e in self.deliveries.stats(limit=RECENT * 2) if e.name != ALERTS][:RECENT]  # alerts: theirs
        clicks = {e.id: sum(self.articles.campaign_clicks(f"{e.name}-{e.id}").values()) for e in recent}
        return self.kit.page(
            request, acting(request), "console/editions.html", **self._words(),
            schedules=schedules(self.settings.digests, self.subscribers.zones(), site.timezone, lang, self.kit.clock()),
            recent=recent, clicks=clicks, editions=self.settings.digests)

    def report(self, request: Request, edition_id: RowId) -> Response:
        stats = self._stats(edition_id)
        failed_total, failed = self.deliveries.rows(edition_id, statuses=("failed",), limit=SHOWN_ROWS)
        waiting_total, waiting = self.deliveries.rows(edition_id, statuses=("retry", "held"), has_error=True,
                                                      limit=SHOWN_ROWS)
        by_article = clicks_by_article(self.articles, stats)
        return self.kit.page(
            request, acting(request), "console/edition.html", **self._words(), edition=stats,
            configured=self.settings.edition(stats.name) is not None, states=STATUSES,
            total=sum(stats.counts.values()), failed=failed, failed_total=failed_total, waiting=waiting,
            waiting_total=waiting_total, by_article=by_article, clicks=sum(a.clicks for a in by_article))

    def preview(self, request: Request, edition: Annotated[str, Query(max_length=64)] = "",
                who: Annotated[str, Query(max_length=320)] = "") -> Response:
        actor = acting(request)
        chosen = self.settings.edition(edition) or (self.settings.digests[0] if self.settings.digests else None)
        context: dict[str, Any] = {**self._words(), "editions": self.settings.digests, "chosen": chosen, "who": who.strip(),
                                   "reader": None, "found": None, "error": None, "nothing": False}
        if chosen is None:
            return self.kit.page(request, actor, "console/edition_preview.html", **context)
        reader, error = self._reader(who.strip() or actor.email, request)
        context.update(reader=reader, error=error)
        if reader is not None:
            try:
                found = self.runs.preview(chosen.name, self.kit.clock(), reader, stand_in_links=True)
            except SubscriberError as exc:
                context["error"] = str(exc)
            else:
                context.update(found=found, nothing=found is None,
                               subscriber=self.subscribers.find(reader))
        return self.kit.page(request, actor, "console/edition_preview.html",
                             status=200 if context["error"] is None else 422, **context)

    def frame(self, request: Request, edition: Annotated[str, Query(max_length=64)],
              reader: Annotated[str, Query(max_length=320)]) -> Response:
        """The previewed mail's HTML alone, for the iframe: sandboxed by its own policy too."""
        chosen = self.settings.edition(edition)
        found = None
        if chosen is not None:
            try:
                found = self.runs.preview(chosen.name, self.kit.clock(), reader, stand_in_links=True)
            except SubscriberError:
                found = None
        headers = {"Content-Security-Policy": FRAME_POLICY, "Cache-Control": "no-store"}
        if found is None:
            return HTMLResponse("<!doctype html><title>-</title>", status_code=404, headers=headers)
        return HTMLResponse(str(found["html"]), headers=headers)

    # --- acting ----------------------------------------------------------------------------------------------------

    def send_test(self, request: Request) -> Response:
        actor, form = acting(request), posted(request)
        edition = self.settings.edition(str(form.get("edition") or ""))
        reader = str(form.get("reader") or "").strip()[:320]
        back = "/admin/editions/preview"
        if edition is None or not reader:
            return self.kit.redirect(back, flash="console_flash_test_nothing")
        back += "?" + urlencode({"edition": edition.name, "who": reader})
        try:
            subject = self.runs.send_test(edition.name, self.kit.clock(), reader, actor.email)
        except (DeliveryError, SubscriberError) as exc:
            self.kit.audit.record(actor, "edition.test", f"edition:{edition.name}",
                                  after={"reader": reader, "to": actor.email, "error": str(exc)[:500]})
            return self.kit.redirect(back, flash="console_flash_test_failed")
        if subject is None:
            return self.kit.redirect(back, flash="console_flash_test_nothing")
        self.kit.audit.record(actor, "edition.test", f"edition:{edition.name}",
                              after={"reader": reader, "to": actor.email, "subject": subject})
        return self.kit.redirect(back, flash="console_flash_test_sent")

    def retry(self, request: Request, edition_id: RowId) -> Response:
        actor = acting(request)
        stats = self._stats(edition_id)
        back = f"/admin/editions/{edition_id}"
        if self.settings.edition(stats.name) is None:
            return self.kit.redirect(back, flash="console_flash_edition_unconfigured")
        try:
            report = self.runs.retry(stats.name, edition_id, stats.scheduled_at)
        except EditionState:
            return self.kit.redirect(back, flash="console_flash_edition_paused")
        if report.is_busy:
            return self.kit.redirect(back, flash="console_flash_edition_busy")
        counts = {status: report.count(status) for status in ("sent", "failed", "held", "skipped", "queued")}
        self.kit.audit.record(actor, "edition.retry", f"edition:{edition_id}",
                              before={"failed": stats.counts.get("failed", 0)}, after=counts)
        if not report.outcomes:
            return self.kit.redirect(back, flash="console_flash_retry_nothing")
        return self.kit.redirect(back, flash="console_flash_retried" if not report.failed
                                 else "console_flash_retried_failed")

    def pause(self, request: Request, edition_id: RowId) -> Response:
        return self._change(request, edition_id, "edition.pause", self.runs.pause, "console_flash_edition_paused_now")

    def resume(self, request: Request, edition_id: RowId) -> Response:
        return self._change(request, edition_id, "edition.resume", self.runs.resume_soon,
                            "console_flash_edition_resumed")

    # --- parts -----------------------------------------------------------------------------------------------------

    def _change(self, request: Request, edition_id: int, action: str, change: Callable[[int], EditionStats],
                flash: str) -> Response:
        before = self._stats(edition_id)
        back = f"/admin/editions/{edition_id}"
        if self.settings.edition(before.name) is None:  # an alert's run, or an edition no longer configured
            return self.kit.redirect(back, flash="console_flash_edition_unconfigured")
        try:
            after = change(edition_id)
        except EditionState:
            return self.kit.redirect(back, flash="console_flash_edition_state")
        self.kit.audit.record(acting(request), action, f"edition:{edition_id}", before={"status": before.status},
                              after={"status": after.status, "name": after.name})
        return self.kit.redirect(back, flash=flash)

    def _stats(self, edition_id: int) -> EditionStats:
        found = self.deliveries.stats(edition_id)
        if not found:
            raise UnknownEdition(f"no edition run {edition_id}")
        return found[0]

    def _reader(self, who: str, request: Request) -> tuple[str | None, str | None]:
        """Whom to preview as: a subscriber's id (found by address or id), else a valid address of nobody (a new
        reader of every category); or an error to show."""
        t = ui.words(self.kit.language(request))
        found = self.subscribers.find(who)
        if found is not None:
            return str(found.id), None
        if who.isdigit():
            return None, t.text("console_editions_no_subscriber", who=who)
        try:
            return normalise_email(who), None
        except SubscriberError:
            return None, t.text("console_editions_no_subscriber", who=who)

    def _words(self) -> dict[str, Any]:
        site_zone = self.settings.site.timezone

        def when(moment: datetime | None, zone: str | None = None) -> str:
            """A time as the console shows it: in the site's zone, or `zone`'s; "-" for none."""
            if moment is None:
                return "-"
            return moment.astimezone(zone_of(zone, site_zone)).strftime("%Y-%m-%d %H:%M %Z")

        return {"status_words": STATUS_WORDS, "status_badges": STATUS_BADGES, "state_words": STATE_WORDS,
                "when": when, "category_names": {c.slug: c.name for c in self.settings.categories}}

