"""The audience side's HTTP, thin: each endpoint parses the request, calls one domain function, maps the result.

    pages.py     the reader's subscription pages       -> newsletter.subscription.Subscription
    web_copy.py  GET /archive/{edition}/{token}         -> newsletter.web_copy.WebCopies
    sharing.py   POST /articles/{article_id}/share      -> newsletter.sharing.Sharing
    api.py       /api/subscribers, /api/editions, /api/bounces (admin)
    alerts_api.py  /api/alerts: preview, send, list, report (admin) -> newsletter.alerts.AlertDesk
    dashboard_api.py  GET /api/dashboard (admin)                -> newsletter.dashboard.build_dashboard
    forms.py     reading a form off the event loop; the client's address

`audience_http` builds them all for `service.py` to mount: plain Starlette routes for the pages, FastAPI routers for
the admin API. Nothing in the domain imports this package.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Sequence

from fastapi import APIRouter
from jinja2 import Environment
from starlette.routing import BaseRoute

from feeds.core.audit import AuditLog
from feeds.core.http import Access
from feeds.core.limits import Limits
from feeds.readership import Redirects
from feeds.settings import SourceSettings
from feeds.store import ArticleStore

from ..alerts import AlertDesk
from ..dashboard import Figures
from ..deliveries import DeliveryStore, EditionStats
from ..notices import Notices
from ..push_subscriptions import PushStore
from ..settings import Settings
from ..sharing import Sharing
from ..signing import DkimSigner
from ..subscribers import SubscriberStore
from ..subscription import Subscription
from ..tokens import Tokens
from ..transport import Transport
from ..verp import TagCodec
from ..web_copy import WebCopies
from .alerts_api import AlertsApi
from .api import BouncesApi, EditionsApi, SubscribersApi
from .dashboard_api import DashboardApi
from .pages import SubscriptionPages
from .push import PushRoutes
from .sharing import SharePage
from .web_copy import WebCopyPage

FORMS_PER_IP = (10, timedelta(minutes=10))  # POST /subscribe and /link from one client
PUSH_PER_IP = (30, timedelta(minutes=10))  # POST /push/subscriptions[/unsubscribe] from one client


@dataclass(frozen=True)
class AudienceHttp:
    """What the app mounts: `routes` (pages, web copies, sharing) and `routers` (the admin API)."""

    routes: list[BaseRoute]
    routers: list[APIRouter]


def audience_http(settings: Settings, *, subscribers: SubscriberStore, deliveries: DeliveryStore,
                  articles: ArticleStore, redirects: Redirects, tokens: Tokens, templates: Environment,
                  clock: Callable[[], datetime], notices: Notices, transport: Callable[[], Transport], tags: TagCodec,
                  signer: DkimSigner | None, clicks: Callable[[str], dict[str, int]], access: Access,
                  audit: AuditLog, alerts: AlertDesk, pause: Callable[[int], EditionStats] | None = None,
                  resume: Callable[[int], EditionStats] | None = None,
                  sources: Callable[[], Sequence[SourceSettings]] | None = None,
                  limits: Limits | None = None, push: PushStore | None = None) -> AudienceHttp:
    """The audience side's routes and routers, over its stores and services. `clicks`: an edition's clicks by
    article, by campaign name ("{edition}-{id}"); `sources`: the effective sources now (the file's and the stored
    ones; default: the file's); `limits` makes the rate limiters (default: in this process's memory); `push`, with
    [push], the Web Push subscriptions the /push/ routes keep."""
    limits = limits or Limits(clock)
    flow = Subscription(settings, subscribers, tokens, notices, clock)
    pages = SubscriptionPages(settings, flow, tokens, templates, limits.limiter("subscribe-forms", *FORMS_PER_IP))
    copies = WebCopyPage(settings, WebCopies(settings.site.base_url, deliveries, subscribers, tokens), templates)
    sharing = SharePage(settings, Sharing(settings, articles, subscribers, redirects, templates, clock, transport,
                                          tags, signer, limits=limits), templates)
    pushing = (PushRoutes(settings, push, limits.limiter("push-subscriptions", *PUSH_PER_IP), clock).routes()
               if push is not None and settings.push is not None else [])
    return AudienceHttp(
        routes=[*pages.routes(), *copies.routes(), *sharing.routes(), *pushing],
        routers=[SubscribersApi(settings, subscribers, flow, clock, access, audit).router(),
                 EditionsApi(settings, deliveries, clicks, access, audit=audit, pause=pause, resume=resume).router(),
                 BouncesApi(settings, subscribers, clock, tokens, access, audit).router(),
                 AlertsApi(settings, alerts, access, audit).router(),
                 DashboardApi(settings, Figures(deliveries.engine, settings.site.timezone), articles, clock,
                              access, sources or (lambda: settings.sources)).router()])
