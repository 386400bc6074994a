"""Fetching and ingesting over real HTTP on 127.0.0.1: validators, redirects, 410, 5xx, slow and huge bodies,
encodings, bombs; and property tests that the parsers return items or ParseError, nothing else.

The loopback server is on the private network, which sources may reach only when they say so: the sources here
set `allow_private_network`, and the fetcher's own default policy allows it (tests/security/ proves the refusal).
"""

from __future__ import annotations

import gzip
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from feeds.errors import FetchError, ParseError
from feeds.fetch import HostLimiter, HttpFetcher, Validators
from feeds.ingest import IngestPolicy, backoff, ingest_source
from feeds.outbound import OutboundPolicy
from feeds.parse import decode_document, parse_feed, parse_jsonl
from feeds.settings import SourceSettings
from feeds.store import ArticleStore
from tests.conftest import DATA, NOW

RSS = (DATA / "sources" / "rss_hostile.xml").read_bytes()
Handler = Callable[[BaseHTTPRequestHandler], None]


class Site:
    """A loopback HTTP server whose routes a test sets; counts requests per path. Any 127/8 address will do."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.routes: dict[str, Handler] = {}
        self.hits: dict[str, int] = {}
        self.closing = threading.Event()  # set when the test ends: a handler that stalls waits for it
        self.headers_seen: dict[str, dict[str, str]] = {}
        site = self

        class Request(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                site.hits[self.path] = site.hits.get(self.path, 0) + 1
                site.headers_seen[self.path] = dict(self.headers)
                route = site.routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                route(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Request)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


def respond(status: int, body: bytes = b"", **headers: str) -> Handler:
    def handler(request: BaseHTTPRequestHandler) -> None:
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name.replace("_", "-"), value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
    return handler


def feed_with_etag(body: bytes, etag: str = '"v1"') -> Handler:
    def handler(request: BaseHTTPRequestHandler) -> None:
        if request.headers.get("If-None-Match") == etag:
            respond(304, ETag=etag)(request)
        else:
            respond(200, body, ETag=etag, Content_Type="application/rss+xml; charset=utf-8")(request)
    return handler


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    yield s
    s.close()


@pytest.fixture
def fetcher() -> Iterator[HttpFetcher]:
    f = HttpFetcher(timeout=2, deadline=3, max_bytes=200_000, limiter=HostLimiter(2, 0),
                    policy=OutboundPolicy(allow_private_network=True))
    yield f
    f.close()


def source_at(url: str, name: str = "wire") -> SourceSettings:
    return SourceSettings(name=name, kind="feed", url=url, path=None, interval=timedelta(minutes=10),
                          category="politics", category_map={"정치": "politics", "경제": "economy"},
                          allow_private_network=True)


def sync(store: ArticleStore, settings, *sources: SourceSettings) -> None:  # type: ignore[no-untyped-def]
    store.sync_config(settings.categories, sources, (), NOW)


def test_conditional_get_costs_one_304(site, fetcher, store, settings) -> None:  # type: ignore[no-untyped-def]
    site.routes["/feed.xml"] = feed_with_etag(RSS)
    source = source_at(site.url + "/feed.xml")
    sync(store, settings, source)
    first = ingest_source(source, store=store, fetcher=fetcher, now=NOW)
    assert first.status == "new" and first.counts.new == 2
    second = ingest_source(source, store=store, fetcher=fetcher, now=NOW + timedelta(minutes=10))
    assert second.line() == "wire: unchanged (0 new, 0 updated, 0 unchanged)"
    assert site.headers_seen["/feed.xml"]["If-None-Match"] == '"v1"'
    assert site.hits["/feed.xml"] == 2


def test_same_bytes_without_validators_are_not_parsed_again(site, fetcher, store, settings) -> None:  # type: ignore[no-untyped-def]
    site.routes["/feed.xml"] = respond(200, RSS)
    source = source_at(site.url + "/feed.xml")
    sync(store, settings, source)
    ingest_source(source, store=store, fetcher=fetcher, now=NOW)
    again = ingest_source(source, store=store, fetcher=fetcher, now=NOW + timedelta(minutes=10))
    assert again.notes == ("same bytes as last time",)


def test_permanent_redirect_moves_the_source_temporary_does_not(site, fetcher, store, settings) -> None:  # type: ignore[no-untyped-def]
    site.routes["/old.xml"] = respond(301, Location="/new.xml")
    site.routes["/new.xml"] = respond(200, RSS)
    site.routes["/tmp.xml"] = respond(302, Location="/new.xml")
    moved, temporary = source_at(site.url + "/old.xml", "moved"), source_at(site.url + "/tmp.xml", "temporary")
    sync(store, settings, moved, temporary)
    result = ingest_source(moved, store=store, fetcher=fetcher, now=NOW)
    assert f"moved permanently to {site.url}/new.xml" in result.notes
    assert store.source("moved").fetch_url == f"{site.url}/new.xml"
    ingest_source(moved, store=store, fetcher=fetcher, now=NOW + timedelta(minutes=10))
    assert site.hits["/old.xml"] == 1  # the next poll goes straight to the new URL
    ingest_source(temporary, store=store, fetcher=fetcher, now=NOW)
    assert store.source("temporary").fetch_url is None


def test_redirect_loop_is_an_error(site, fetcher) -> None:  # type: ignore[no-untyped-def]
    site.routes["/a"] = respond(302, Location="/b")
    site.routes["/b"] = respond(302, Location="/a")
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetcher.fetch(site.url + "/a", Validators())


def test_gone_disables_the_source(site, fetcher, store, settings) -> None:  # type: ignore[no-untyped-def]
    site.routes["/gone.xml"] = respond(410)
    source = source_at(site.url + "/gone.xml")
    sync(store, settings, source)
    result = ingest_source(source, store=store, fetcher=fetcher, now=NOW)
    assert result.status == "error" and "410 Gone" in result.error and "disabled" in result.error
    later = ingest_source(source, store=store, fetcher=fetcher, now=NOW + timedelta(hours=1))
    assert later.error.startswith("disabled: ") and site.hits["/gone.xml"] == 1


def test_server_errors_back_off_and_recover(site, fetcher, store, settings) -> None:  # type: ignore[no-untyped-def]
    site.routes["/feed.xml"] = respond(500, b"oops")
    source = source_at(site.url + "/feed.xml")
    sync(store, settings, source)
    policy = IngestPolicy(failure_limit=3)
    now = NOW
    for failures in (1, 2, 3):
        result = ingest_source(source, store=store, fetcher=fetcher, now=now, policy=policy, force=False)
        assert result.error.endswith("HTTP 500 Internal Server Error")
        state = store.source("wire")
        assert state.consecutive_failures == failures
        wait = state.next_check_at - now
        if failures < 3:
            assert timedelta(minutes=10) * 2 ** (failures - 1) * 0.8 <= wait <= timedelta(minutes=10) * 2 ** (failures - 1) * 1.2
        else:
            assert wait == timedelta(hours=6)  # over the limit: checked rarely, not hammered
        skipped = ingest_source(source, store=store, fetcher=fetcher, now=now + timedelta(seconds=1), policy=policy,
                                force=False)
        assert skipped.status == "skipped"
        now = state.next_check_at
    site.routes["/feed.xml"] = respond(200, RSS)
    assert ingest_source(source, store=store, fetcher=fetcher, now=now, policy=policy, force=False).status == "new"
    assert store.source("wire").consecutive_failures == 0
    assert site.hits["/feed.xml"] == 4


def test_oversized_bodies_are_refused(site, fetcher) -> None:  # type: ignore[no-untyped-def]
    site.routes["/declared"] = respond(200, b"x" * 300_000)

    def undeclared(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Transfer-Encoding", "chunked")
        request.end_headers()
        chunk = b"y" * 50_000
        for _ in range(10):
            request.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        request.wfile.write(b"0\r\n\r\n")

    def gzip_bomb(request: BaseHTTPRequestHandler) -> None:
        respond(200, gzip.compress(b"\0" * 5_000_000), Content_Encoding="gzip")(request)

    site.routes["/chunked"] = undeclared
    site.routes["/bomb"] = gzip_bomb
    for path in ("/declared", "/chunked", "/bomb"):
        with pytest.raises(FetchError, match="200000-byte limit"):
            fetcher.fetch(site.url + path, Validators())


def test_slow_and_silent_responses_end_in_bounded_time(site, fetcher) -> None:  # type: ignore[no-untyped-def]
    def trickle(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Length", "100")
        request.end_headers()
        for _ in range(100):  # 100 bytes over 10 s: a server that answers, too slowly
            request.wfile.write(b"x")
            request.wfile.flush()
            if site.closing.wait(0.1):
                return

    def silent(request: BaseHTTPRequestHandler) -> None:
        site.closing.wait(30)  # says nothing until the test is over

    site.routes["/trickle"], site.routes["/silent"] = trickle, silent
    for path, message in (("/trickle", "took longer than 3 s"), ("/silent", "timed out")):
        started = time.monotonic()
        with pytest.raises(FetchError, match=message):
            fetcher.fetch(site.url + path, Validators())
        assert time.monotonic() - started < 5


def test_host_limiter_spaces_requests() -> None:
    limiter = HostLimiter(concurrency=1, delay=0.2)
    starts: list[float] = []

    def hit() -> None:
        with limiter.slot("example.com"):
            starts.append(time.monotonic())

    threads = [threading.Thread(target=hit) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    starts.sort()
    assert starts[1] - starts[0] >= 0.19 and starts[2] - starts[1] >= 0.19


def test_a_page_that_is_not_a_feed_is_a_parse_error(site, fetcher, store, settings) -> None:  # type: ignore[no-untyped-def]
    site.routes["/page"] = respond(200, "<html><body>기사 목록</body></html>".encode(), Content_Type="text/html")
    source = source_at(site.url + "/page")
    sync(store, settings, source)
    result = ingest_source(source, store=store, fetcher=fetcher, now=NOW)
    assert result.status == "error" and "not a feed" in result.error


@pytest.mark.parametrize("body, content_type", [
    pytest.param('<?xml version="1.0" encoding="euc-kr"?>{rss}', None, id="prolog-euc-kr"),
    pytest.param('<?xml version="1.0"?>{rss}', "application/rss+xml; charset=EUC-KR", id="http-euc-kr"),
    pytest.param('<?xml version="1.0"?>{rss}', None, id="undeclared-cp949"),
    pytest.param('<?xml version="1.0" encoding="utf-8"?>{rss}', "text/xml; charset=ks_c_5601-1987", id="http-wins"),
])
def test_korean_encodings(body: str, content_type: str | None) -> None:
    rss = ('<rss version="2.0"><channel><title>t</title><link>https://x.example/</link><description>d</description>'
           '<item><title>똠방각하, 햏 · 한빛</title><guid>1</guid></item></channel></rss>')
    raw = body.format(rss=rss).encode("cp949")
    assert [e.title for e in parse_feed(raw, content_type=content_type)] == ["똠방각하, 햏 · 한빛"]


@pytest.mark.parametrize("prefix, codec", [(b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")])
def test_byte_order_marks(prefix: bytes, codec: str) -> None:
    assert decode_document(prefix + "<a>한빛</a>".encode(codec)) == "<a>한빛</a>"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<rss version="2.0"><channel><title>&lol9;</title><item><title>&lol9;</title></item></channel></rss>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>t</title><item><title>a &x; b</title><guid>1</guid></item></channel></rss>"""


