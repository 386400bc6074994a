"""Parsers and the normaliser: golden files (tests/data/sources/X + X.expected.json) and named cases.

To refresh the golden files after a deliberate change: GAZETTE_UPDATE_GOLDEN=1 pytest tests/test_parse.py,
then read the diff before committing it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from feeds.errors import ParseError
from feeds.normalise import canonical_url, clean_byline, cut_text, html_to_text, normalise, sanitise_html
from feeds.parse import parse_feed, parse_jsonl, parse_jsonl_lines
from tests.conftest import DATA

SOURCES = DATA / "sources"
FETCHED_AT = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)
CATEGORY_MAP = {"정치": "politics", "경제": "economy", "문화": "culture"}
KST = ZoneInfo("Asia/Seoul")


def normalised(path: Path) -> list[dict[str, object]] | dict[str, str]:
    """The normalised articles of a golden input, or {"error": ...} for an input that must be refused."""
    body = path.read_bytes()
    try:
        entries = parse_jsonl(body, timezone=KST) if path.suffix == ".jsonl" else parse_feed(body, timezone=KST)
    except ParseError as exc:
        return {"error": str(exc)}
    out = []
    for entry in entries:
        article = normalise(entry, source_url=None, default_category="society", category_map=CATEGORY_MAP,
                            fetched_at=FETCHED_AT)
        row = dataclasses.asdict(article)
        row["tags"] = list(article.tags)
        row["reporters"] = [dataclasses.asdict(r) for r in article.reporters]
        del row["extra_categories"]  # only ever set when the store merges sightings
        row["published_at"] = article.published_at.isoformat()
        row["updated_at"] = article.updated_at.isoformat()
        out.append(row)
    return out


@pytest.mark.parametrize("path", sorted(p for p in SOURCES.iterdir() if not p.name.endswith(".expected.json")),
                         ids=lambda p: p.name)
def test_golden(path: Path) -> None:
    expected_path = path.with_name(path.name + ".expected.json")
    actual = normalised(path)
    if os.environ.get("GAZETTE_UPDATE_GOLDEN"):
        expected_path.write_text(json.dumps(actual, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert actual == json.loads(expected_path.read_text(encoding="utf-8"))


def test_hostile_content_is_sanitised() -> None:
    first = normalised(SOURCES / "rss_hostile.xml")[0]
    html = str(first["content_html"])
    for banned in ("<script", "<style", "onclick", "onerror", "javascript:", "<iframe", "<form", "<input"):
        assert banned not in html
    assert 'href="https://news.example.com/news/2"' in html  # resolved against the article URL
    assert 'src="https://news.example.com/img/1.jpg"' in html


def test_jsonl_bad_lines_are_reported_not_fatal() -> None:
    entries, errors = parse_jsonl_lines((SOURCES / "cms_export.jsonl").read_bytes(), timezone=KST)
    assert [e.guid for e in entries] == ["cms-1", "cms-3", "cms-4", "cms-5"]
    assert errors == ["line 2: not JSON (Expecting value)", "line 3: no title",
                      'line 7.published_at: "어제 오후" is not a date']
    naive = entries[1]
    assert naive.published_at == datetime(2026, 11, 24, 20, 0, tzinfo=timezone.utc)  # 05:00 in Seoul


@pytest.mark.parametrize("body, message", [
    pytest.param(b"", "not a feed", id="empty"),
    pytest.param(b"<html><body>hello</body></html>", "not a", id="html-page"),
    pytest.param(b'{"hello": 1}', "not a JSON Feed", id="json-not-feed"),
    pytest.param(b"{broken", "not valid JSON", id="broken-json"),
])
def test_not_a_feed_raises_parse_error(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_feed(body)


def test_jsonl_with_no_readable_line_raises() -> None:
    with pytest.raises(ParseError, match="no readable line"):
        parse_jsonl(b"nope\n[1]\n")


@pytest.mark.parametrize("text, budget, expected", [
    pytest.param("짧은 문장이다.", 200, "짧은 문장이다.", id="short-kept"),
    pytest.param("첫 문장은 여기서 끝난다. 두 번째 문장은 조금 더 길게 이어진다. 세 번째 문장.", 40,
                 "첫 문장은 여기서 끝난다. 두 번째 문장은 조금 더 길게 이어진다.", id="sentence-boundary"),
    pytest.param("한빛시가 시내버스 노선을 대대적으로 개편하면서 새벽동과 신항을 잇는 직통 노선을 새로 만든다고 밝혔다", 30,
                 "한빛시가 시내버스 노선을 대대적으로 개편하면서…", id="word-boundary"),
    pytest.param("a" * 50, 10, "a" * 9 + "…", id="no-space"),
])
def test_cut_text(text: str, budget: int, expected: str) -> None:
    assert cut_text(text, budget) == expected
    assert len(cut_text(text, budget)) <= budget


@pytest.mark.parametrize("raw, expected", [
    ("김하늘 기자", "김하늘 기자"), ("박바다 선임기자", "박바다 선임기자"), ("  이서연  ", "이서연"), ("기자", None),
    ("", None), ("<b>최은비</b> 특파원", "최은비 특파원"),
])
def test_clean_byline(raw: str, expected: str | None) -> None:
    assert clean_byline(raw) == expected


@pytest.mark.parametrize("url, expected", [
    ("https://News.Example.com/a?utm_source=x&id=3#frag", "https://news.example.com/a?id=3"),
    ("http://news.example.com", "http://news.example.com/"),
    ("https://news.example.com/a?fbclid=1&gclid=2", "https://news.example.com/a"),
    ("javascript:alert(1)", None), ("/relative", None), (None, None),
])
def test_canonical_url(url: str | None, expected: str | None) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize("fragment, expected", [
    ('<a href="/x" onclick="y()">링크</a>', '<a href="https://news.example.com/x" rel="noopener noreferrer">링크</a>'),
    ('<img src="data:image/png;base64,xx" alt="a">', '<img alt="a">'),
    ("<p>a<script>b</script>c</p>", "<p>ac</p>"),
    pytest.param('<iframe src="https://www.youtube.com/embed/x" onload="y()"></iframe>',
                 '<iframe src="https://www.youtube.com/embed/x"></iframe>', id="video-iframe-kept"),
    pytest.param('<p>a</p><iframe src="https://evil.example/x"></iframe>', "<p>a</p>", id="other-iframe-dropped"),
    pytest.param('<iframe src="http://www.youtube.com/embed/x"></iframe>', "", id="plain-http-iframe-dropped"),
    pytest.param('<iframe srcdoc="<script>x</script>"></iframe>', "", id="srcdoc-dropped"),
])
def test_sanitise_html(fragment: str, expected: str) -> None:
    assert sanitise_html(fragment, "https://news.example.com/news/1") == expected


def test_html_to_text_unescapes_and_spaces_blocks() -> None:
    assert html_to_text("<p>가&amp;나</p><p>다</p>") == "가&나 다"


def test_lead_image_falls_back_to_the_first_picture() -> None:
    from feeds.model import RawEntry

    entry = RawEntry(guid="1", is_guid_trusted=True, url="https://news.example.com/news/1", title="t", summary_html="",
                     content_html='<p>글</p><img src="/img/a.jpg?w=1&amp;h=2"><img src="/img/b.jpg">', byline=None,
                     author_email=None, categories=(), image_url=None, published_at=None, updated_at=None)
    article = normalise(entry, source_url=None, default_category=None, category_map={}, fetched_at=FETCHED_AT)
    assert article.image_url == "https://news.example.com/img/a.jpg?w=1&h=2"
