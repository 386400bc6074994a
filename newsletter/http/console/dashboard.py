"""`/admin`: the console's home, the dashboard (newsletter/dashboard.py, drawn by newsletter/dashboard_charts.py).

Any role reads it. `?days=30` (the default) or `?days=90` picks the span of the daily charts; anything else is
the default, not an error (a link someone mistyped still shows the dashboard). Each chart is inline SVG with a
name and a description, and its numbers are in a table under it.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

import templates as ui
from feeds.store import ArticleStore

from ...dashboard import PERIODS, Figures, build_dashboard
from ...dashboard_charts import dashboard_charts
from .kit import ConsoleKit, acting

# The health labels of `feeds.model.source_health`, as words, with the badge each wears.
HEALTH = {"unhealthy": ("dash_health_unhealthy", "bad"), "failing": ("dash_health_failing", "bad"),
          "disabled": ("dash_health_disabled", "muted"), "new": ("dash_health_new", "warn"),
          "ok": ("dash_health_ok", "good")}


class DashboardPage:
    def __init__(self, kit: ConsoleKit, figures: Figures, articles: ArticleStore) -> None:
        self.kit = kit
        self.figures = figures
        self.articles = articles

    def router(self) -> APIRouter:
        api = APIRouter(include_in_schema=False)
        api.add_api_route("/admin", self.show, methods=["GET"], dependencies=[Depends(self.kit.viewer)])
        return api

    def show(self, request: Request) -> Response:
        asked = request.query_params.get("days", "")
        days = int(asked) if asked in {str(n) for n in PERIODS} else PERIODS[0]
        settings = self.kit.settings
        now = self.kit.clock()
        dashboard = build_dashboard(self.figures, self.articles, now=now, days=days,
                                    failure_limit=settings.fetch.failure_limit, sources=settings.sources)
        zone = settings.site.timezone
        charts = {chart.key: chart for chart in dashboard_charts(dashboard, ui.words(self.kit.language(request)), zone)}
        as_of = f"{dashboard.as_of.astimezone(zone):%Y-%m-%d %H:%M}" if dashboard.as_of else None
        return self.kit.page(request, acting(request), "console/dashboard.html", d=dashboard, charts=charts,
                             spans=PERIODS, as_of=as_of, today=dashboard.growth[-1] if dashboard.growth else None,
                             health=HEALTH)
