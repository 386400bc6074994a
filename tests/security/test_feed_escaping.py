"""Class 7: text must stay text in every field of every feed format.

RSS readers read <description> as HTML; the plain-text summary was escaped once, so upstream text
`&lt;script&gt;` reached them as a live `<script>`, and JSON Feed's `content_html` fell back to the same text. Here
hostile strings go into every field of RSS 2.0, Atom 1.0 and JSON Feed; each document must parse, every text field
must read back as the same characters (less those XML cannot carry), and every HTML field must hold no element
but what the sanitised body had.
"""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import lxml.html
import pytest
from lxml import etree

from feeds.model import RawEntry
from feeds.normalise import normalise
from feeds.render import FeedDoc, FeedItem, render
from tests.conftest import NOW

HOSTILE = {
    "script": "<script>alert(1)</script>",
    "escaped-script": "&lt;script&gt;alert(2)&lt;/script&gt;",
    "double-escaped": "&amp;lt;img src=x onerror=alert(3)&amp;gt;",
    "cdata-end": "]]><script>alert(4)</script>",
    "quotes-and-ampersands": "\"'&<>&amp;",
    "control-characters": "a\x03b\x00c\x1fd\ufffe",
    "korean-and-emoji": "‘예산’ 🎉 <b>굵게</b>",
    "entity-looking": "&#x3C;iframe src=//evil.test&#x3E;",
}
XML_SAFE = str.maketrans("", "", "\x03\x00\x1f\ufffe")
ATOM = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"


def doc_with(text: str, *, full: bool) -> FeedDoc:
    item = FeedItem(id="tag:news.example.com,2026-11-25:article/a1", url="https://news.example.com/a1?x=1&y=<2>",
                    title=text, summary=text, content_html="<p>본문 &amp; 끝</p>" if full else None, byline=text,
                    author_email="kim@example.com", category="politics", category_label=text, tags=(text,),
                    image_url="https://news.example.com/a.jpg?w=1&h=<2>", published_at=NOW, updated_at=NOW)
    return FeedDoc(slug="all", title=text, description=text, home_url="https://news.example.com/", language="ko",
                   author=text, timezone=ZoneInfo("Asia/Seoul"), items=(item,))


def html_elements(fragment: str) -> list[str]:
    """The tags an HTML reader would build from `fragment`."""
    if not fragment.strip():
        return []
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    return [e.tag for e in root.iterdescendants() if isinstance(e.tag, str)]


def html_text(fragment: str) -> str:
    return lxml.html.fragment_fromstring(fragment, create_parent="div").text_content() if fragment else ""


@pytest.mark.parametrize("full", [False, True], ids=["summary-only", "full-content"])
@pytest.mark.parametrize("name", list(HOSTILE))
def test_rss(name: str, full: bool) -> None:
    text = HOSTILE[name]
    safe = text.translate(XML_SAFE)
    channel = etree.fromstring(render(doc_with(text, full=full), "rss", "https://news.example.com/feeds/all.rss", NOW)
                               ).find("channel")
    item = channel.find("item")
    assert channel.findtext("title") == safe and channel.findtext("description") == safe
    assert item.findtext("title") == safe and item.findtext(f"{DC}creator") == safe
    assert item.findtext("category") == safe
    description = item.findtext("description")  # HTML, as readers take it
    assert html_elements(description) == [] and html_text(description) == safe
    if full:
        encoded = item.findtext("{http://purl.org/rss/1.0/modules/content/}encoded")
        assert html_elements(encoded) == ["p"] and html_text(encoded) == "본문 & 끝"
    assert item.findtext("link") == "https://news.example.com/a1?x=1&y=<2>"


@pytest.mark.parametrize("full", [False, True], ids=["summary-only", "full-content"])
@pytest.mark.parametrize("name", list(HOSTILE))
def test_atom(name: str, full: bool) -> None:
    text = HOSTILE[name]
    safe = text.translate(XML_SAFE)
    feed = etree.fromstring(render(doc_with(text, full=full), "atom", "https://news.example.com/feeds/all.atom", NOW))
    entry = feed.find(f"{ATOM}entry")
    assert feed.findtext(f"{ATOM}title") == safe and feed.findtext(f"{ATOM}subtitle") == safe
    assert entry.findtext(f"{ATOM}title") == safe
    assert entry.find(f"{ATOM}title").get("type", "text") == "text"
    summary = entry.find(f"{ATOM}summary")
    assert summary.get("type") == "text" and summary.text == safe
    assert entry.findtext(f"{ATOM}author/{ATOM}name") == safe
    assert entry.find(f"{ATOM}category").get("label") == safe
    if full:
        content = entry.find(f"{ATOM}content")
        assert content.get("type") == "html" and html_elements(content.text) == ["p"]


@pytest.mark.parametrize("full", [False, True], ids=["summary-only", "full-content"])
@pytest.mark.parametrize("name", list(HOSTILE))
def test_json_feed(name: str, full: bool) -> None:
    text = HOSTILE[name]
    safe = text.translate(XML_SAFE)
    feed = json.loads(render(doc_with(text, full=full), "json", "https://news.example.com/feeds/all.json", NOW))
    [item] = feed["items"]
    assert (feed["title"], feed["description"], item["title"], item["summary"]) == (safe, safe, safe, safe)
    assert item["authors"] == [{"name": safe}] and item["tags"] == [safe, safe]
    if full:
        assert html_elements(item["content_html"]) == ["p"]
    else:  # the summary, as HTML: text again for every reader
        assert html_elements(item["content_html"]) == [] and html_text(item["content_html"]) == safe


def test_upstream_escaped_markup_reaches_readers_as_text() -> None:
    """The reported case, from an upstream item to our RSS: `&lt;script&gt;` in its description."""
    entry = RawEntry(guid="g1", is_guid_trusted=True, url="https://upstream.example/1", title="제목",
                     summary_html="경고: &lt;script&gt;alert(document.cookie)&lt;/script&gt; 주의", content_html="",
                     byline=None, author_email=None, categories=(), image_url=None, published_at=NOW,
                     updated_at=None)
    article = normalise(entry, source_url=None, default_category="politics", category_map={},
                        fetched_at=NOW + timedelta(minutes=1))
    assert article.summary == "경고: <script>alert(document.cookie)</script> 주의"  # text, as the upstream meant
    item = FeedItem(id="tag:x,2026-11-25:article/1", url=article.url, title=article.title, summary=article.summary,
                    content_html=None, byline=None, author_email=None, category=None, category_label=None, tags=(),
                    image_url=None, published_at=NOW, updated_at=NOW)
    doc = FeedDoc(slug="all", title="t", description="d", home_url="https://news.example.com/", language="ko",
                  author="a", timezone=ZoneInfo("Asia/Seoul"), items=(item,))
    rss = etree.fromstring(render(doc, "rss", "https://news.example.com/feeds/all.rss", NOW))
    description = rss.find("channel/item").findtext("description")
    assert "script" not in html_elements(description)
    feed = json.loads(render(doc, "json", "https://news.example.com/feeds/all.json", NOW))
    assert "script" not in html_elements(feed["items"][0]["content_html"])
