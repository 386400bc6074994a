"""The newsroom console: `/admin`, server-rendered pages for the daily work of editors and operators.

It needs both sides (sources and partners are the content side's, readers and editions the audience side's), so it
lives on the audience side, which may import the content side. `console_routers` is what `service.py` mounts: it is
given the whole object graph and hands each page the parts it asks for. What every page shares (the actor and its
role, CSRF, the layout, the audit log) is `kit.py`.

    auth       /admin/login, /admin/logout, /admin/logout-everywhere
    account    /admin/account: one's own sessions and password
    dashboard  /admin, the console's home: the dashboard
    sources    /admin/sources: the effective sources; add, edit, pause, resume, delete, test
    alerts     /admin/alerts: breaking news, composed, previewed, sent and reported
    subscribers  /admin/subscribers: search, a reader's record, add, export, erase
    articles     /admin/articles: search, an article's revisions, views and clicks
    article_life /admin/articles/{id}/…: correct, kill, hold, release, mark urgent (editors)
    partners   /admin/partners: partners, terms, keys (shown once), usage, the push queue
    users      /admin/users: accounts and roles (admins)
    audit      /admin/audit: who changed what (admins)
    editions     /admin/editions: the schedule, the runs' reports, previews and tests, retry, pause and resume
    webhooks   /admin/webhooks: the newsroom's webhook endpoints, their delivery log, test events (admins)
"""

from __future__ import annotations

from fastapi import APIRouter

from feeds.article_life import ArticleLife
from feeds.article_search import ArticleSearch

from ...components import Components
from ...subscription import Subscription
from .account import AccountPage
from .alerts import AlertsPage
from .article_life import ArticleActions
from .articles import ArticlesPage
from .audit import AuditPage
from .auth import LoginPages
from .dashboard import DashboardPage
from .editions import EditionsPage
from .kit import ConsoleKit
from .partners import PartnersPages
from .sources import SourcesPage
from .subscribers import SubscribersPage
from .users import UsersPages
from .webhooks import WebhooksPages


def _article_pages(kit: ConsoleKit, c: Components) -> list[APIRouter]:
    page = ArticlesPage(kit, c.settings, ArticleSearch(c.engine), c.store, c.subscribers.editions, c.pushes)
    return [page.router(), ArticleActions(kit, ArticleLife(c.engine), page, c.alerts).router()]


def console_routers(c: Components) -> list[APIRouter]:
    kit = ConsoleKit(c.settings, c.templates, c.access, c.audit, c.clock)
    return [
        LoginPages(kit, c.accounts, c.limits).router(),
        AccountPage(kit, c.accounts).router(),
        DashboardPage(kit, c.figures, c.store, c.source_book.active).router(),
        SourcesPage(kit, c.source_book, failure_limit=c.settings.fetch.failure_limit, categories=c.settings.categories,
                    allow_private_network=c.settings.stored_sources_private_network).router(),
        AlertsPage(kit, c.alerts, c.push_store.count if c.push is not None else None).router(),
        SubscribersPage(kit, c.settings, c.subscribers,
                        Subscription(c.settings, c.subscribers, c.tokens, c.notices, c.clock)).router(),
        *_article_pages(kit, c),
        PartnersPages(kit, c.settings, c.partners, c.pushes).router(),
        UsersPages(kit, c.settings, c.accounts).router(),
        AuditPage(kit, c.settings, c.audit).router(),
        EditionsPage(kit, c.deliveries, c.subscribers, c.store, c).router(),
        WebhooksPages(kit, c.webhooks, c.webhook_sender).router(),
    ]
