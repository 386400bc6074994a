"""Attacks on the partners' ninjs feeds (`/partners/{partner}/feeds/{slug}.ninjs`): keys in the query string, a category
not licensed, a path made to break the route, and text made to break the document: markup a source sent (it stays
sanitised), `</script>` (the bytes can sit in an HTML page's script element and still not end it), control
characters and lone surrogates (dropped, the document still valid ninjs 3.1)."""

from __future__ import annotations

import json
from datetime import timedelta

import lxml.html
import pytest

from feeds.model import RawEntry
from feeds.ninjs import ninjs_document
from feeds.normalise import normalise
from tests.conftest import NOW
from tests.security.conftest import PARTNER_KEY, Gazette
from tests.test_ninjs import assert_valid

FEED = "/partners/portal/feeds/politics.ninjs"
AUTH = {"Authorization": f"Bearer {PARTNER_KEY}"}


def test_a_key_in_the_query_string_works_and_goes_nowhere(gazette: Gazette) -> None:
    answer = gazette.client.get(FEED, params={"key": PARTNER_KEY})
    assert answer.status_code == 200 and answer.headers["cache-control"].startswith("private")
    assert PARTNER_KEY not in answer.text and PARTNER_KEY not in json.dumps(dict(answer.headers))
    assert_valid(answer.json())


@pytest.mark.parametrize("key", [
    pytest.param("wrong-key-0123456789abcdef", id="wrong"),
    pytest.param("<script>alert(1)</script>", id="markup"),
    pytest.param("k\r\nSet-Cookie: a=b", id="header-injection"),
    pytest.param("k" * 20_000, id="oversized"),
    pytest.param(PARTNER_KEY + "\x00", id="nul-suffix"),
])
def test_bad_keys_in_the_query_string_are_refused_as_json(gazette: Gazette, key: str) -> None:
    answer = gazette.client.get(FEED, params={"key": key})
    assert answer.status_code in (400, 401, 414, 431), answer.text
    assert "set-cookie" not in answer.headers and key not in answer.text and "<script>" not in answer.text
    if answer.status_code == 401:
        assert answer.headers["cache-control"] == "no-store" and answer.json()["error"]


@pytest.mark.parametrize("path, status", [
    pytest.param("/partners/portal/feeds/economy.ninjs", 403, id="unlicensed-category"),
    pytest.param("/partners/portal/feeds/sports.ninjs", 404, id="unknown-category"),
    pytest.param("/partners/portal/feeds/politics.NINJS", 404, id="format-case"),
    pytest.param("/partners/portal/feeds/politics.ninjs.json", 404, id="double-extension"),
    pytest.param("/partners/portal/feeds/politics%00.ninjs", 400, id="nul-in-slug"),
    pytest.param("/partners/portal/feeds/..%2Fpolitics.ninjs", 404, id="traversal"),
    pytest.param("/partners/portal/feeds/" + "a" * 5_000 + ".ninjs", None, id="oversized-slug"),
])
def test_a_path_made_to_break_the_route_is_a_4xx_with_a_message(gazette: Gazette, path: str,
                                                                  status: int | None) -> None:
    answer = gazette.client.get(path, headers=AUTH)
    assert 400 <= answer.status_code < 500 and (status is None or answer.status_code == status), answer.text
    if answer.status_code in (403, 404):
        assert answer.headers["content-type"] == "application/problem+json" and answer.json()["error"]


def raw(n: int, **fields: object) -> RawEntry:
    values: dict[str, object] = {
        "guid": f"hostile-{n}", "is_guid_trusted": True, "url": f"https://news.example.com/h{n}", "title": f"제목 {n}",
        "summary_html": "", "content_html": "<p>본문</p>", "byline": "홍길동 기자", "author_email": None,
        "categories": (), "image_url": None, "published_at": NOW - timedelta(minutes=5 * n), "updated_at": None}
    return RawEntry(**{**values, **fields})  # type: ignore[arg-type]