@pytest.mark.parametrize("body", [pytest.param(BILLION_LAUGHS, id="billion-laughs"), pytest.param(XXE, id="xxe")])
def test_entity_attacks_are_refused(body: bytes) -> None:
    with pytest.raises(ParseError, match="declares XML entities"):
        parse_feed(body)


def test_broken_xml_still_yields_its_readable_items() -> None:
    broken = RSS.replace(b"</channel>", b"<item><title>unclosed & bad</title></channel>")
    assert [e.title for e in parse_feed(broken)] == ["시의회 & 시청, ‘예산 협의’ 시작", "guid 없는 기사", "unclosed & bad"]


def test_backoff_is_capped_and_jittered() -> None:
    interval = timedelta(minutes=10)
    assert backoff(interval, 1, rand=lambda: 0.5) == interval
    assert backoff(interval, 4, rand=lambda: 0.5) == interval * 8
    assert backoff(interval, 4, rand=lambda: 0.0) == interval * 8 * 0.8
    assert backoff(interval, 5, failure_limit=5) == timedelta(hours=6)
    assert backoff(interval, 9, failure_limit=50, rand=lambda: 0.5) == timedelta(hours=6)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes_give_items_or_parse_error(body: bytes) -> None:
    for parse in (parse_feed, parse_jsonl):
        try:
            entries = parse(body)
        except ParseError:
            continue
        assert isinstance(entries, list)


