"""`/admin`: the console's home, the dashboard (newsletter/dashboard.py, drawn by newsletter/dashboard_charts.py).

Any role reads it. `?days=30` (the default) or `?days=90` picks the span of the daily charts; anything else is
the default, not an error (a link someone mistyped still shows the dashboard). Each chart is inline SVG with a
name and a description, and its numbers are in a table under it.

Drawing the charts costs far more than reading the figures (pygal builds every bar as an element tree: a few
hundred milliseconds for 90 days), and the figures only move when `figures:daily` rolls them up, every 5 minutes:
so the drawn charts are kept per process for the figures they were drawn from (`ChartMemo`), and a page load
between two roll-ups only reads the figures.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from datetime import tzinfo
from typing import Callable, Sequence

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

import templates as ui
from feeds.settings import SourceSettings
from feeds.store import ArticleStore

from feeds.core.i18n import Words

from ...dashboard import PERIODS, Dashboard, Figures, build_dashboard
from ...dashboard_charts import Chart, dashboard_charts
from .kit import ConsoleKit, acting

MEMO_SIZE = 8  # two spans in two languages, and the figures before the last roll-up

# The health labels of `feeds.model.source_health`, as words, with the badge each wears.
HEALTH = {"unhealthy": ("dash_health_unhealthy", "bad"), "failing": ("dash_health_failing", "bad"),
          "disabled": ("dash_health_disabled", "muted"), "new": ("dash_health_new", "warn"),
          "ok": ("dash_health_ok", "good")}


class ChartMemo:
    """The charts last drawn, by what they were drawn from (the charted figures, the language, the time zone)."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self.size = size
        self._drawn: OrderedDict[str, tuple[Chart, ...]] = OrderedDict()
        self._lock = threading.Lock()  # pages are answered on a thread pool

    def charts(self, dashboard: Dashboard, t: Words, zone: tzinfo) -> tuple[Chart, ...]:
        charted = (t.language, str(zone), dashboard.days, dashboard.growth, dashboard.editions,
                   dashboard.views_per_hour, dashboard.partner_requests)
        key = hashlib.sha256(repr(charted).encode()).hexdigest()
        with self._lock:
            if key in self._drawn:
                self._drawn.move_to_end(key)
                return self._drawn[key]
        drawn = dashboard_charts(dashboard, t, zone)  # outside the lock: two first loads may both draw, harmlessly
        with self._lock:
            self._drawn[key] = drawn
            while len(self._drawn) > self.size:
                self._drawn.popitem(last=False)
        return drawn


class DashboardPage:
    def __init__(self, kit: ConsoleKit, figures: Figures, articles: ArticleStore,
                 sources: Callable[[], Sequence[SourceSettings]]) -> None:
        self.kit = kit
        self.figures = figures
        self.articles = articles
        self.sources = sources  # the effective sources now: the file's and those stored from the console
        self.memo = ChartMemo()

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
                                    failure_limit=settings.fetch.failure_limit, sources=self.sources())
        zone = settings.site.timezone
        charts = {chart.key: chart for chart in self.memo.charts(dashboard, ui.words(self.kit.language(request)), zone)}
        as_of = f"{dashboard.as_of.astimezone(zone):%Y-%m-%d %H:%M}" if dashboard.as_of else None
        return self.kit.page(request, acting(request), "console/dashboard.html", d=dashboard, charts=charts,
                             spans=PERIODS, as_of=as_of, today=dashboard.growth[-1] if dashboard.growth else None,
                             health=HEALTH)
