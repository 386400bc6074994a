"""The newsroom console: `/admin`, server-rendered pages for the daily work of editors and operators.

It needs both sides (sources and partners are the content side's, readers and editions the audience side's), so it
lives on the audience side, which may import the content side. `console_routers` is what `service.py` mounts: it is
given the whole object graph and hands each page the parts it asks for. What every page shares (the actor and its
role, CSRF, the layout, the audit log) is `kit.py`.

    auth       /admin/login, /admin/logout, /admin/logout-everywhere
    account    /admin/account: one's own sessions and password
    home       /admin
    alerts     /admin/alerts: breaking news, composed, previewed, sent and reported
"""

from __future__ import annotations

from fastapi import APIRouter

from ...components import Components
from .account import AccountPage
from .alerts import AlertsPage
from .auth import LoginPages
from .home import HomePage
from .kit import ConsoleKit


def console_routers(c: Components) -> list[APIRouter]:
    kit = ConsoleKit(c.settings, c.templates, c.access, c.audit, c.clock)
    return [
        LoginPages(kit, c.accounts).router(),
        AccountPage(kit, c.accounts).router(),
        HomePage(kit).router(),
        AlertsPage(kit, c.alerts).router(),
    ]
