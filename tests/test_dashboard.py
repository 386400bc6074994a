"""The dashboard: the daily roll-up (day boundaries in Asia/Seoul, a rerun replaces, missed days are caught up), the
subscriber count worked back from its snapshot, an edition's funnel from a real edition sent to a maildir and a
click through its link, the charts (nothing loaded from anywhere, a name and the numbers for screen readers), and
`GET /api/dashboard`, on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from feeds import db as content_db
from newsletter import db
from newsletter.dashboard import CATCH_UP, Dashboard, Figures, build_dashboard
from newsletter.dashboard_charts import accessible_svg, dashboard_charts
from newsletter.settings import load_settings
from templates import words
from tests.conftest import NOW, Clock, InProcessClient, write_config
from tests.test_digest import seed

SEOUL = ZoneInfo("Asia/Seoul")
TOKEN = "admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def services(tmp_path: Path, database_url: str, clock: Clock) -> Iterator[object]:
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url,
                                          mail_url=f"maildir://{tmp_path / 'outbox'}",
                                          extra=f'[admin]\ntoken = "{TOKEN}"\n'), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    yield services
    services.close()


def add_people(engine: sa.Engine, people: list[tuple[str, datetime | None, datetime | None]]) -> None:
    """(status, confirmed_at, unsubscribed_at) per reader, written as the store leaves them."""
    rows = [{"email": f"r{uuid.uuid4().hex[:12]}@example.com", "email_hash": uuid.uuid4().hex * 2,
             "public_id": uuid.uuid4().hex, "status": status, "categories": [], "created_at": NOW - timedelta(days=30),
             "consent_method": "admin", "confirmed_at": confirmed, "unsubscribed_at": left, "bounces": 0}
            for status, confirmed, left in people]
    with engine.begin() as conn:
        conn.execute(sa.insert(db.subscribers), rows)


def by_day(dashboard: Dashboard) -> dict[date, tuple[int, int, int, int]]:
    """The days with any event: (confirmations, unsubscribes, bounces, net)."""
    return {g.day: (g.confirmations, g.unsubscribes, g.bounces, g.net) for g in dashboard.growth
            if (g.confirmations, g.unsubscribes, g.bounces) != (0, 0, 0)}


ROLLED_AT = utc("2026-11-28T00:00")  # 09:00 KST on the 28th


@pytest.mark.parametrize(("people", "expected"), [
    pytest.param([("confirmed", utc("2026-11-24T14:59:59"), None)], {date(2026, 11, 24): (1, 0, 0, 1)},
                 id="confirmed-a-second-before-midnight-kst"),
    pytest.param([("confirmed", utc("2026-11-24T15:00:00"), None)], {date(2026, 11, 25): (1, 0, 0, 1)},
                 id="confirmed-at-midnight-kst-is-the-next-day"),
    pytest.param([("unsubscribed", utc("2026-11-25T01:00"), utc("2026-11-25T14:59"))],
                 {date(2026, 11, 25): (1, 1, 0, 0)}, id="came-and-left-the-same-kst-day"),
    pytest.param([("bounced", utc("2026-11-24T00:00"), utc("2026-11-25T15:00"))],
                 {date(2026, 11, 24): (1, 0, 0, 1), date(2026, 11, 26): (0, 0, 1, -1)},
                 id="bounced-just-after-midnight-kst"),
    pytest.param([("complained", utc("2026-11-26T05:00"), utc("2026-11-27T05:00"))],
                 {date(2026, 11, 26): (1, 0, 0, 1), date(2026, 11, 27): (0, 0, 1, -1)},
                 id="a-complaint-counts-as-a-bounce"),
    pytest.param([("pending", None, None)], {}, id="pending-counts-nowhere"),
    pytest.param([("confirmed", utc("2026-11-27T14:00"), None), ("confirmed", utc("2026-11-27T16:00"), None),
                  ("unsubscribed", utc("2026-10-01T00:00"), utc("2026-11-27T23:59"))],
                 {date(2026, 11, 27): (1, 0, 0, 1), date(2026, 11, 28): (1, 1, 0, 0)},
                 id="today-so-far"),
])
def test_the_daily_figures_count_each_event_on_its_seoul_day(services, people, expected) -> None:  # type: ignore[no-untyped-def]
    add_people(services.engine, people)
    report = services.figures.roll_up(ROLLED_AT)
    assert len(report.days) == CATCH_UP and report.days[-1] == date(2026, 11, 28)  # a first roll goes back CATCH_UP
    dashboard = build_dashboard(services.figures, services.store, now=ROLLED_AT, days=30, failure_limit=5)
    assert by_day(dashboard) == expected
    assert dashboard.subscribers == sum(status == "confirmed" for status, _, _ in people)
    assert dashboard.growth[-1].subscribers == dashboard.subscribers


def test_a_rerun_replaces_a_day_and_the_count_is_worked_back_from_the_snapshot(services) -> None:  # type: ignore[no-untyped-def]
    engine, figures = services.engine, services.figures
    add_people(engine, [("confirmed", utc("2026-11-26T01:00"), None)] * 3
               + [("unsubscribed", utc("2026-11-26T02:00"), utc("2026-11-27T02:00"))])

    def rows() -> list[tuple[object, ...]]:
        with engine.connect() as conn:
            return sorted(tuple(r) for r in conn.execute(sa.select(db.daily_figures)))

    figures.roll_up(ROLLED_AT)
    first = rows()
    figures.roll_up(ROLLED_AT)
    assert rows() == first  # the same day rolled again: the same rows, none twice
    add_people(engine, [("confirmed", utc("2026-11-28T00:30"), None)])
    figures.roll_up(ROLLED_AT + timedelta(hours=1))
    dashboard = build_dashboard(figures, services.store, now=ROLLED_AT + timedelta(hours=1), days=30, failure_limit=5)
    assert by_day(dashboard) == {date(2026, 11, 26): (4, 0, 0, 4), date(2026, 11, 27): (0, 1, 0, -1),
                                 date(2026, 11, 28): (1, 0, 0, 1)}
    ends = {g.day: g.subscribers for g in dashboard.growth if g.day >= date(2026, 11, 25)}
    assert ends == {date(2026, 11, 25): 0, date(2026, 11, 26): 4, date(2026, 11, 27): 3, date(2026, 11, 28): 4}
    assert dashboard.subscribers == 4 and dashboard.as_of == ROLLED_AT + timedelta(hours=1)
    with engine.connect() as conn:
        today = conn.execute(sa.select(sa.func.count()).select_from(db.daily_figures).where(
            db.daily_figures.c.day == date(2026, 11, 28), db.daily_figures.c.figure == "confirmations")).scalar_one()
    assert today == 1


def test_missed_days_are_caught_up_and_a_complete_day_is_not_rolled_again(services) -> None:  # type: ignore[no-untyped-def]
    figures = services.figures
    monday = utc("2026-11-25T00:00")  # 09:00 KST
    assert figures.roll_up(monday).days[-1] == date(2026, 11, 25)
    assert figures.days_due(monday + timedelta(minutes=5)) == [date(2026, 11, 25)]  # today: rolled again, cheaply
    add_people(services.engine, [("confirmed", utc("2026-11-25T10:00"), None),  # 19:00 KST, after the last roll
                                 ("confirmed", utc("2026-11-26T10:00"), None)])
    # Nothing ran for three days: the next roll does the rest of the 25th, the 26th, the 27th and today.
    assert figures.days_due(ROLLED_AT) == [date(2026, 11, d) for d in (25, 26, 27, 28)]
    figures.roll_up(ROLLED_AT)
    assert figures.days_due(ROLLED_AT + timedelta(minutes=5)) == [date(2026, 11, 28)]
    # Rolled just after midnight, a day is not complete yet (views are flushed late): it is rolled once more.
    just_after = utc("2026-11-28T15:05")  # 00:05 KST on the 29th
    figures.roll_up(just_after)
    assert figures.days_due(just_after + timedelta(minutes=5)) == [date(2026, 11, 28), date(2026, 11, 29)]
    dashboard = build_dashboard(figures, services.store, now=just_after, days=30, failure_limit=5)
    assert by_day(dashboard) == {date(2026, 11, 25): (1, 0, 0, 1), date(2026, 11, 26): (1, 0, 0, 1)}


def test_views_sources_and_partners_figures(services) -> None:  # type: ignore[no-untyped-def]
    from tests.test_store import make_article

    engine, store = services.engine, services.store
    with engine.begin() as conn:
        for name, failures, disabled in (("ok-wire", 0, None), ("broken", 7, None), ("flaky", 1, None),
                                         ("off", 0, "removed")):
            conn.execute(sa.insert(content_db.sources).values(
                name=name, kind="rss", location=f"https://{name}.example.com/rss", interval_seconds=600,
                consecutive_failures=failures, disabled_reason=disabled, created_at=NOW,
                last_success_at=NOW if name == "ok-wire" else None))
        wire = conn.execute(sa.select(content_db.sources.c.id).where(content_db.sources.c.name == "ok-wire")).scalar()
        conn.execute(sa.insert(content_db.partners).values(slug="daum", name="다음", categories=[], created_at=NOW))
        conn.execute(sa.insert(content_db.partner_usage).values(partner_slug="daum", day=date(2026, 11, 27), requests=12,
                                                                not_modified=0, rate_limited=0, bytes=0, clicks=0))
    published = [make_article(n, published_at=utc("2026-11-27T03:00") + timedelta(hours=n)) for n in range(3)]
    store.upsert_articles(published, source_id=wire, now=ROLLED_AT)
    store.add_views_batch([(published[0].id, ROLLED_AT - timedelta(minutes=30), 5),
                           (published[1].id, ROLLED_AT - timedelta(hours=5), 9)])
    services.figures.roll_up(ROLLED_AT)
    d = build_dashboard(services.figures, store, now=ROLLED_AT, days=30, failure_limit=5)
    assert [(s.name, s.health) for s in d.sources] == [("broken", "unhealthy"), ("flaky", "failing"),
                                                       ("off", "disabled"), ("ok-wire", "ok")]
    wire_line = next(s for s in d.sources if s.name == "ok-wire")
    assert len(wire_line.articles) == 30 and wire_line.articles[-2] == 3  # the 27th, the day before today
    hours = {h.hour_at: h.views for h in d.views_per_hour if h.views}
    assert hours == {utc("2026-11-27T23:00"): 5, utc("2026-11-27T19:00"): 9} and len(d.views_per_hour) == 48
    assert [(p.day, p.requests, p.by_partner) for p in d.partner_requests if p.requests] == [
        (date(2026, 11, 27), 12, {"daum": 12})]
    assert [v.views for v in d.most_viewed_24h] == [9, 5] and [v.views for v in d.most_viewed_1h] == [5]


def mails(folder: Path) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
            for p in sorted((folder / "new").iterdir())]


def test_the_funnel_of_a_real_edition_and_the_api(services, clock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Sent to a maildir: two recipients, both sent; one click through kim's link; the funnel and the click rate
    come back from /api/dashboard after the roll-up, and agree with /api/editions."""
    import service

    seed(services, clock)
    services.subscribers.add("gone@example.com", categories=["politics"], editions=["daily"], now=clock(),
                             confirmed=True, method="admin")
    gone = services.subscribers.find("gone@example.com")
    services.subscribers.unsubscribe(gone.id, gone.public_id, now=clock())
    report = services.send("daily", NOW, everyone=True)
    assert (report.recipients, report.sent) == (2, 2)
    kim = next(m for m in mails(tmp_path / "outbox") if m["To"].addresses[0].addr_spec == "kim@example.com")
    link = re.search(r"https://news\.example\.com(/r/\S+)", kim.get_body(("plain",)).get_content())[1]  # type: ignore[index,union-attr]
    with InProcessClient(service.create_app(services)) as client:
        assert client.get(link, headers={"User-Agent": "Mozilla/5.0"}).status_code == 302
        services.figures.roll_up(clock())
        assert client.get("/api/dashboard").status_code == 401
        answer = client.get("/api/dashboard?days=90", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        [edition] = body["editions"]
        assert {k: edition[k] for k in ("name", "recipients", "sent", "failed", "pending", "clicks", "click_rate")} == {
            "name": "daily", "recipients": 2, "sent": 2, "failed": 0, "pending": 0, "clicks": 1, "click_rate": 0.5}
        stats = client.get(f"/api/editions/{report.edition_id}", headers=ADMIN).json()
        assert (stats["sent"], stats["failed"], stats["clicks"]) == (edition["sent"], edition["failed"],
                                                                     edition["clicks"])
        assert body["days"] == 90 and len(body["growth"]) == 90 and body["subscribers"] == 3  # kim, lee, choi
        today = body["growth"][-1]
        assert (today["day"], today["confirmations"], today["unsubscribes"], today["net"]) == ("2026-11-25", 4, 1, 3)
        assert [v["views"] for v in body["most_viewed_24h"]] == [40, 7]
        assert [client.get(f"/api/dashboard?days={n}", headers=ADMIN).status_code for n in (0, 91, 7)] == [422, 422, 200]
    # Finished and counted: its deliveries are final and not read again, its clicks still come in (for SETTLE);
    # a month later the edition is left alone altogether.
    with services.engine.begin() as conn:
        conn.execute(sa.delete(db.deliveries))
    services.store.add_campaign_click(f"daily-{report.edition_id}", services.store.articles(limit=1)[0].id)
    assert services.figures.count_editions(clock() + timedelta(hours=1)) == 1
    [funnel] = services.figures.funnels(5)
    assert (funnel.recipients, funnel.sent, funnel.clicks, funnel.click_rate) == (2, 2, 2, 1.0)
    assert services.figures.count_editions(clock() + timedelta(days=30)) == 0


@pytest.mark.parametrize("language", ["ko", "en"])
def test_the_charts_load_nothing_and_have_a_name_and_their_numbers(services, language: str) -> None:  # type: ignore[no-untyped-def]
    add_people(services.engine, [("confirmed", utc("2026-11-26T01:00"), None)])
    services.figures.roll_up(ROLLED_AT)
    d = build_dashboard(services.figures, services.store, now=ROLLED_AT, days=30, failure_limit=5)
    t = words(language)
    charts = dashboard_charts(d, t, SEOUL)
    assert [c.key for c in charts] == ["subscribers", "growth", "funnel", "views", "partners"]
    for chart in charts:
        assert "<script" not in chart.svg and "<!--" not in chart.svg
        assert set(re.findall(r"https?://[^\"'\s<>]+", chart.svg)) <= {"http://www.w3.org/2000/svg",
                                                                       "http://www.w3.org/1999/xlink"}
        assert re.match(r'<svg [^>]*role="img" aria-labelledby="(chart-[^" ]+)-title \1-desc"', chart.svg)
        assert f">{chart.title}</title>" in chart.svg and "</desc>" in chart.svg
        assert all(len(row) == len(chart.head) for row in chart.rows)
    growth = charts[1]
    assert growth.title == t["dash_chart_growth"] and len(growth.rows) == 30
    assert growth.rows[-3] == ("2026-11-26", "1", "0", "0", "1")
    assert t.number(1) in growth.summary


def test_a_chart_s_name_is_escaped() -> None:
    svg = accessible_svg('<svg xmlns="http://www.w3.org/2000/svg" id="chart-1" class="pygal-chart"><g/></svg>',
                         '<b>"구독" & 해지</b>', "a < b")
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" id="chart-1" class="pygal-chart" role="img" '
                          'aria-labelledby="chart-1-title chart-1-desc"><title id="chart-1-title">&lt;b&gt;&quot;구독'
                          '&quot; &amp; 해지&lt;/b&gt;</title><desc id="chart-1-desc">a &lt; b</desc><g/>')
    with pytest.raises(ValueError):
        accessible_svg("<svg><g/></svg>", "x", "y")


@pytest.mark.parametrize("values, labels", [
    pytest.param([], [0], id="nothing"),
    pytest.param([0, 0], [0], id="zeros"),
    pytest.param([3, 1], [0, 1, 2, 3], id="small: every whole number"),
    pytest.param([10, None, 4], [0, 2, 4, 6, 8, 10], id="gaps ignored"),
    pytest.param([11], [0, 3, 6, 9, 12], id="rounded up past the top"),
])
def test_count_axes_label_whole_numbers(values: list[int | None], labels: list[int]) -> None:
    from newsletter.charts import count_axis

    assert count_axis(values) == labels
