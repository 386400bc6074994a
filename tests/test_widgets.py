"""The embeddable most viewed box (`feeds.widgets`, `/widgets/most-viewed`, `.json`, `.js`): its parameters, its
origins, and the three representations over HTTP in-process (conditional GET, CORS, framing, the /r/ links and
their clicks, a correction reaching the box within `[widgets] refresh`). The browser side is
tests/test_browser_widgets.py; the attacks are tests/security/test_widget_attacks.py."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from feeds.article_search import ArticleSearch
from feeds.core.config import web_origin
from feeds.core.errors import ConfigError, Invalid
from feeds.readership import CHANNELS
from feeds.widgets import WidgetQuery, read_query
from newsletter.http.console.articles import CHANNEL_WORDS
from newsletter.settings import load_settings
from tests.conftest import (
    NOW,
    Clock,
    InProcessClient,
    migrated_sqlite_url,
    run_gazette,
    write_config,
)
from tests.test_store import make_article

PARTNER = "https://partner.example.org"
LOCAL = "http://localhost:8080"
WIDGETS = f"""
[widgets]
origins = ["{PARTNER}", "{LOCAL}/"]
max_limit = 20
refresh = "30s"
"""


@dataclass
class WidgetSite:
    client: InProcessClient
    services: Any
    clock: Clock
    articles: list[Any]

    def token_of(self, href: str) -> tuple[str, str] | None:
        assert href.startswith("https://news.example.com/r/"), href
        return self.services.redirects.read(href.rsplit("/", 1)[1])


@contextmanager
def widget_site(tmp_path: Path, clock: Clock, *, count: int = 12, titles: dict[int, str] | None = None,
                extra: str = WIDGETS) -> Iterator[WidgetSite]:
    """The app in-process with `count` articles; article n has 100 - n views in the last hour (1 is the most viewed)
    and articles 1..3 are in economy, the rest in politics."""
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path),
                                          extra=extra), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    articles = [make_article(n, category="economy" if n <= 3 else "politics", published_at=NOW - timedelta(hours=n),
                             title=(titles or {}).get(n)) for n in range(1, count + 1)]
    services.store.upsert_articles(articles, source_id=None, now=NOW)
    services.store.add_views_batch([(a.id, NOW, 100 - n) for n, a in enumerate(articles, start=1)])
    with InProcessClient(service.create_app(services)) as client:
        yield WidgetSite(client, services, clock, articles)
    services.close()


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    """The settings alone (no database is opened): for the pure checks."""
    return load_settings(write_config(tmp_path / "gazette.toml", database_url="sqlite:///x.db", extra=WIDGETS), {})


@pytest.fixture
def site(tmp_path: Path, clock: Clock) -> Iterator[WidgetSite]:
    with widget_site(tmp_path, clock) as found:
        yield found


class Links(HTMLParser):
    """The fragment's list: each link's href, target and headline, and the heading."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str]] = []
        self.heading = ""
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a":
            self.links.append({"href": found["href"] or "", "target": found.get("target") or "", "text": ""})
        elif tag == "h2":
            self._in = "h2"
        elif tag == "span" and found.get("class") == "gz-mv__headline":
            self._in = "headline"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h2", "span"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "h2":
            self.heading += data
        elif self._in == "headline":
            self.links[-1]["text"] += data


def parsed(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


# --- parameters and origins (pure) ----------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "expected"), [
    pytest.param({}, WidgetQuery(None, "24h", 10, "ko"), id="defaults"),
    pytest.param({"category": "", "window": "", "limit": "", "lang": ""}, WidgetQuery(None, "24h", 10, "ko"),
                 id="empty-means-default"),
    pytest.param({"category": "politics", "window": "7d", "limit": "20", "lang": "en"},
                 WidgetQuery("politics", "7d", 20, "en"), id="all-set"),
    pytest.param({"limit": "1", "window": "1h"}, WidgetQuery(None, "1h", 1, "ko"), id="smallest"),
    pytest.param({"limit": "007"}, WidgetQuery(None, "24h", 7, "ko"), id="leading-zeros"),
])
def test_a_good_query(settings: Any, params: dict[str, str], expected: WidgetQuery) -> None:
    assert read_query(params, settings) == expected


