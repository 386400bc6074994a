"""Feeds over HTTP, the whole app in-process: formats, conditional GET, gzip, HEAD, discovery, OPML, errors, health.

The real-server path (uvicorn, `gazette serve`) is covered by the CLI and operator tests."""

from __future__ import annotations

import gzip
import json
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import sqlalchemy

from feeds.ingest import ingest_all
from feeds.fetch import HttpFetcher
from feeds.opml import FeedFormat, FeedLinks, build_opml
from newsletter.settings import load_settings
from tests.conftest import DATA, InProcessClient, write_config

ATOM = "{http://www.w3.org/2005/Atom}"
EXTRA = f"""
[[sources]]
name = "wire"
kind = "feed"
path = "{DATA / 'sources' / 'rss_hostile.xml'}"
category_map = {{ "정치" = "politics", "경제" = "economy" }}
"""


@pytest.fixture
def app(tmp_path, database_url, clock):  # type: ignore[no-untyped-def]
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url, extra=EXTRA), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    fetcher = HttpFetcher()
    results = ingest_all(settings.sources, store=services.store, fetcher=fetcher, clock=clock)
    fetcher.close()
    assert [r.status for r in results] == ["new"]
    with InProcessClient(service.create_app(services)) as client:
        yield client, services
    services.store.engine.dispose()
    services.engine.dispose()


def test_feeds_in_every_format(app) -> None:  # type: ignore[no-untyped-def]
    client, _ = app
    rss = client.get("/feeds/all.rss")
    assert rss.status_code == 200
    assert rss.headers["content-type"] == "application/rss+xml; charset=utf-8"
    channel = ET.fromstring(rss.content).find("channel")
    assert channel.findtext("link") == "https://news.example.com/"  # the site, not the feed
    assert [i.findtext("title") for i in channel.findall("item")] == ["시의회 & 시청, ‘예산 협의’ 시작", "guid 없는 기사"]
    assert channel.find("item/guid").get("isPermaLink") == "false"
    assert channel.find("item/{http://purl.org/dc/elements/1.1/}creator").text == "김하늘 기자"  # the role is kept

    atom = client.get("/feeds/politics.atom")
    assert atom.headers["content-type"] == "application/atom+xml; charset=utf-8"
    feed = ET.fromstring(atom.content)
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 1
    assert entries[0].find(f"{ATOM}content").get("type") == "html"
    assert entries[0].find(f"{ATOM}category").get("label") == "정치"
    assert feed.find(f"{ATOM}link[@rel='self']").get("href") == "https://news.example.com/feeds/politics.atom"

    doc = client.get("/feeds/economy.json").json()
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert doc["feed_url"] == "https://news.example.com/feeds/economy.json"
    assert [i["title"] for i in doc["items"]] == ["guid 없는 기사"]
    assert doc["items"][0]["date_published"].endswith("+09:00")


def test_feed_bytes_are_stable_between_requests(app) -> None:  # type: ignore[no-untyped-def]
    client, services = app
    first = client.get("/feeds/all.atom")
    services.clock.now += timedelta(hours=3)  # time passes, nothing changes
    second = client.get("/feeds/all.atom")
    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]


