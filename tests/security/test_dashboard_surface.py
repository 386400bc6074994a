"""The dashboard's surface: `GET /api/dashboard` and its charts.

- the figures of the whole newsroom (subscribers, clicks, partners) must need the admin token, in the header only;
- `days` outside 1..90 (or past 2^63, or not a number) is a 4xx problem, never a 500 or a scan of years of rows;
- a name drawn into a chart (a partner's slug, any text) cannot become markup in the page the SVG is put in.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from newsletter.dashboard import Dashboard, PartnerDay
from newsletter.dashboard_charts import dashboard_charts
from templates import words
from tests.security.conftest import ADMIN, Gazette


@pytest.mark.parametrize("headers", [
    pytest.param({}, id="no-token"),
    pytest.param({"Authorization": "Bearer wrong-token-0123456789"}, id="wrong-token"),
    pytest.param({"Authorization": "Basic YWRtaW46YWRtaW4="}, id="basic-auth"),
    pytest.param({"Cookie": "admin_token=admin-token-0123456789"}, id="token-in-a-cookie"),
])
def test_the_dashboard_needs_the_admin_token(gazette: Gazette, headers: dict[str, str]) -> None:
    answer = gazette.client.get("/api/dashboard", headers=headers)
    assert answer.status_code == 401 and answer.headers["content-type"].startswith("application/problem+json")
    assert gazette.client.get("/api/dashboard?token=admin-token-0123456789").status_code == 401


@pytest.mark.parametrize("days", ["0", "-1", "91", "100000", str(2**63), "30.5", "thirty", "30;DROP TABLE x",
                                  "%00"])
def test_a_span_out_of_bounds_is_a_4xx_problem(gazette: Gazette, days: str) -> None:
    answer = gazette.client.get(f"/api/dashboard?days={days}", headers=ADMIN)
    assert answer.status_code == (400 if days == "%00" else 422), answer.text  # a NUL is refused before routing
    assert answer.json()["status"] == answer.status_code


def test_a_name_in_a_chart_stays_text() -> None:
    hostile = '<img src=x onerror="alert(1)">'
    day = date(2026, 11, 25)
    dashboard = Dashboard(generated_at=datetime(2026, 11, 25, tzinfo=UTC), as_of=None, days=1, subscribers=0,
                          growth=(), editions=(), sources=(), most_viewed_1h=(), most_viewed_24h=(), views_per_hour=(),
                          partner_requests=(PartnerDay(day, 3, {hostile: 3}),))
    for chart in dashboard_charts(dashboard, words("ko"), ZoneInfo("Asia/Seoul")):
        assert "<img" not in chart.svg  # the quotes may stay: in text, only < and & begin markup
    partners = dashboard_charts(dashboard, words("ko"), ZoneInfo("Asia/Seoul"))[-1]
    assert "&lt;img" in partners.svg and partners.head[1] == hostile  # the table's text is escaped where it lands