@pytest.mark.parametrize(("params", "named"), [
    pytest.param({"category": "sports"}, "category 값 'sports'", id="unknown-category"),
    pytest.param({"category": "Politics"}, "category", id="category-case"),
    pytest.param({"window": "2h"}, "window 값 '2h'", id="unknown-window"),
    pytest.param({"limit": "0"}, "limit 값 '0'", id="limit-zero"),
    pytest.param({"limit": "21"}, "1–20", id="limit-over-max"),
    pytest.param({"limit": "-1"}, "limit", id="limit-negative"),
    pytest.param({"limit": "1e3"}, "limit", id="limit-exponent"),
    pytest.param({"limit": " 5"}, "limit", id="limit-space"),
    pytest.param({"limit": "9" * 400}, "9" * 40 + "…", id="limit-huge-echo-cut"),
    pytest.param({"lang": "ja"}, "lang 값 'ja'", id="unknown-language"),
    pytest.param({"lang": "en", "window": "1y"}, "window '1y' is not allowed", id="message-in-asked-language"),
])
def test_a_bad_query_names_the_parameter(settings: Any, params: dict[str, str], named: str) -> None:
    with pytest.raises(Invalid) as refused:
        read_query(params, settings)
    assert refused.value.status == 422
    assert named in str(refused.value)


@pytest.mark.parametrize(("written", "origin"), [
    ("https://partner.example.org", "https://partner.example.org"),
    ("https://Partner.Example.ORG/", "https://partner.example.org"),
    ("https://partner.example.org:443", "https://partner.example.org"),
    ("http://localhost:80", "http://localhost"),
    ("http://localhost:8080", "http://localhost:8080"),
    ("http://127.0.0.1:5173", "http://127.0.0.1:5173"),
    ("http://[::1]:3000", "http://[::1]:3000"),
])
def test_an_origin_is_written_as_browsers_send_it(written: str, origin: str) -> None:
    assert web_origin(written) == origin


@pytest.mark.parametrize("written", [
    "partner.example.org", "*", "https://*.example.org", "null", "ftp://partner.example.org",
    "https://partner.example.org/path", "https://partner.example.org?x=1", "https://user@partner.example.org",
    "https://partner.example.org:0", "https://partner.example.org:99999", "https://", "https://a b.org",
    "https://partner.example.org; frame-ancestors *", "javascript://x", 42,
])
def test_a_bad_origin_is_refused(written: object) -> None:
    with pytest.raises(ValueError):
        web_origin(written)


def test_a_bad_origin_stops_the_start_naming_its_key(tmp_path: Path) -> None:
    path = write_config(tmp_path / "gazette.toml", database_url="sqlite:///x.db",
                        extra='[widgets]\norigins = ["https://ok.example", "https://bad.example/page"]\n')
    with pytest.raises(ConfigError) as refused:
        load_settings(path, {})
    assert "widgets.origins[1]" in str(refused.value)


