"""Class 2: a source must not lead Gazette to addresses the operator did not allow (SSRF).

Two real servers on loopback: the newsroom's "public" site on 127.0.0.2 (the test's address rule counts it as
public, and its host name `news.example.test` resolves to it), and an "internal" service on 127.0.0.1 holding a
secret page. Sitemaps, sitemap indexes, section pages and redirects of the public site point at the internal one
in every way found in the wild; nothing may reach it, and no secret may become an article.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo

import pytest

from feeds.errors import FetchError
from feeds.ingest import IngestPolicy, ingest_source
from feeds.settings import SourceSettings
from feeds.store import ArticleStore
from tests.conftest import DATA, NOW
from tests.test_fetch import RSS, Site, respond

POLICY = IngestPolicy(timezone=ZoneInfo("Asia/Seoul"))
SECRET = "SECRET-INTERNAL-7f3a"
ARTICLE = (DATA / "pages" / "jsonld_article.html").read_bytes()
SECRET_PAGE = ARTICLE.replace("국회".encode(), SECRET.encode()).replace(b"<title>", f"<title>{SECRET} ".encode())


@pytest.fixture
def database_url(migrated_sqlite: Path, tmp_path: Path) -> str:
    """SQLite only: what is fetched is the point here, not where it is stored."""
    from tests.conftest import sqlite_copy

    return sqlite_copy(migrated_sqlite, tmp_path)


@pytest.fixture
def sites() -> Iterator[tuple[Site, Site]]:
    public = Site("127.0.0.2")
    internal = Site("127.0.0.1", public.port)  # the same port: a rebinding host name reaches it unchanged
    internal.routes["/secret"] = respond(200, SECRET_PAGE, Content_Type="text/html; charset=utf-8")
    internal.routes["/feed.xml"] = respond(200, RSS.replace("시의회".encode(), SECRET.encode()))
    public.routes["/news/1"] = respond(200, ARTICLE.replace(b"https://hanbit-ilbo.example", public.url.encode()),
                                       Content_Type="text/html; charset=utf-8")
    yield public, internal
    public.close()
    internal.close()


class Network:
    """DNS and the address rule of a small world: news.example.test is public, internal.example.test is not, and
    rebind.example.test answers public first and internal afterwards (DNS rebinding)."""

    def __init__(self) -> None:
        self.rebind_lookups = 0

    def resolve(self, host: str, port: int) -> list[str]:
        if host == "news.example.test":
            return ["127.0.0.2"]
        if host == "internal.example.test":
            return ["127.0.0.1"]
        if host == "rebind.example.test":
            self.rebind_lookups += 1
            return ["127.0.0.2"] if self.rebind_lookups == 1 else ["127.0.0.1"]
        return list(dict.fromkeys(i[4][0] for i in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))

    @staticmethod
    def rule(address: str) -> str | None:
        from feeds.outbound import refused_reason

        return None if address == "127.0.0.2" else refused_reason(address)


@pytest.fixture
def network() -> Network:
    return Network()


@pytest.fixture
def fetcher(network: Network):  # type: ignore[no-untyped-def]
    from feeds.fetch import HostLimiter, HttpFetcher

    f = HttpFetcher(timeout=2, deadline=5, limiter=HostLimiter(4, 0), resolver=network.resolve, rule=network.rule)
    yield f
    f.close()


def html_source(url: str, **options: object) -> SourceSettings:
    return SourceSettings(name="site", kind="html", url=url, path=None, interval=timedelta(minutes=10),
                          category="politics", category_map={}, **options)  # type: ignore[arg-type]


def feed_source(url: str, **options: object) -> SourceSettings:
    return SourceSettings(name="wire", kind="feed", url=url, path=None, interval=timedelta(minutes=10),
                          category="politics", category_map={}, **options)  # type: ignore[arg-type]


def sitemap(*locs: str, index: bool = False) -> bytes:
    tag, item = ("sitemapindex", "sitemap") if index else ("urlset", "url")
    body = "".join(f"<{item}><loc>{loc}</loc><lastmod>2026-11-24T10:0{i}:00+09:00</lastmod></{item}>"
                   for i, loc in enumerate(locs))
    return (f'<?xml version="1.0" encoding="UTF-8"?><{tag} xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{body}</{tag}>").encode()


def no_secret(store: ArticleStore) -> bool:
    return all(SECRET not in a.title + a.summary + a.content_html for a in store.articles(limit=1000))


INTERNAL_LOCS = [
    pytest.param("http://127.0.0.1:{port}/secret", id="loopback"),
    pytest.param("http://localhost:{port}/secret", id="localhost"),
    pytest.param("http://2130706433:{port}/secret", id="decimal-ip"),
    pytest.param("http://0x7f.1:{port}/secret", id="hex-ip"),
    pytest.param("http://[::1]:{port}/secret", id="ipv6-loopback"),
    pytest.param("http://[::ffff:127.0.0.1]:{port}/secret", id="ipv4-mapped-ipv6"),
    pytest.param("http://169.254.169.254/latest/meta-data/", id="cloud-metadata"),
    pytest.param("http://internal.example.test:{port}/secret", id="another-host-by-name"),
    pytest.param("file:///etc/passwd", id="file-url"),
    pytest.param("gopher://127.0.0.1:{port}/_secret", id="gopher"),
]


@pytest.mark.parametrize("loc", INTERNAL_LOCS)
def test_sitemap_locs_never_reach_internal_addresses(sites, fetcher, store, settings, loc: str) -> None:  # type: ignore[no-untyped-def]
    public, internal = sites
    public.routes["/sitemap.xml"] = respond(200, sitemap(loc.format(port=internal.port),
                                                         "http://news.example.test:{}/news/1".format(public.port)))
    source = html_source(f"http://news.example.test:{public.port}/sitemap.xml")
    store.sync_config(settings.categories, [source], (), NOW)
    result = ingest_source(source, store=store, fetcher=fetcher, now=NOW, policy=POLICY)
    assert result.counts.new == 1, result.line()  # the page on the site itself is read
    assert internal.hits == {} and no_secret(store)
    assert any("off the source's site left out" in note for note in result.notes), result.notes


@pytest.mark.parametrize("loc", INTERNAL_LOCS[:4])
def test_sitemap_index_children_never_reach_internal_addresses(sites, fetcher, store, settings, loc: str) -> None:  # type: ignore[no-untyped-def]
    public, internal = sites
    internal.routes["/child.xml"] = respond(200, sitemap(f"http://127.0.0.1:{internal.port}/secret"))
    public.routes["/index.xml"] = respond(200, sitemap(loc.format(port=internal.port).replace("/secret", "/child.xml"),
                                                       f"http://news.example.test:{public.port}/child.xml", index=True))
    public.routes["/child.xml"] = respond(200, sitemap(f"http://news.example.test:{public.port}/news/1"))
    source = html_source(f"http://news.example.test:{public.port}/index.xml")
    store.sync_config(settings.categories, [source], (), NOW)
    assert ingest_source(source, store=store, fetcher=fetcher, now=NOW, policy=POLICY).counts.new == 1
    assert internal.hits == {} and no_secret(store)


def test_section_page_links_stay_on_the_site(sites, fetcher, store, settings) -> None:  # type: ignore[no-untyped-def]
    public, internal = sites
    links = "".join(f'<a href="{href}">기사</a>' for href in (
        f"http://127.0.0.1:{internal.port}/news/articleView.html?idxno=1", "/news/articleView.html?idxno=2"))
    public.routes["/list"] = respond(200, f"<html><body>{links}</body></html>".encode(),
                                     Content_Type="text/html; charset=utf-8")
    public.routes["/news/articleView.html?idxno=2"] = public.routes["/news/1"]
    source = html_source(f"http://news.example.test:{public.port}/list")
    store.sync_config(settings.categories, [source], (), NOW)
    assert ingest_source(source, store=store, fetcher=fetcher, now=NOW, policy=POLICY).counts.new == 1
    assert internal.hits == {}


def test_dns_rebinding_is_checked_at_connect_time(sites, fetcher, store, settings, network) -> None:  # type: ignore[no-untyped-def]
    public, internal = sites
    # The sitemap comes from rebind.example.test while it resolves to the public address; its page is on the
    # same host name, which by then resolves to the internal one (the site closes the connection, so the next
    # request connects, and resolves, again).
    public.routes["/sitemap.xml"] = respond(200, sitemap(f"http://rebind.example.test:{public.port}/secret"),
                                            Connection="close")
    source = html_source(f"http://rebind.example.test:{public.port}/sitemap.xml")
    store.sync_config(settings.categories, [source], (), NOW)
    result = ingest_source(source, store=store, fetcher=fetcher, now=NOW, policy=POLICY)
    assert result.status == "error" and "127.0.0.1 (loopback)" in (result.error or ""), result.line()
    assert network.rebind_lookups >= 2 and internal.hits == {} and no_secret(store)


@pytest.mark.parametrize(("status", "location"), [
    (301, "http://127.0.0.1:{port}/feed.xml"), (308, "http://2130706433:{port}/feed.xml"),
    (302, "http://169.254.169.254/latest/meta-data/"), (301, "file:///etc/passwd"),
    (301, "http://internal.example.test:{port}/feed.xml"),
])
def test_a_redirect_never_moves_a_source_to_a_refused_address(sites, fetcher, store, settings, status: int,  # type: ignore[no-untyped-def]
                                                              location: str) -> None:
    public, internal = sites
    public.routes["/feed.xml"] = respond(status, Location=location.format(port=internal.port))
    source = feed_source(f"http://news.example.test:{public.port}/feed.xml")
    store.sync_config(settings.categories, [source], (), NOW)
    result = ingest_source(source, store=store, fetcher=fetcher, now=NOW, policy=POLICY)
    assert result.status == "error" and "refused" in (result.error or ""), result.line()
    state = store.source("wire")
    assert state.fetch_url is None and state.consecutive_failures == 1  # not moved; marked failing
    assert internal.hits == {} and no_secret(store)


def test_an_intranet_source_is_allowed_only_when_the_operator_says_so(sites, fetcher, store, settings) -> None:  # type: ignore[no-untyped-def]
    _, internal = sites
    closed = feed_source(f"http://127.0.0.1:{internal.port}/feed.xml")
    store.sync_config(settings.categories, [closed], (), NOW)
    refused = ingest_source(closed, store=store, fetcher=fetcher, now=NOW, policy=POLICY)
    assert refused.status == "error" and "allow_private_network" in (refused.error or "") and internal.hits == {}
    opened = feed_source(f"http://127.0.0.1:{internal.port}/feed.xml", allow_private_network=True)
    assert ingest_source(opened, store=store, fetcher=fetcher, now=NOW, policy=POLICY).counts.new == 2


def test_local_files_are_read_only_as_a_sources_own_path(tmp_path: Path, fetcher, store, settings) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret.html"
    secret.write_bytes(SECRET_PAGE)
    listing = tmp_path / "sitemap.xml"
    listing.write_bytes(sitemap(str(secret), f"file://{secret}", "../secret.html"))
    source = SourceSettings(name="local", kind="html", url=None, path=listing, interval=timedelta(minutes=10),
                            category="politics", category_map={})
    store.sync_config(settings.categories, [source], (), NOW)
    result = ingest_source(source, store=store, fetcher=fetcher, now=NOW, policy=POLICY)
    assert result.status == "error" and "no article links" in (result.error or "")  # its own file was read
    assert no_secret(store)
    with pytest.raises(FetchError, match="local files are read only"):
        fetcher.fetch(str(secret), __import__("feeds.fetch").fetch.Validators())


@pytest.mark.parametrize(("address", "refused"), [
    ("127.0.0.1", "loopback"), ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.0.10", "private"),
    ("169.254.169.254", "link-local"), ("100.64.0.1", "not globally reachable"), ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"), ("240.0.0.1", "reserved"), ("::1", "loopback"), ("fe80::1", "link-local"),
    ("fc00::1", "private"), ("::ffff:127.0.0.1", "loopback"), ("2002:7f00:1::1", "loopback"),
    ("64:ff9b::a00:1", "private"), ("93.184.216.34", None), ("2606:2800:220:1:248:1893:25c8:1946", None),
    ("211.249.220.24", None),
])
def test_address_rule(address: str, refused: str | None) -> None:
    from feeds.outbound import refused_reason

    reason = refused_reason(address)
    assert (reason is None) if refused is None else (reason is not None and refused in reason), reason


@pytest.mark.parametrize(("url", "hosts", "allowed"), [
    ("https://news.example.com/a", ("news.example.com",), True),
    ("https://www.news.example.com/a", ("news.example.com",), True),
    ("https://img.news.example.com/a", ("news.example.com",), True),
    ("https://news.example.com.evil.test/a", ("news.example.com",), False),
    ("https://evilnews.example.com/a", ("news.example.com",), False),
    ("https://user@evil.test@news.example.com/a", ("news.example.com",), True),  # the host is what is after @
    ("https://news.example.com@evil.test/a", ("news.example.com",), False),
    ("ftp://news.example.com/a", None, False), ("file:///etc/passwd", None, False), ("//evil.test/a", None, False),
    ("javascript:alert(1)", None, False), ("http:///nohost", None, False),
])
def test_url_rule(url: str, hosts: tuple[str, ...] | None, allowed: bool) -> None:
    from feeds.outbound import OutboundPolicy, RefusedError

    try:
        OutboundPolicy(hosts=hosts).check_url(url)
    except RefusedError:
        assert not allowed
    else:
        assert allowed