xml_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(xml_text, xml_text, xml_text), max_size=5), st.sampled_from(["rss", "atom", "broken"]))
def test_random_xml_gives_items_or_parse_error(items: list[tuple[str, str, str]], shape: str) -> None:
    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;")
    if shape == "rss":
        body = "<rss version='2.0'><channel><title>t</title>" + "".join(
            f"<item><title>{esc(a)}</title><link>{esc(b)}</link><description>{esc(c)}</description></item>"
            for a, b, c in items) + "</channel></rss>"
    elif shape == "atom":
        body = "<feed xmlns='http://www.w3.org/2005/Atom'><title>t</title>" + "".join(
            f"<entry><title>{esc(a)}</title><id>{esc(b)}</id><content type='html'>{esc(c)}</content></entry>"
            for a, b, c in items) + "</feed>"
    else:
        body = "<rss><channel>" + "".join(f"<item><title>{a}</title><{b}>{c}</item>" for a, b, c in items)
    try:
        entries = parse_feed(body.encode("utf-8", errors="surrogatepass"))
    except ParseError:
        return
    assert all(isinstance(e.title, str) for e in entries)


def test_dates_in_the_future_are_clamped_and_said(site, fetcher, store, settings) -> None:  # type: ignore[no-untyped-def]
    future = RSS.replace(b"Wed, 25 Nov 2026 08:30:00 +0900", b"Wed, 25 Nov 2099 08:30:00 +0900")
    site.routes["/feed.xml"] = respond(200, future)
    source = source_at(site.url + "/feed.xml")
    sync(store, settings, source)
    result = ingest_source(source, store=store, fetcher=fetcher, now=NOW)
    assert "1 dates in the future set to the time of fetching" in result.notes
    assert max(a.published_at for a in store.articles()) == NOW


