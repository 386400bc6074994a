"""The console's home, the dashboard, in-process: every role reads it, the 30/90-day switch, the charts inline with a
name, a description and their numbers, names from the outside escaped, and the same figures as `/api/dashboard`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import NOW, Clock, SmtpRecorder
from tests.console.conftest import Console, console_over
from tests.console.dashboard_data import SOURCES, seed_history
from tests.security.conftest import ADMIN


@pytest.fixture
def newsroom(tmp_path: Path, smtp_server: tuple[SmtpRecorder, str], clock: Clock,
             migrated_sqlite: Path) -> Iterator[Console]:
    """The console over a month of history (tests/console/dashboard_data.py), mail to a maildir."""
    with console_over(tmp_path, smtp_server[0], clock, migrated_sqlite, mail_url=f"maildir://{tmp_path / 'outbox'}",
                      extra=SOURCES, prepare=lambda services: seed_history(services, NOW)) as site:
        yield site


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_every_role_reads_the_dashboard_at_home(newsroom: Console, role: str) -> None:
    page = newsroom.login(role).client.get("/admin")
    assert page.status_code == 200, page.text
    assert "<h1>대시보드</h1>" in page.text
    assert page.text.count('role="img"') == 5 and "<script" not in page.text
    assert '<a href="/admin?days=30" aria-current="page">30일</a>' in page.text


def test_the_span_switch_and_the_numbers(newsroom: Console) -> None:
    client = newsroom.login("viewer").client
    api = client.get("/api/dashboard?days=90").json()  # a console session reads the API too
    page = client.get("/admin?days=90&lang=en").text
    assert '<a href="/admin?days=90" aria-current="page">90 days</a>' in page
    growth = re.search(r'aria-label="Subscriber growth per day">\s*<table>(.*?)</table>', page, re.S)[1]  # type: ignore[index]
    assert growth.count("<tr>") == 1 + 90  # the head and a row per day
    net = sum(day["net"] for day in api["growth"])
    assert f"net {net}" in page  # the chart's description says what the table holds
    assert f"<dd>{api['subscribers']}</dd>" in page
    [last, earlier] = api["editions"]
    assert (last["sent"], last["clicks"], earlier["clicks"]) == (3, 2, 1)
    assert f"<dd>{last['click_rate'] * 100:.1f}%</dd>" in page
    for junk in ("7", "abc", "90abc", "-1", "9" * 30):
        assert '<a href="/admin?days=30" aria-current="page">' in client.get(f"/admin?days={junk}").text


def test_sources_failing_first_and_outside_names_escaped(newsroom: Console) -> None:
    page = newsroom.login("viewer").client.get("/admin").text
    rows = re.findall(r'<tr><th scope="row">([^<]*)(?:<div[^>]*>[^<]*</div>)?</th>\s*<td><span class="badge (\w+)">(.*?)</span>',
                      page)
    assert rows == [("&lt;b&gt;지역&lt;/b&gt; 통신", "bad", "장애"), ("경제 데스크", "warn", "새 소스"),
                    ("연합뉴스", "good", "정상")]
    assert "<b>지역</b>" not in page and "502 Bad Gateway" in page


def test_without_a_session_the_dashboard_and_its_api_are_closed(newsroom: Console) -> None:
    stranger = newsroom.client()
    answer = stranger.get("/admin?days=90")
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/login?next=%2Fadmin%3Fdays%3D90"
    assert stranger.get("/api/dashboard").status_code == 401
    assert stranger.get("/api/dashboard", headers=ADMIN).status_code == 200


def test_charts_are_drawn_once_per_figures_language_and_span(newsroom: Console) -> None:
    from dataclasses import replace
    from zoneinfo import ZoneInfo

    from newsletter.dashboard import build_dashboard
    from newsletter.http.console.dashboard import ChartMemo
    from templates import words

    services, zone = newsroom.services, ZoneInfo("Asia/Seoul")
    memo = ChartMemo(size=2)
    d = build_dashboard(services.figures, services.store, now=NOW, days=30, failure_limit=5)
    first = memo.charts(d, words("ko"), zone)
    assert memo.charts(build_dashboard(services.figures, services.store, now=NOW, days=30, failure_limit=5),
                       words("ko"), zone) is first  # the same figures read again: not drawn again
    english = memo.charts(d, words("en"), zone)
    assert english is not first and english[1].title == "Subscriber growth per day"
    rolled = replace(d, growth=d.growth[:-1] + (replace(d.growth[-1], confirmations=99),))
    assert memo.charts(rolled, words("ko"), zone) is not first  # new figures: drawn anew
    assert memo.charts(d, words("ko"), zone) is not first  # only two kept: the oldest went


def test_a_source_added_in_the_console_is_on_the_dashboard_at_once(newsroom: Console) -> None:
    newsroom.services.source_book.add({"name": "콘솔 통신", "kind": "feed", "url": "https://stored.example.com/rss",
                                       "category": "politics"}, by="editor@news.example.com")
    client = newsroom.login("viewer").client
    names = [s["name"] for s in client.get("/api/dashboard").json()["sources"]]
    assert "콘솔 통신" in names and "연합뉴스" in names
    assert "콘솔 통신" in client.get("/admin").text
