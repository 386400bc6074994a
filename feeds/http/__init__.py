"""The content side's HTTP: thin handlers over the domain, each parsing the request, asking one domain object and
mapping its answer; errors go to the kit's one mapping (`feeds.core.http.install_error_handlers`).

    public     `/`, `/feeds/…` (and archives, the news sitemap), `/opml`, `/v/…`, `/r/…`, `/livez`, `/healthz`
    partners   `/partners/{partner}/feeds/…`
    api        the admin API: `/api/sources`, `/api/popular`, `/api/partners/…`
    articles   the admin API's articles: corrections, kills, holds, the urgent mark (`/api/articles/{id}…`)
    sources    the admin API's writes to sources: add, edit, pause, resume, delete, test (`/api/sources…`)
    audit      `/api/audit`: the audit log, for admins' scripts
    webhooks   `/api/webhooks`: the newsroom's webhook endpoints, their delivery log, test events (admins)
    docs       `/api/docs`, the API's interactive reference, its assets from the package; `/docs` redirects there
    metrics    `/metrics`
    widgets    `/widgets/most-viewed`, `.json`, `.js`: the embeddable most viewed box
    fastpath   `FeedFastPath`, ASGI middleware that answers built feeds from memory
    guard      `RequestGuard`, ASGI middleware in front of everything (caps, the admin token, security headers)

`routes()` is what `service.py` mounts; `error_page()` is the page the error mapping shows outside the APIs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from jinja2 import Environment
from starlette.routing import BaseRoute

from ..core.audit import AuditLog
from ..core.http import Access, PageRenderer
from ..core.limits import Limits
from ..metrics import Figures
from ..partners import PartnerStore
from ..publish import FeedPublisher
from ..push import PushQueue
from ..readership import Clicks, Redirects, ViewCounter
from ..settings import Settings
from ..source_book import SourceBook
from ..store import ArticleStore
from ..webhook_worker import WebhookSender
from ..webhooks import WebhookStore
from ..syndication import PartnerDesk, PartnerFeeds
from ..widgets import MostViewedBoard
from .api import PartnersApi, SourcesApi
from .articles import ArticlesApi
from .audit import AuditApi
from .docs import API_DESCRIPTION, DocsPages
from .fastpath import FeedFastPath
from .guard import RequestGuard
from .metrics import MetricsRoute
from .partners import PartnerFeedRoute
from .public import PublicPages
from .sources import SourcesWriteApi
from .widgets import WidgetRoutes
from .webhooks import WebhooksApi

__all__ = ["API_DESCRIPTION", "FeedFastPath", "RequestGuard", "error_page", "routes"]


def routes(settings: Settings, *, store: ArticleStore, publisher: FeedPublisher, templates: Environment,
           clock: Callable[[], datetime], view_counter: ViewCounter, redirects: Redirects, partners: PartnerStore,
           pushes: PushQueue, figures: Figures, access: Access, audit: AuditLog,
           source_book: SourceBook, limits: Limits | None = None,
           webhooks: tuple[WebhookStore, WebhookSender] | None = None) -> list[BaseRoute]:
    """Every route of the content side, the admin API's included (FastAPI routes, in `/api/openapi.json` once
    mounted on the app); `figures` are both sides' /metrics families; `limits` makes the rate limiters (default: in
    this process's memory); `webhooks` (the store and the sender) adds `/api/webhooks`."""
    clicks = Clicks(redirects, store, view_counter, clock, on_partner_click=partners.add_click)
    # Partners' own rate limits (`rate_limit` a minute), refilled steadily: bursts of up to the limit.
    limiter = (limits or Limits(clock)).limiter("partner-feeds", 60, timedelta(minutes=1), refill="steady")
    desk = PartnerDesk(settings, partners, PartnerFeeds(settings, store, redirects), limiter.hit, clock)
    return [
        *PublicPages(settings, store, publisher, templates, clock, view_counter, clicks).routes(),
        *PartnerFeedRoute(desk, settings.feeds.max_age).routes(),
        *SourcesApi(settings, store, clock, access, source_book).router().routes,
        *SourcesWriteApi(access, source_book, audit).router().routes,
        *PartnersApi(settings, partners, pushes, clock, access, audit).router().routes,
        *AuditApi(access, audit).router().routes,
        *ArticlesApi(access, store, pushes, audit, clock).router().routes,
        *MetricsRoute(settings.admin_token, figures).routes(),
        *DocsPages(f"{settings.site.name} API (Gazette)", access).routes(),
        *(WebhooksApi(*webhooks, clock, access, audit,
                      allow_private_network=settings.webhooks.allow_private_network).router().routes
          if webhooks is not None else ()),
        *WidgetRoutes(settings, MostViewedBoard(settings, store, redirects, templates, clock)).routes(),
    ]


def error_page(settings: Settings, templates: Environment) -> PageRenderer:
    """The site's error page (`pages/error.html`), titled with the status."""
    def render(status: int, message: str) -> str:
        return templates.get_template("pages/error.html").render(site=settings.site, title=str(status), message=message)
    return render
