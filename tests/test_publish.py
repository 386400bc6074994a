"""Publishing: rebuilds only what changed, serves from memory, RFC 5005 archives, the news sitemap, WebSub."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import sqlalchemy as sa

from feeds.publish import FeedPublisher, FeedRefresher
from newsletter.settings import load_settings
from feeds.websub import HubNotifier
from tests.conftest import NOW, InProcessClient, migrated_sqlite_url, wait_until, write_config
from tests.test_store import make_article

ATOM = "{http://www.w3.org/2005/Atom}"
FH = "{http://purl.org/syndication/history/1.0}"


def test_a_new_article_rebuilds_only_the_feeds_that_hold_it(store, settings, clock) -> None:  # type: ignore[no-untyped-def]
    publisher = FeedPublisher(settings, store, clock)
    store.upsert_articles([make_article(1, category="politics"), make_article(2, category="economy")],
                          source_id=None, now=NOW)
    assert set(publisher.refresh()) == {"all", "popular", "politics", "economy", "politics/popular",
                                        "economy/popular"}
    assert publisher.refresh() == []  # nothing changed: nothing rebuilt
    before = publisher.get("economy", "rss")
    store.upsert_articles([make_article(3, category="politics")], source_id=None, now=NOW + timedelta(minutes=1))
    assert set(publisher.refresh()) == {"all", "popular", "politics", "politics/popular"}
    assert publisher.get("economy", "rss") is before  # the same object: not rebuilt


def test_requests_are_served_from_memory(store, settings, clock) -> None:  # type: ignore[no-untyped-def]
    publisher = FeedPublisher(settings, store, clock)
    store.upsert_articles([make_article(1)], source_id=None, now=NOW)
    publisher.refresh()
    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    for _ in range(5):
        assert publisher.get("politics", "atom") is not None
    assert statements == []


def test_monthly_archives_follow_rfc_5005_and_never_change(store, settings, clock) -> None:  # type: ignore[no-untyped-def]
    kst = settings.site.timezone
    clock.now = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
    october = [make_article(i, published_at=datetime(2026, 10, 10 + i, 9, tzinfo=kst)) for i in range(3)]
    september = [make_article(9, published_at=datetime(2026, 9, 30, 23, 30, tzinfo=kst))]  # 14:30 UTC, still Sept
    november = [make_article(20, published_at=datetime(2026, 11, 1, 0, 30, tzinfo=kst))]  # Oct 31 in UTC
    store.upsert_articles(october + september + november, source_id=None, now=clock())
    publisher = FeedPublisher(settings, store, clock)

    archive = publisher.archive("politics", "2026-10")
    feed = ET.fromstring(archive.body)
    assert feed.find(f"{FH}archive") is not None
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    base = "https://news.example.com/feeds/politics"
    assert links["self"] == f"{base}/archive/2026-10.atom"
    assert links["current"] == f"{base}.atom"
    assert links["prev-archive"] == f"{base}/archive/2026-09.atom"
    assert links["next-archive"] == f"{base}.atom"  # November is the current month: its feed is the next page
    assert sorted(e.findtext(f"{ATOM}title") for e in feed.findall(f"{ATOM}entry")) == ["기사 0", "기사 1", "기사 2"]

    september_doc = ET.fromstring(publisher.archive("politics", "2026-09").body)
    assert [e.findtext(f"{ATOM}title") for e in september_doc.findall(f"{ATOM}entry")] == ["기사 9"]
    assert "prev-archive" not in {link.get("rel") for link in september_doc.findall(f"{ATOM}link")}
    assert publisher.archive("politics", "2026-08") is None  # before the first article
    assert publisher.archive("politics", "2026-11") is None  # not over yet
    assert publisher.archive("politics", "2026-13") is None
    assert publisher.archive("popular", "2026-10") is None

    current = ET.fromstring(publisher.get("politics", "atom").body)
    assert {link.get("rel"): link.get("href") for link in current.findall(f"{ATOM}link")}["prev-archive"] == \
        f"{base}/archive/2026-10.atom"

    edited = october[0].__class__(**{**october[0].__dict__, "title": "기사 0 (수정)", "content_hash": "edited"})
    store.upsert_articles([edited], source_id=None, now=clock())
    assert publisher.archive("politics", "2026-10").body == archive.body  # a finished month stays as it was


def test_news_sitemap_lists_the_last_two_days(store, settings, clock) -> None:  # type: ignore[no-untyped-def]
    store.upsert_articles([make_article(1, published_at=NOW - timedelta(hours=3)),
                           make_article(2, published_at=NOW - timedelta(days=3))], source_id=None, now=NOW)
    body = FeedPublisher(settings, store, clock).news_sitemap().body
    root = ET.fromstring(body)
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9", "n": "http://www.google.com/schemas/sitemap-news/0.9"}
    urls = root.findall("s:url", ns)
    assert [u.findtext("s:loc", namespaces=ns) for u in urls] == ["https://news.example.com/1"]
    assert urls[0].findtext("n:news/n:publication/n:name", namespaces=ns) == "한빛일보"
    assert urls[0].findtext("n:news/n:publication/n:language", namespaces=ns) == "ko"
    assert urls[0].findtext("n:news/n:publication_date", namespaces=ns) == "2026-11-25T06:00:00+09:00"
    assert urls[0].findtext("n:news/n:title", namespaces=ns) == "기사 1"


class Hub:
    """A WebSub hub on loopback: takes publish notices, fetches each topic as a hub does, can fail first."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.fetched: dict[str, bytes] = {}
        self.notices: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                if hub.failures > 0:
                    hub.failures -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                assert form["hub.mode"] == ["publish"]
                topic = form["hub.url"][0]
                hub.notices.append(topic)
                self.send_response(202)
                self.end_headers()
                hub.fetched[topic] = hub.topic_source(topic)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub"
        self.topic_source = lambda topic: b""
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub():  # type: ignore[no-untyped-def]
    h = Hub(failures=2)
    yield h
    h.close()


