"""The embeddable most viewed box (`/widgets/most-viewed`, `.json`, `.js`): the one public surface other sites frame
and read across origins. Hostile titles stay text in the page and the JSON; an origin is allowed only as written in
`[widgets] origins` (no prefix, suffix, case or "null" tricks); every parameter is checked before any work, with a
4xx and a message, never a 500; nothing a request says makes the box link anywhere but our own /r/."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy

from tests.conftest import Clock
from tests.test_widgets import LOCAL, PARTNER, WidgetSite, widget_site

HOSTILE = {
    1: "</script><script>alert(1)</script>",
    2: "\"'><img src=x onerror=alert(2)>",
    3: "</style><style>*{display:none}</style>",
    4: "&lt;b&gt;entity&amp;lt; \u2028 \u2029 line separators",
    5: "<!-- comment --> ]]> <![CDATA[ x ]]>",
    6: "javascript:alert(6)",
}


@pytest.fixture
def hostile(tmp_path: Path, clock: Clock) -> Iterator[WidgetSite]:
    with widget_site(tmp_path, clock, titles=HOSTILE) as site:
        yield site


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs

    def handle_data(self, data: str) -> None:
        self.text += data


def test_hostile_titles_stay_text_in_the_page(hostile: WidgetSite) -> None:
    page = hostile.client.get("/widgets/most-viewed").text
    found = Elements()
    found.feed(page)
    assert set(found.tags) <= {"html", "head", "meta", "title", "style", "body", "section", "h2", "ol", "li", "a",
                               "span"}
    assert found.tags.count("style") == 1 and "script" not in found.tags and "img" not in found.tags
    assert not any(name.startswith("on") for name, _ in found.attributes)
    assert all(value.startswith("https://news.example.com/r/") for name, value in found.attributes
               if name == "href" and value)
    for title in HOSTILE.values():
        assert title in found.text  # shown as the very characters, not markup


def test_hostile_titles_stay_text_in_the_json(hostile: WidgetSite) -> None:
    answer = hostile.client.get("/widgets/most-viewed.json")
    assert b"<" not in answer.content and b">" not in answer.content and b"&" not in answer.content
    items = answer.json()["items"]
    assert {i["title"] for i in items} >= set(HOSTILE.values())
    assert all(i["url"].startswith("https://news.example.com/r/") for i in items)  # never the title, never javascript:


@pytest.mark.parametrize("origin", [
    pytest.param(PARTNER + ".evil.test", id="suffix"),
    pytest.param("https://evil.test/" + PARTNER, id="path-holds-allowed"),
    pytest.param("https://partner.example.org.", id="trailing-dot"),
    pytest.param("https://PARTNER.example.org", id="upper-case"),
    pytest.param("http://partner.example.org", id="other-scheme"),
    pytest.param("https://partner.example.org:8443", id="other-port"),
    pytest.param("https://evilpartner.example.org", id="prefix"),
    pytest.param("https://example.org", id="parent-domain"),
    pytest.param("null", id="null-sandboxed"),
    pytest.param("*", id="wildcard"),
    pytest.param(f"{PARTNER}, https://evil.test", id="list"),
    pytest.param(f"{PARTNER} ", id="trailing-space-kept"),
    pytest.param("http://localhost:8081", id="local-other-port"),
])
def test_only_an_exactly_configured_origin_is_allowed(hostile: WidgetSite, origin: str) -> None:
    data = hostile.client.get("/widgets/most-viewed.json", headers={"Origin": origin})
    assert data.status_code == 200 and "access-control-allow-origin" not in data.headers
    assert "access-control-allow-credentials" not in data.headers
    preflight = hostile.client.request("OPTIONS", "/widgets/most-viewed.json",
                                       headers={"Origin": origin, "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers


def test_the_allowed_origin_is_echoed_exactly_and_never_a_wildcard(hostile: WidgetSite) -> None:
    for origin in (PARTNER, LOCAL):
        answer = hostile.client.get("/widgets/most-viewed.json", headers={"Origin": origin, "Cookie": "a=b"})
        assert answer.headers.get_list("access-control-allow-origin") == [origin]
    for path in ("/widgets/most-viewed", "/widgets/most-viewed.js"):
        assert "access-control-allow-origin" not in hostile.client.get(path, headers={"Origin": PARTNER}).headers


def test_an_origin_cannot_reach_the_framing_policy(hostile: WidgetSite) -> None:
    policy = hostile.client.get("/widgets/most-viewed", headers={"Origin": "https://evil.test"}).headers[
        "content-security-policy"]
    assert "evil.test" not in policy and policy.endswith(f"frame-ancestors 'self' {PARTNER} {LOCAL}")


@pytest.mark.parametrize("query", [
    pytest.param("limit=1000000000000000000000", id="huge-limit"),
    pytest.param("limit=-1", id="negative-limit"),
    pytest.param("limit=NaN", id="nan-limit"),
    pytest.param("limit=%EF%BC%95", id="fullwidth-digit"),
    pytest.param("window=1h%0d%0aSet-Cookie:%20x=1", id="crlf-in-window"),
    pytest.param("window=" + "9" * 5000, id="long-window"),
    pytest.param("category=politics%27%20OR%201=1--", id="sql-in-category"),
    pytest.param("category=../../etc/passwd", id="path-in-category"),
    pytest.param("category=%3Cscript%3Ealert(1)%3C/script%3E", id="script-in-category"),
    pytest.param("category=politics%00", id="nul-in-category"),
    pytest.param("lang=../../ko", id="path-in-lang"),
    pytest.param("lang=%7B0.__class__%7D", id="format-string-in-lang"),
    pytest.param("category={name}&lang=en", id="format-string-in-category"),
])
@pytest.mark.parametrize("path", ["/widgets/most-viewed", "/widgets/most-viewed.json"])
def test_bad_parameters_are_refused_with_a_message(hostile: WidgetSite, path: str, query: str) -> None:
    answer = hostile.client.get(f"{path}?{query}")
    assert 400 <= answer.status_code < 500, answer.text
    assert "set-cookie" not in answer.headers
    if path.endswith(".json"):
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["detail"]
    else:
        assert answer.headers["content-type"].startswith("text/html")
        assert "<script>" not in answer.text
    assert len(answer.content) < 20_000  # a refused value is echoed cut short


def test_many_distinct_requests_rank_once(hostile: WidgetSite) -> None:
    """Only configured values pass, so junk parameters (cache busters) and every limit and language share one
    ranking per (category, window): 200 requests ask the database once."""
    rankings: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "article_views" in statement:
            rankings.append(statement)

    engine = hostile.services.store.engine
    sqlalchemy.event.listen(engine, "before_cursor_execute", count)
    try:
        for n in range(200):
            answer = hostile.client.get(f"/widgets/most-viewed.json?limit={n % 20 + 1}&lang={('ko', 'en')[n % 2]}"
                                        f"&_={n}&utm_source=x{n}")
            assert answer.status_code == 200
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", count)
    assert len(rankings) == 1


def test_other_methods_are_refused(hostile: WidgetSite) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("/widgets/most-viewed", "/widgets/most-viewed.json", "/widgets/most-viewed.js"):
            assert hostile.client.request(method, path).status_code == 405