def test_conditional_get_and_head(app) -> None:  # type: ignore[no-untyped-def]
    client, _ = app
    url = "/feeds/all.rss"
    first = client.get(url)
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    assert etag.startswith('"') and first.headers["cache-control"] == "public, max-age=300"
    assert last_modified == "Tue, 24 Nov 2026 23:30:00 GMT"  # the newest item, not the time of the request

    not_modified = client.get(url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get(url, headers={"If-Modified-Since": last_modified}).status_code == 304
    older = format_datetime(datetime(2026, 11, 1, tzinfo=timezone.utc), usegmt=True)
    assert client.get(url, headers={"If-Modified-Since": older}).status_code == 200
    assert client.get(url, headers={"If-Modified-Since": "garbage"}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110)
    assert client.get(url, headers={"If-None-Match": '"other"', "If-Modified-Since": last_modified}).status_code == 200

    head = client.head(url)
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag


def test_gzip_when_asked(app) -> None:  # type: ignore[no-untyped-def]
    client, _ = app
    url = "/feeds/all.atom"
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    raw = client.get(url, headers={"Accept-Encoding": "gzip"})  # httpx decodes; check the header and the bytes
    assert raw.headers["content-encoding"] == "gzip" and raw.headers["vary"] == "Accept-Encoding"
    assert raw.content == plain.content
    assert int(raw.headers["content-length"]) == len(gzip.compress(plain.content, mtime=0, compresslevel=9))
    refused = client.get(url, headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


def test_index_has_discovery_links_and_opml(app) -> None:  # type: ignore[no-untyped-def]
    client, _ = app
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<link rel="alternate" type="application/atom+xml" title="한빛일보 — 정치 (Atom 1.0)" ' \
           'href="https://news.example.com/feeds/politics.atom">' in page.text
    assert "시의회 &amp; 시청" in page.text  # escaped
    opml = ET.fromstring(client.get("/opml").content)
    urls = [o.get("xmlUrl") for o in opml.iter("outline")]
    assert "https://news.example.com/feeds/all.rss" in urls and len(urls) == 6  # all, popular, 2 categories x 2


@pytest.mark.parametrize("path", ["/feeds/sports.rss", "/feeds/all.xml", "/nowhere"])
def test_unknown_paths_get_a_404_page(app, path: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = app
    response = client.get(path)
    assert response.status_code == 404 and "text/html" in response.headers["content-type"]


def test_health_checks_the_database(app) -> None:  # type: ignore[no-untyped-def]
    client, services = app
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["database"] == "ok"
    services.store.engine = sqlalchemy.create_engine("sqlite:////nonexistent/dir/x.db")
    broken = client.get("/healthz")
    assert broken.status_code == 503 and broken.json()["status"] == "error"


def test_json_feed_is_valid_json_with_content(app) -> None:  # type: ignore[no-untyped-def]
    client, _ = app
    doc = json.loads(client.get("/feeds/all.json").content)
    assert all(item["id"].startswith("tag:news.example.com,") and item["content_html"] for item in doc["items"])


def test_admin_api_shows_source_health(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    import service

    token = "admin-token-0123456789"
    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=f"sqlite:///{tmp_path / 'g.db'}",
                                          extra=EXTRA + f"""
[[sources]]
name = "missing"
kind = "feed"
path = "{tmp_path / 'absent.xml'}"
category = "politics"

[admin]
token = "{token}"
"""), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    services.ingest_many(settings.sources, on_result=lambda r: None)
    with InProcessClient(service.create_app(services)) as client:
        assert client.get("/api/sources").status_code == 401
        wrong = client.get("/api/sources", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
        message = "missing or wrong admin token (Authorization: Bearer <token>)"
        assert wrong.headers["content-type"] == "application/problem+json"  # RFC 9457, with the older "error" kept
        assert wrong.json() == {"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": message,
                                "error": message}
        health = client.get("/api/sources", headers={"Authorization": f"Bearer {token}"}).json()
        spec = client.get("/api/openapi.json").json()
    by_name = {s["name"]: s for s in health["items"]}
    assert by_name["wire"]["status"] == "ok" and by_name["wire"]["last_success_at"] is not None
    assert by_name["missing"]["status"] == "failing" and by_name["missing"]["consecutive_failures"] == 1
    assert "no such file" in by_name["missing"]["last_error"] and by_name["missing"]["next_check_at"]
    assert "/api/sources" in spec["paths"]
    services.engine.dispose()


def test_admin_api_is_off_without_a_token(app) -> None:  # type: ignore[no-untyped-def]
    client, _ = app
    response = client.get("/api/sources", headers={"Authorization": "Bearer whatever-it-is"})
    assert response.status_code == 403 and "admin API is off" in response.json()["error"]


def test_opml_escapes_every_attribute() -> None:
    hostile = 'A & "B" <c>'
    feed = FeedLinks("x", hostile, "", (FeedFormat("rss", "RSS 2.0", "application/rss+xml",
                                                     "https://news.example.com/feeds/x.rss?a=1&b=2"),))
    opml = ET.fromstring(build_opml("한빛 & <일보>", "https://news.example.com/", [feed]))
    assert opml.findtext("head/title") == "한빛 & <일보>"
    [outline] = opml.iter("outline")
    assert outline.attrib == {"type": "rss", "text": hostile, "title": hostile,
                              "xmlUrl": "https://news.example.com/feeds/x.rss?a=1&b=2",
                              "htmlUrl": "https://news.example.com/"}