def test_websub_hub_is_told_and_reads_the_new_article(tmp_path, clock, hub) -> None:  # type: ignore[no-untyped-def]
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path),
                                          extra=f'\n[feeds]\nhubs = ["{hub.url}"]\nrefresh = "1s"\n'), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    with InProcessClient(service.create_app(services)) as client:
        # The hub (a real HTTP server: the app posts to it) fetches each topic from the app, as from base_url.
        hub.topic_source = lambda topic: client.get(topic).content
        wait_until(lambda: len(hub.notices) == 18, 15)  # first round: 6 feeds x 3 formats, after two 503s and retries
        hub.notices.clear()
        services.store.upsert_articles([make_article(7, category="economy", title="수출 최대")], source_id=None,
                                       now=NOW)
        economy_atom = "https://news.example.com/feeds/economy.atom"
        wait_until(lambda: len(hub.notices) == 12, 15)  # all, popular, economy, economy/popular
        assert economy_atom in hub.notices and "https://news.example.com/feeds/politics.rss" not in hub.notices
        assert "수출 최대".encode() in hub.fetched[economy_atom]
        assert services.store.published_versions().keys() == {"all", "popular", "politics", "economy",
                                                              "politics/popular", "economy/popular"}

        response = client.get("/feeds/economy.atom")
        assert response.headers["link"] == f'<{hub.url}>; rel="hub", <{economy_atom}>; rel="self"'
        feed = ET.fromstring(response.content)
        assert [link.get("href") for link in feed.findall(f"{ATOM}link[@rel='hub']")] == [hub.url]
        rss = ET.fromstring(client.get("/feeds/economy.rss").content)
        assert [link.get("href") for link in rss.findall(f"channel/{ATOM}link[@rel='hub']")] == [hub.url]
        assert rss.findtext("channel/link") == "https://news.example.com/"
        doc = client.get("/feeds/economy.json").json()
        assert doc["hubs"] == [{"type": "WebSub", "url": hub.url}]
    services.engine.dispose()


def test_only_the_announcer_announces_and_only_once(store, settings, clock) -> None:  # type: ignore[no-untyped-def]
    topics: list[str] = []
    publisher = FeedPublisher(settings, store, clock)
    leader = FeedRefresher(publisher, store, timedelta(seconds=1), announce=topics.extend, is_announcer=lambda: True,
                           clock=clock)
    follower = FeedRefresher(FeedPublisher(settings, store, clock), store, timedelta(seconds=1),
                             announce=topics.extend, is_announcer=lambda: False, clock=clock)
    assert len(leader.step()) == 6
    store.upsert_articles([make_article(1)], source_id=None, now=NOW)
    assert follower.step() == []
    assert set(leader.step()) == {"all", "popular", "politics", "politics/popular"}
    restarted = FeedRefresher(FeedPublisher(settings, store, clock), store, timedelta(seconds=1),
                              announce=topics.extend, is_announcer=lambda: True, clock=clock)
    assert restarted.step() == []  # the announced versions are stored: a restart does not announce again
    assert len(topics) == 10 * 3


