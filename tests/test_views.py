"""Views: counting rules, the beacon and signed redirects over HTTP (the app in-process), flushing when a real
`gazette serve` gets SIGTERM, ranking windows."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa

from feeds import db
from feeds.core import database
from feeds.readership import TRANSPARENT_GIF, WINDOWS, Redirects, ViewCounter, ViewRules, most_viewed
from newsletter.settings import load_settings
from tests.conftest import NOW, InProcessClient, free_port, gazette_command, migrated_sqlite_url, wait_healthy, write_config
from tests.test_store import make_article

BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
OTHER_BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


def total_views(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(db.article_views.c.views), 0))).scalar())


@pytest.fixture
def counter(store, clock):  # type: ignore[no-untyped-def]
    articles = [make_article(1), make_article(2)]
    store.upsert_articles(articles, source_id=None, now=NOW)
    known = {a.id for a in articles}
    return ViewCounter(store, ViewRules(per_ip_cap=3), clock, known.__contains__), articles


@pytest.mark.parametrize("steps, expected", [
    pytest.param([(0, "1.1.1.1", BROWSER)], ["counted"], id="first-view"),
    pytest.param([(0, "1.1.1.1", BROWSER), (10, "1.1.1.1", BROWSER)], ["counted", "repeat"], id="repeat-in-30-min"),
    pytest.param([(0, "1.1.1.1", BROWSER), (31, "1.1.1.1", BROWSER)], ["counted", "counted"], id="again-after-30-min"),
    pytest.param([(0, "1.1.1.1", BROWSER), (1, "2.2.2.2", BROWSER)], ["counted", "counted"], id="other-ip"),
    pytest.param([(0, "1.1.1.1", BROWSER), (1, "1.1.1.1", OTHER_BROWSER)], ["counted", "counted"], id="other-agent"),
    pytest.param([(0, "1.1.1.1", f"{BROWSER} {i}") for i in range(5)],
                 ["counted", "counted", "counted", "capped", "capped"], id="per-ip-cap"),
    pytest.param([(0, "1.1.1.1", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")],
                 ["crawler"], id="googlebot"),
    pytest.param([(0, "1.1.1.1", "Mozilla/5.0 (compatible; Yeti/1.1; +http://naver.me/spd)")], ["crawler"], id="naver-yeti"),
    pytest.param([(0, "1.1.1.1", "")], ["crawler"], id="no-user-agent"),
    pytest.param([(0, "1.1.1.1", BROWSER), (24 * 60 + 1, "1.1.1.1", BROWSER)], ["counted", "counted"],
                 id="new-day-new-salt"),
])
def test_counting_rules(counter, clock, steps, expected) -> None:  # type: ignore[no-untyped-def]
    view_counter, articles = counter
    outcomes = []
    for minutes, ip, agent in steps:
        clock.now = NOW + timedelta(minutes=minutes)
        outcomes.append(view_counter.record(articles[0].id, ip, agent))
    assert outcomes == expected
    view_counter.flush()
    assert total_views(view_counter._store.engine) == expected.count("counted")


def test_unknown_articles_store_nothing(counter) -> None:  # type: ignore[no-untyped-def]
    view_counter, _ = counter
    assert view_counter.record("nosucharticle", "1.1.1.1", BROWSER) == "unknown"
    assert view_counter.flush() == 0


def test_buffer_writes_hourly_buckets(counter, clock, store) -> None:  # type: ignore[no-untyped-def]
    view_counter, articles = counter
    for i in range(3):
        view_counter.record(articles[0].id, f"10.0.0.{i}", BROWSER)
    clock.now = NOW + timedelta(hours=1, minutes=5)
    view_counter.record(articles[0].id, "10.0.0.9", BROWSER)
    assert view_counter.flush() == 4
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(db.article_views.c.hour_at, db.article_views.c.views)
                            .order_by(db.article_views.c.hour_at)).all()
    assert [(r.hour_at, r.views) for r in rows] == [(NOW, 3), (NOW + timedelta(hours=1), 1)]
    view_counter.record(articles[0].id, "10.0.0.10", BROWSER)
    view_counter.flush()  # the same bucket again: added, not replaced
    assert total_views(store.engine) == 5


def test_ranking_windows_age_limit_and_ties(store, clock) -> None:  # type: ignore[no-untyped-def]
    fresh = make_article(1, published_at=NOW - timedelta(hours=2))
    newer_tie = make_article(2, published_at=NOW - timedelta(hours=1))
    old = make_article(3, published_at=NOW - timedelta(days=20), category="economy")
    store.upsert_articles([fresh, newer_tie, old], source_id=None, now=NOW)
    store.add_views_batch([(fresh.id, NOW - timedelta(minutes=30), 5), (newer_tie.id, NOW - timedelta(hours=5), 5),
                           (old.id, NOW - timedelta(days=3), 50), (fresh.id, NOW - timedelta(days=10), 100)])

    def ranking(window: str, **kw) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
        return [(a.title, a.views) for a in most_viewed(store, window=WINDOWS[window], now=NOW, limit=10, **kw)]

    assert ranking("1h") == [("기사 1", 5)]
    assert ranking("24h") == [("기사 2", 5), ("기사 1", 5)]  # a tie goes to the newer article
    assert ranking("7d") == [("기사 3", 50), ("기사 2", 5), ("기사 1", 5)]
    assert ranking("30d") == [("기사 1", 105), ("기사 3", 50), ("기사 2", 5)]
    assert ranking("30d", max_age=timedelta(days=7)) == [("기사 1", 105), ("기사 2", 5)]
    assert ranking("30d", category="economy") == [("기사 3", 50)]


def test_redirect_tokens_refuse_tampering() -> None:
    redirects = Redirects("test-signing-key-0123456789", "https://news.example.com")
    url = redirects.url("abc123", "email")
    token = url.rsplit("/", 1)[1]
    assert redirects.read(token) == ("abc123", "email")
    assert redirects.read(token[:-2] + ("AA" if not token.endswith("AA") else "BB")) is None
    assert Redirects("another-key-0123456789abc", "https://x").read(token) is None
    with pytest.raises(ValueError):
        redirects.url("abc123", "sms")


@pytest.fixture
def app(tmp_path, clock):  # type: ignore[no-untyped-def]
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path),
                                          extra='\n[admin]\ntoken = "admin-token-0123456789"\n'), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    article = make_article(1, published_at=NOW - timedelta(hours=1))
    services.store.upsert_articles([article, make_article(2, category="economy")], source_id=None, now=NOW)
    with InProcessClient(service.create_app(services)) as client:
        yield client, services, article
    services.engine.dispose()


def test_beacon_over_http(app) -> None:  # type: ignore[no-untyped-def]
    client, services, article = app
    gif = client.get(f"/v/{article.id}.gif", headers={"User-Agent": BROWSER})
    assert gif.status_code == 200 and gif.content == TRANSPARENT_GIF
    assert gif.headers["content-type"] == "image/gif" and gif.headers["cache-control"] == "no-store"
    beacon = client.post(f"/v/{article.id}", headers={"User-Agent": OTHER_BROWSER})
    assert beacon.status_code == 204
    bot = client.get(f"/v/{article.id}.gif", headers={"User-Agent": "Googlebot/2.1"})
    assert bot.status_code == 200  # answered like anyone, not counted
    assert client.get("/v/nosuchid.gif", headers={"User-Agent": BROWSER}).status_code == 404
    assert client.post("/v/nosuchid", headers={"User-Agent": BROWSER}).status_code == 404
    services.view_counter.flush()
    assert total_views(services.engine) == 2

    popular = client.get("/api/popular?window=1h", headers={"Authorization": "Bearer admin-token-0123456789"}).json()
    assert popular["next_cursor"] is None  # a ranking is one page: its `limit` is how many to rank
    assert popular["items"] == [{"rank": 1, "id": article.id, "title": "기사 1", "url": "https://news.example.com/1",
                        "category": "politics", "byline": "홍길동 기자", "published_at": "2026-11-24T23:00:00Z",
                        "views": 2}]
    assert client.get("/api/popular?window=2h",
                      headers={"Authorization": "Bearer admin-token-0123456789"}).status_code == 422
    assert client.get("/api/popular?category=sports",
                      headers={"Authorization": "Bearer admin-token-0123456789"}).status_code == 404


def test_category_popular_feed(app) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = app
    for fmt in ("rss", "atom", "json"):
        assert client.get(f"/feeds/popular.{fmt}").status_code == 200
    response = client.get("/feeds/politics/popular.rss")
    assert response.status_code == 200 and "기사 1" in response.text and "기사 2" not in response.text
    assert client.get("/feeds/sports/popular.rss").status_code == 404


def test_signed_redirect_counts_a_click_and_goes_only_to_the_article(app) -> None:  # type: ignore[no-untyped-def]
    client, services, article = app
    url = services.redirects.url(article.id, "email")
    response = client.get(url, headers={"User-Agent": BROWSER})
    assert response.status_code == 302 and response.headers["location"] == "https://news.example.com/1"
    assert services.store.clicks(article.id) == {"email": 1}
    tampered = url[:-3] + "xyz"
    assert client.get(tampered).status_code == 404
    forged = services.redirects.url("nosuchid", "feed")
    assert client.get(forged).status_code == 404
    assert services.store.clicks(article.id) == {"email": 1}


@pytest.mark.slow
def test_graceful_stop_flushes_every_counted_view(tmp_path) -> None:
    """A real `gazette serve` process: the point is what it does on SIGTERM."""
    database_url = migrated_sqlite_url(tmp_path)
    config = write_config(tmp_path / "gazette.toml", database_url=database_url,
                          extra='\n[views]\nflush_interval = "1h"\nflush_events = 100000\n')
    engine = database.make_engine(database_url)
    from feeds.store import ArticleStore

    store = ArticleStore(engine)
    settings = load_settings(config, {})
    store.sync_config(settings.categories, (), (), NOW)
    article = make_article(1)
    store.upsert_articles([article], source_id=None, now=NOW)
    port = free_port()
    with open(tmp_path / "serve.log", "wb") as log:
        process = subprocess.Popen(gazette_command() + ["--config", str(config), "serve", "--port", str(port)],
                                   cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(port, process)
        with httpx.Client() as client:
            for i in range(137):
                assert client.post(f"http://127.0.0.1:{port}/v/{article.id}",
                                   headers={"User-Agent": f"{BROWSER} visitor-{i}", "X-Forwarded-For": f"10.0.{i}.1"},
                                   ).status_code == 204
        assert total_views(engine) == 0  # still buffered: the flush interval is an hour
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert total_views(engine) == 137
    engine.dispose()
