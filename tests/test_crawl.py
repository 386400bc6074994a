"""The `html` source kind end to end over loopback HTTP: a section page or a sitemap -> article pages -> store."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from feeds.ingest import IngestPolicy, ingest_source
from feeds.settings import SourceSettings
from tests.conftest import DATA, NOW
from tests.test_fetch import Site, respond

PAGES = DATA / "pages"
POLICY = IngestPolicy(timezone=ZoneInfo("Asia/Seoul"))


def page(name: str, site: Site) -> bytes:
    """A test page moved onto the loopback site, so its canonical URLs are the ones we serve."""
    return (PAGES / name).read_bytes().replace(b"https://hanbit-ilbo.example", site.url.encode())


def listing(site: Site, *ids: str) -> bytes:
    links = "".join(f'<li><a href="/news/articleView.html?idxno={i}">기사 {i}</a></li>' for i in ids)
    return (f'<html><head><meta charset="utf-8"><title>정치</title></head><body><nav><a href="/">홈</a>'
            f'<a href="/news/articleList.html?sc_section_code=S1N1">정치</a></nav><ul class="list">{links}</ul>'
            f'<footer><a href="/about">회사소개</a></footer></body></html>').encode()


@pytest.fixture
def site():  # type: ignore[no-untyped-def]
    s = Site()
    yield s
    s.close()


def html_source(url: str) -> SourceSettings:
    return SourceSettings(name="site", kind="html", url=url, path=None, interval=timedelta(minutes=10),
                          category="society", category_map={"정치": "politics", "경제": "economy"},
                          allow_private_network=True)  # the test site is on loopback


def test_section_page_fetches_only_new_articles(site, store, settings, clock) -> None:  # type: ignore[no-untyped-def]
    from feeds.fetch import HostLimiter, HttpFetcher

    fetcher = HttpFetcher(limiter=HostLimiter(2, 0))
    site.routes["/news/articleView.html?idxno=20451"] = respond(200, page("jsonld_article.html", site),
                                                                Content_Type="text/html; charset=utf-8")
    site.routes["/news/articleView.html?idxno=20477"] = respond(200, page("opengraph_only.html", site),
                                                                Content_Type="text/html; charset=utf-8")
    site.routes["/list"] = respond(200, listing(site, "20451"), Content_Type="text/html; charset=utf-8")
    source = html_source(site.url + "/list")
    store.sync_config(settings.categories, [source], (), NOW)

    first = ingest_source(source, store=store, fetcher=fetcher, now=NOW, policy=POLICY)
    assert first.line() == "site: new (1 new, 0 updated, 0 unchanged)"
    article = store.articles()[0]
    assert article.url == f"{site.url}/news/articleView.html?idxno=20451"
    assert "저작권자" not in article.content_html and article.byline

    site.routes["/list"] = respond(200, listing(site, "20477", "20451"), Content_Type="text/html; charset=utf-8")
    second = ingest_source(source, store=store, fetcher=fetcher, now=NOW + timedelta(minutes=10), policy=POLICY)
    assert second.counts.new == 1
    assert site.hits["/news/articleView.html?idxno=20451"] == 1  # stored already: not fetched again
    assert site.hits["/news/articleView.html?idxno=20477"] == 1
    fetcher.close()


def test_sitemap_refetches_pages_it_says_changed(site, store, settings) -> None:  # type: ignore[no-untyped-def]
    from feeds.fetch import HostLimiter, HttpFetcher

    fetcher = HttpFetcher(limiter=HostLimiter(2, 0))
    url = f"{site.url}/news/articleView.html?idxno=20451"
    site.routes["/news/articleView.html?idxno=20451"] = respond(200, page("jsonld_article.html", site))

    def sitemap(lastmod: str) -> bytes:
        return (f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"<url><loc>{url}</loc><lastmod>{lastmod}</lastmod></url>"
                f"<url><loc>{site.url}/news/articleView.html?idxno=404</loc></url></urlset>").encode()

    site.routes["/sitemap.xml"] = respond(200, sitemap("2026-11-24T10:00:00+09:00"))
    source = html_source(site.url + "/sitemap.xml")
    store.sync_config(settings.categories, [source], (), NOW)
    first = ingest_source(source, store=store, fetcher=fetcher, now=NOW, policy=POLICY)
    assert first.counts.new == 1
    assert first.notes and "1 unreadable items skipped" in first.notes[0] and "HTTP 404" in first.notes[0]

    site.routes["/sitemap.xml"] = respond(200, sitemap("2026-11-24T10:00:00+09:00") + b" ")  # new bytes, same news
    ingest_source(source, store=store, fetcher=fetcher, now=NOW + timedelta(minutes=10), policy=POLICY)
    assert site.hits["/news/articleView.html?idxno=20451"] == 1

    site.routes["/sitemap.xml"] = respond(200, sitemap("2026-11-25T10:00:00+09:00"))  # edited after we fetched
    third = ingest_source(source, store=store, fetcher=fetcher, now=NOW + timedelta(hours=2), policy=POLICY)
    assert site.hits["/news/articleView.html?idxno=20451"] == 2
    assert third.counts.unchanged == 1  # same content: nothing written but the time it was seen
    site.routes["/sitemap.xml"] = respond(200, sitemap("2026-11-25T10:00:00+09:00") + b"  ")
    ingest_source(source, store=store, fetcher=fetcher, now=NOW + timedelta(hours=3), policy=POLICY)
    assert site.hits["/news/articleView.html?idxno=20451"] == 2  # seen after its lastmod: not again
    fetcher.close()


def test_a_page_without_article_links_is_an_error(site, store, settings) -> None:  # type: ignore[no-untyped-def]
    from feeds.fetch import HttpFetcher

    fetcher = HttpFetcher()
    site.routes["/empty"] = respond(200, b"<html><body><p>nothing here</p></body></html>")
    source = html_source(site.url + "/empty")
    store.sync_config(settings.categories, [source], (), NOW)
    result = ingest_source(source, store=store, fetcher=fetcher, now=NOW, policy=POLICY)
    assert result.status == "error" and "no article links" in result.error
    fetcher.close()