def test_parse_processes_give_the_same_articles(site, store, settings) -> None:  # type: ignore[no-untyped-def]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    site.routes["/feed.xml"] = respond(200, RSS)
    source = source_at(site.url + "/feed.xml")
    sync(store, settings, source)
    fetcher = HttpFetcher()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        result = ingest_source(source, store=store, fetcher=fetcher, now=NOW, policy=IngestPolicy(parse_pool=pool))
    fetcher.close()
    assert result.counts.new == 2
    assert [a.title for a in store.articles()] == ["시의회 & 시청, ‘예산 협의’ 시작", "guid 없는 기사"]


def test_backing_off_line_shows_the_site_time(site, fetcher, store, settings) -> None:  # type: ignore[no-untyped-def]
    """The scheduler's "skipped" line is read by a person: the next check in the site's zone, like the error line."""
    from zoneinfo import ZoneInfo

    site.routes["/feed.xml"] = respond(500, b"oops")
    source = source_at(site.url + "/feed.xml")
    sync(store, settings, source)
    policy = IngestPolicy(timezone=ZoneInfo("Asia/Seoul"))
    failed = ingest_source(source, store=store, fetcher=fetcher, now=NOW, policy=policy, force=False)
    next_check = failed.next_check_at.isoformat(timespec="minutes")
    assert next_check.endswith("+09:00") and next_check in failed.line()
    skipped = ingest_source(source, store=store, fetcher=fetcher, now=NOW + timedelta(seconds=1), policy=policy,
                            force=False)
    assert skipped.line() == f"wire: skipped: backing off after 1 failures until {next_check}"