def store(gazette: Gazette, *entries: RawEntry) -> None:
    """Through the normaliser, as a source's items are stored."""
    articles = [normalise(e, source_url="https://news.example.com/", default_category="politics", category_map={},
                          fetched_at=NOW) for e in entries]
    gazette.services.store.upsert_articles(articles, source_id=None, now=NOW)


def ninjs(gazette: Gazette) -> tuple[bytes, list[dict[str, object]]]:
    answer = gazette.client.get(FEED, headers=AUTH)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert_valid(document)
    return answer.content, document


def test_hostile_html_from_a_source_stays_sanitised(gazette: Gazette) -> None:
    body = ('<p onclick="steal()">글 <a href="javascript:alert(1)">링크</a> <img src=x onerror="alert(2)"></p>'
            '<script>alert(3)</script><iframe src="https://evil.test/"></iframe><style>*{}</style>'
            '<form action="https://evil.test/"><input name=x></form><svg><script>alert(4)</script></svg>끝')
    store(gazette, raw(1, content_html=body, summary_html="<b>요약</b><script>x()</script>"))
    _, document = ninjs(gazette)
    item = next(i for i in document if i["headlines"] == [{"value": "제목 1"}])
    html, text = item["bodies"]  # type: ignore[misc]
    tree = lxml.html.fragment_fromstring(html["value"], create_parent="div")
    tags = {e.tag for e in tree.iterdescendants()}
    assert not tags & {"script", "iframe", "style", "form", "input", "svg"}, tags
    assert not [(e.tag, a) for e in tree.iter() for a, v in e.attrib.items()
                if a.startswith("on") or v.strip().lower().startswith("javascript:")]
    assert "alert" not in text["value"] and text["value"].startswith("글 링크")
    assert item["descriptions"] == [{"role": "summary", "contentType": "text/plain", "value": "요약"}]


def test_script_end_in_a_title_cannot_end_a_script_element(gazette: Gazette) -> None:
    # As a feed sends it: escaped once, so the stored title is the text `</script><script>…`.
    store(gazette, raw(2, title='속보 &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; &lt;!-- "따옴" &amp; 끝',
                       summary_html="줄\u2028바꿈"))
    title = '속보 </script><script>alert(1)</script> <!-- "따옴" & 끝'
    body, document = ninjs(gazette)
    assert b"</script" not in body.lower() and b"<!--" not in body and "\u2028".encode() not in body
    assert any(i["headlines"] == [{"value": title}] for i in document)  # the same characters, as data
    page = b'<html><head><meta charset="utf-8"></head><body><script type="application/json" id="d">' + body + b"</script></body></html>"
    embedded = lxml.html.fromstring(page).get_element_by_id("d").text
    assert json.loads(embedded) == document  # a page that embeds the document gets all of it back, and no script


def test_control_characters_and_lone_surrogates_are_dropped_and_the_document_stays_valid(gazette: Gazette) -> None:
    nasty = "앞\x00\x07\x1b[31m\ufffe\ud800뒤"
    store(gazette, raw(3, title=nasty, summary_html=nasty, content_html=f"<p>{nasty}</p>", byline=nasty))
    body, document = ninjs(gazette)
    assert not [c for c in body.decode("utf-8") if ord(c) < 0x20 and c not in "\n"]
    item = next(i for i in document if i["altIds"][1]["value"] == "https://news.example.com/h3")  # type: ignore[index]
    assert item["headlines"] == [{"value": "앞[31m뒤"}]
    assert item["bodies"][1]["value"].startswith("앞[31m뒤\n\n")  # type: ignore[index]


def test_a_hostile_document_in_memory_is_still_one_json_list() -> None:
    hostile = [{"uri": "tag:x,2026:a", "headlines": [{"value": "]}, {\"uri\": \"evil\"}, [\"</script>"}]}]
    parsed = json.loads(ninjs_document(hostile))
    assert parsed == hostile and len(parsed) == 1