@pytest.mark.parametrize(("extra", "key"), [
    ("[widgets]\nmax_limit = 0\n", "widgets.max_limit"),
    ("[widgets]\nmax_limit = 51\n", "widgets.max_limit"),
    ('[widgets]\nrefresh = "10m"\n', "widgets.refresh"),
    ('[widgets]\nrefresh = "soon"\n', "widgets.refresh"),
    ("[widgets]\nmax_age = -1\n", "widgets.max_age"),
    ('[widgets]\norigin = ["https://ok.example"]\n', "widgets.origin"),
])
def test_bad_widget_settings_name_their_key(tmp_path: Path, extra: str, key: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(write_config(tmp_path / "gazette.toml", database_url="sqlite:///x.db", extra=extra), {})
    assert key in str(refused.value)


def test_the_widget_channel_is_a_channel_the_console_names() -> None:
    assert "widget" in CHANNELS
    assert set(CHANNEL_WORDS) == set(CHANNELS)


# --- over HTTP -------------------------------------------------------------------------------------------------

def test_the_fragment_lists_the_most_viewed_through_widget_links(site: WidgetSite) -> None:
    answer = site.client.get("/widgets/most-viewed")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    box = parsed(answer.text)
    assert box.heading == "많이 본 뉴스"
    assert [link["text"] for link in box.links] == [f"기사 {n}" for n in range(1, 11)]
    assert [site.token_of(link["href"]) for link in box.links] == [(a.id, "widget") for a in site.articles[:10]]
    assert {link["target"] for link in box.links} == {"_top"}
    assert '<html lang="ko">' in answer.text and '<ol class="gz-mv__list"' in answer.text
    assert "<script" not in answer.text


def test_the_fragment_may_be_framed_by_the_configured_origins_only(site: WidgetSite) -> None:
    answer = site.client.get("/widgets/most-viewed")
    policy = answer.headers["content-security-policy"]
    assert f"frame-ancestors 'self' {PARTNER} {LOCAL}" in policy
    assert "script-src" not in policy and "default-src 'none'" in policy
    assert "x-frame-options" not in answer.headers
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "public, max-age=30"
    # Other pages still refuse every frame.
    assert site.client.get("/").headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(("query", "heading", "titles"), [
    pytest.param("?category=economy", "경제 많이 본 뉴스", ["기사 1", "기사 2", "기사 3"], id="category"),
    pytest.param("?limit=3&lang=en", "Most viewed", ["기사 1", "기사 2", "기사 3"], id="english-top-3"),
    pytest.param("?category=politics&limit=2&lang=en", "Most viewed in 정치", ["기사 4", "기사 5"], id="both"),
])
def test_the_fragment_follows_its_parameters(site: WidgetSite, query: str, heading: str, titles: list[str]) -> None:
    box = parsed(site.client.get("/widgets/most-viewed" + query).text)
    assert box.heading == heading
    assert [link["text"] for link in box.links] == titles


def test_an_empty_ranking_says_so(site: WidgetSite) -> None:
    site.clock.now += timedelta(days=40)  # every view is older than the longest window
    for lang, words in (("ko", "아직 집계된 기사가 없습니다."), ("en", "No articles have been counted yet.")):
        answer = site.client.get(f"/widgets/most-viewed?window=1h&lang={lang}")
        assert answer.status_code == 200 and words in answer.text and "<ol" not in answer.text
        assert site.client.get(f"/widgets/most-viewed.json?window=1h&lang={lang}").json()["items"] == []


def test_the_json_is_the_same_list(site: WidgetSite) -> None:
    answer = site.client.get("/widgets/most-viewed.json?limit=3&category=politics")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json; charset=utf-8"
    doc = answer.json()
    assert {k: doc[k] for k in ("title", "lang", "category", "window")} == {
        "title": "정치 많이 본 뉴스", "lang": "ko", "category": "politics", "window": "24h"}
    assert doc["empty"] == "아직 집계된 기사가 없습니다."
    assert [(i["rank"], i["title"], i["category"]) for i in doc["items"]] == [
        (1, "기사 4", "politics"), (2, "기사 5", "politics"), (3, "기사 6", "politics")]
    assert doc["items"][0]["published_at"] == "2026-11-25T05:00:00+09:00"  # the site's zone
    assert [site.token_of(i["url"]) for i in doc["items"]] == [(a.id, "widget") for a in site.articles[3:6]]
    assert doc["items"][0]["id"] == site.articles[3].id


def test_conditional_get_and_gzip(site: WidgetSite) -> None:
    for path in ("/widgets/most-viewed", "/widgets/most-viewed.json", "/widgets/most-viewed.js"):
        first = site.client.get(path, headers={"Accept-Encoding": "gzip"})
        etag = first.headers["etag"]
        assert etag.startswith('"') and not etag.startswith('W/'), path  # strong: a hash of the bytes
        assert first.headers["content-encoding"] == "gzip"
        again = site.client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag, path
        head = site.client.head(path)
        assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag


def test_cors_names_a_configured_origin_only(site: WidgetSite) -> None:
    path = "/widgets/most-viewed.json"
    for origin in (PARTNER, LOCAL):
        answer = site.client.get(path, headers={"Origin": origin})
        assert answer.headers["access-control-allow-origin"] == origin
        assert "access-control-allow-credentials" not in answer.headers
        assert "Origin" in answer.headers["vary"]
        revalidated = site.client.get(path, headers={"Origin": origin, "If-None-Match": answer.headers["etag"]})
        assert revalidated.status_code == 304 and revalidated.headers["access-control-allow-origin"] == origin
    refused = site.client.get(path, headers={"Origin": "https://elsewhere.example"})
    assert refused.status_code == 200 and "access-control-allow-origin" not in refused.headers
    assert "Origin" in refused.headers["vary"]  # a cache must not hand the allowed answer to anyone else
    assert "access-control-allow-origin" not in site.client.get(path).headers


def test_a_preflight_from_a_configured_origin_only(site: WidgetSite) -> None:
    path = "/widgets/most-viewed.json"
    allowed = site.client.request("OPTIONS", path, headers={"Origin": PARTNER, "Access-Control-Request-Method": "GET"})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == PARTNER
    assert allowed.headers["access-control-allow-methods"] == "GET, HEAD"
    refused = site.client.request("OPTIONS", path, headers={"Origin": "https://elsewhere.example",
                                                 "Access-Control-Request-Method": "GET"})
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    assert refused.headers["content-type"] == "application/problem+json"
    assert "https://elsewhere.example" in refused.json()["detail"]
    post = site.client.request("OPTIONS", path, headers={"Origin": PARTNER, "Access-Control-Request-Method": "POST"})
    assert post.status_code == 403 and "access-control-allow-origin" not in post.headers


def test_bad_parameters_are_4xx_with_a_message(site: WidgetSite) -> None:
    data = site.client.get("/widgets/most-viewed.json?window=2h")
    assert data.status_code == 422 and data.headers["content-type"] == "application/problem+json"
    assert data.json()["detail"] == "window 값 '2h'은(는) 쓸 수 없습니다. 쓸 수 있는 값: 1h, 24h, 7d, 30d"
    told = site.client.get("/widgets/most-viewed.json?limit=0", headers={"Origin": PARTNER})
    assert told.status_code == 422 and told.headers["access-control-allow-origin"] == PARTNER  # its script may read why
    assert "access-control-allow-origin" not in site.client.get("/widgets/most-viewed.json?limit=0",
                                                                headers={"Origin": "https://elsewhere.example"}).headers
    page = site.client.get("/widgets/most-viewed?limit=21&lang=en")
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert "limit &#39;21&#39; is not allowed; use one of: 1–20" in page.text
    assert site.client.post("/widgets/most-viewed.json").status_code == 405


def test_a_click_goes_through_r_and_counts_for_the_widget(site: WidgetSite) -> None:
    href = site.client.get("/widgets/most-viewed.json?limit=1").json()["items"][0]["url"]
    followed = site.client.get(href.removeprefix("https://news.example.com"),
                               headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36"})
    assert followed.status_code == 302 and followed.headers["location"] == "https://news.example.com/1"
    assert ArticleSearch(site.services.store.engine).clicks_by_channel(site.articles[0].id) == {"widget": 1}


def test_a_correction_reaches_the_box_within_the_refresh(site: WidgetSite) -> None:
    before = site.client.get("/widgets/most-viewed.json?limit=2")
    site.services.store.upsert_articles([replace(make_article(2, category="economy", title="기사 2 (정정)"),
                                                 published_at=NOW - timedelta(hours=2))],
                                        source_id=None, now=NOW)
    site.clock.now += timedelta(seconds=29)  # within [widgets] refresh the ranking made is served as it is
    assert site.client.get("/widgets/most-viewed.json?limit=2").content == before.content
    site.clock.now += timedelta(seconds=1)
    after = site.client.get("/widgets/most-viewed.json?limit=2", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert [i["title"] for i in after.json()["items"]] == ["기사 1", "기사 2 (정정)"]
    fragment = site.client.get("/widgets/most-viewed?limit=2").text
    assert "기사 2 (정정)" in fragment


def test_a_kill_or_a_hold_leaves_the_box_within_the_refresh(site: WidgetSite) -> None:
    from feeds.article_life import ArticleLife

    before = [i["title"] for i in site.client.get("/widgets/most-viewed.json?limit=3").json()["items"]]
    life = ArticleLife(site.services.engine)
    life.kill(site.articles[0].id, "오보", now=site.clock())
    life.hold(site.articles[1].id, "검토", now=site.clock())
    site.clock.now += timedelta(seconds=30)
    after = [i["title"] for i in site.client.get("/widgets/most-viewed.json?limit=3").json()["items"]]
    assert before[:2] == [site.articles[0].title, site.articles[1].title]
    assert site.articles[0].title not in after and site.articles[1].title not in after and len(after) == 3
    assert site.articles[0].title not in site.client.get("/widgets/most-viewed?limit=3").text


def test_a_new_leader_reaches_the_box_and_an_unchanged_ranking_keeps_its_etag(site: WidgetSite) -> None:
    before = site.client.get("/widgets/most-viewed.json?limit=3")
    site.clock.now += timedelta(seconds=30)
    same = site.client.get("/widgets/most-viewed.json?limit=3", headers={"If-None-Match": before.headers["etag"]})
    assert same.status_code == 304  # computed again, the same bytes: the same representation
    assert same.headers["last-modified"] == before.headers["last-modified"]
    site.services.store.add_views_batch([(site.articles[11].id, NOW, 1000)])
    site.clock.now += timedelta(seconds=30)
    moved = site.client.get("/widgets/most-viewed.json?limit=3", headers={"If-None-Match": before.headers["etag"]})
    assert moved.status_code == 200 and [i["title"] for i in moved.json()["items"]] == ["기사 12", "기사 1", "기사 2"]


def test_the_script_is_small_and_carries_the_stylesheet(site: WidgetSite) -> None:
    answer = site.client.get("/widgets/most-viewed.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
    assert answer.headers["cache-control"] == "public, max-age=3600"
    assert len(gzip.compress(answer.content, 9)) < 5 * 1024
    css = (Path(__file__).resolve().parent.parent / "templates" / "widgets" / "most_viewed.css").read_text(encoding="utf-8")
    assert json.dumps(css).replace("<", "\\u003c") in answer.text  # the same rules as the fragment's
    assert "/*GAZETTE_CSS*/" not in answer.text
    assert "innerHTML" not in answer.text and "insertAdjacentHTML" not in answer.text and "eval(" not in answer.text
    assert "data-gazette-most-viewed" in answer.text


def test_requests_arriving_together_rank_once(site: WidgetSite) -> None:
    """A stale ranking asked for by many threads at once is computed by one of them; the others take its result."""
    from concurrent.futures import ThreadPoolExecutor

    import sqlalchemy

    from feeds.widgets import MostViewedBoard

    services = site.services
    board = MostViewedBoard(services.settings, services.store, services.redirects, services.templates, site.clock)
    queries: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "article_views" in statement:
            queries.append(statement)

    sqlalchemy.event.listen(services.store.engine, "before_cursor_execute", count)
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda n: board.get(WidgetQuery(None, "24h", n % 5 + 1, "ko"), "json"), range(32)))
        assert len(queries) == 1
        assert len({a.etag for a in answers}) == 5
        assert board.get(WidgetQuery(None, "7d", 3, "ko"), "json") is not None and len(queries) == 2
    finally:
        sqlalchemy.event.remove(services.store.engine, "before_cursor_execute", count)


def test_check_says_who_may_embed_the_box(tmp_path: Path) -> None:
    path = write_config(tmp_path / "gazette.toml", database_url=f"sqlite:///{tmp_path}/g.db", extra=WIDGETS)
    shown = run_gazette(["--config", str(path), "check"], expect=0).stdout
    assert f"widgets: embeddable by {PARTNER}, {LOCAL}; rankings at most 30s old, cached 30s by browsers" in shown
    bare = write_config(tmp_path / "bare.toml", database_url=f"sqlite:///{tmp_path}/g.db")
    assert "widgets: embeddable by the site itself only" in run_gazette(["--config", str(bare), "check"], expect=0).stdout
