"""`GET /api/dashboard`: the newsroom dashboard as JSON (newsletter/dashboard.py's `Dashboard`, as it is).

`days` is the span of the daily charts, 1 to 90 (the console offers 30 and 90). Same access as the rest of the
admin API (the admin token, or a console session of any role: it only reads) and the same problem+json errors.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Callable, Sequence

from fastapi import APIRouter, Query

from feeds.core.http import Access, admin_router
from feeds.settings import SourceSettings
from feeds.store import ArticleStore

from ..dashboard import CATCH_UP, Dashboard, Figures, build_dashboard
from ..settings import Settings


class DashboardApi:
    """The dashboard over the figure tables and the article store."""

    def __init__(self, settings: Settings, figures: Figures, articles: ArticleStore, clock: Callable[[], datetime],
                 access: Access, sources: Callable[[], Sequence[SourceSettings]]) -> None:
        self.settings = settings
        self.access = access
        self.sources = sources  # the effective sources now: the file's and those stored from the console
        self.figures = figures
        self.articles = articles
        self.clock = clock

    def router(self) -> APIRouter:
        api = admin_router(self.access, "/api/dashboard", "dashboard")
        api.add_api_route("", self.dashboard, methods=["GET"], response_model=Dashboard,
                          summary="Subscribers and growth, the last editions' funnels, sources by health, the most "
                                  "viewed, views per hour and partner requests, from the pre-aggregated figures")
        return api

    def dashboard(self, days: Annotated[int, Query(ge=1, le=CATCH_UP, description="the span of the daily "
                  "charts, today included (the console offers 30 and 90)")] = 30) -> Dashboard:
        return build_dashboard(self.figures, self.articles, now=self.clock(), days=days,
                               failure_limit=self.settings.fetch.failure_limit, sources=self.sources())