def test_notifier_gives_up_after_its_attempts_and_says_why() -> None:
    notifier = HubNotifier(["http://127.0.0.1:1/hub"], attempts=2, first_delay=0.01)
    notifier.publish(["https://news.example.com/feeds/all.rss"])
    assert notifier.wait_idle(10)
    assert len(notifier.failed) == 1 and "ConnectError" in notifier.failed[0][2]
    notifier.close()


def test_archive_and_sitemap_routes(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path)), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    services.store.upsert_articles([make_article(1, published_at=datetime(2026, 10, 5, tzinfo=timezone.utc)),
                                    make_article(2, published_at=NOW - timedelta(hours=1))], source_id=None, now=NOW)
    with InProcessClient(service.create_app(services)) as client:
        archive = client.get("/feeds/politics/archive/2026-10.atom")
        assert archive.status_code == 200 and archive.headers["content-type"].startswith("application/atom+xml")
        assert archive.headers["cache-control"] == "public, max-age=3600"
        assert client.get("/feeds/politics/archive/2026-10.atom",
                          headers={"If-None-Match": archive.headers["etag"]}).status_code == 304
        assert client.get("/feeds/politics/archive/1999-01.atom").status_code == 404
        assert client.get("/feeds/politics/archive/october.atom").status_code == 404
        sitemap = client.get("/sitemap-news.xml")
        assert sitemap.status_code == 200 and b"<news:title>" in sitemap.content
    services.engine.dispose()


def test_item_count_and_full_content_per_feed(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path),
                                          extra="\n[feeds]\nitems = 3\nper_feed.popular = { items = 2, full_content = false }\n"), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    services.store.upsert_articles([make_article(i, published_at=NOW - timedelta(hours=i)) for i in range(5)],
                                   source_id=None, now=NOW)
    popular = ET.fromstring(services.publisher.get("popular", "atom").body)
    everything = ET.fromstring(services.publisher.get("all", "atom").body)
    assert len(popular.findall(f"{ATOM}entry")) == 2 and popular.find(f"{ATOM}entry/{ATOM}content") is None
    assert len(everything.findall(f"{ATOM}entry")) == 3 and everything.find(f"{ATOM}entry/{ATOM}content") is not None
    services.engine.dispose()


def test_an_article_no_feed_can_render_is_left_out_and_counted(store, settings, clock) -> None:  # type: ignore[no-untyped-def]
    """A .NET CMS's empty date (0001-01-01T00:00:00Z) cannot be shown in New York time: that article is left out of
    every feed and counted on its source's health and in /metrics; the feeds themselves stay up."""
    from dataclasses import replace as dc_replace
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from feeds.metrics import content_metrics
    from feeds.settings import SourceSettings

    source = SourceSettings(name="cms", kind="jsonl", url=None, path=Path("cms.jsonl"), interval=timedelta(minutes=10),
                            category="politics", category_map={})
    store.sync_config(settings.categories, [source], (), NOW)
    cms = store.source("cms")
    dawn_of_time = datetime(1, 1, 1, tzinfo=timezone.utc)
    store.upsert_articles([make_article(1), make_article(2, published_at=dawn_of_time)], source_id=cms.id, now=NOW)
    new_york = dc_replace(settings, site=dc_replace(settings.site, timezone=ZoneInfo("America/New_York")),
                          sources=(source,))
    publisher = FeedPublisher(new_york, store, clock)
    for fmt in ("rss", "atom", "json"):
        body = publisher.get("all", fmt).body  # type: ignore[union-attr]
        assert "기사 1".encode() in body and "기사 2".encode() not in body
    health = store.source("cms")
    assert health.skipped_items >= 3 and "OverflowError" in (health.last_skip or "")
    [family] = [f for f in content_metrics(new_york, store, NOW) if f.name == "gazette_source_skipped_items"]
    assert family.samples[0].value >= 3
