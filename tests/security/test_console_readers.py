"""Attacks on the console's subscribers and articles pages: hostile search text (SQL, LIKE wildcards, very long,
NUL, odd Unicode) is only ever data, never a 500 and never a wider match; names, addresses and titles that carry
markup come out as text; an erasure cannot be driven from elsewhere, and the exports defuse spreadsheet formulas."""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.conftest import NOW
from tests.console.conftest import Console
from tests.security.conftest import stored_article

HOSTILE = [
    pytest.param("' OR '1'='1", id="sql-quote"),
    pytest.param("x'; DROP TABLE subscribers; --", id="sql-drop"),
    pytest.param('" OR 1=1 --', id="sql-double-quote"),
    pytest.param("%", id="like-percent"),
    pytest.param("_", id="like-underscore"),
    pytest.param("%_%", id="like-both"),
    pytest.param("\\", id="backslash"),
    pytest.param("/", id="escape-char"),
    pytest.param("[a-z]*", id="glob"),
    pytest.param("a" * 320, id="long"),
    pytest.param("\u202e\u200b\ufeff", id="invisible-unicode"),
    pytest.param("<script>alert(1)</script>", id="markup"),
]


def readers(console: Console) -> None:
    store = console.services.subscribers
    for i in range(3):
        store.add(f"plain{i}@example.com", categories=["politics"], editions=[store.editions[0]], now=NOW,
                  confirmed=True, method="import")


def shown(page: str) -> list[str]:
    return re.findall(r'<a href="/admin/subscribers/\d+">([^<]+)</a>', page)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_subscriber_searches_match_nothing_and_break_nothing(console: Console, text: str) -> None:
    readers(console)
    viewer = console.login("viewer")
    page = viewer.client.get("/admin/subscribers", params={"q": text})
    assert page.status_code == 200, page.text
    assert shown(page.text) == []  # never a wider match: wildcards are letters
    assert "<script>alert(1)</script>" not in page.text
    assert console.services.subscribers.list(limit=10)[0] == 3  # and the table is still there


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_article_searches_match_nothing_and_break_nothing(console: Console, text: str) -> None:
    page = console.login("viewer").client.get("/admin/articles", params={"q": text[:200]})
    assert page.status_code == 200, page.text
    assert re.findall(r'<a href="/admin/articles/[^"]+">', page.text) == []
    assert "<script>alert(1)</script>" not in page.text


@pytest.mark.parametrize("path", ["/admin/subscribers", "/admin/articles", "/admin/subscribers/export.csv"])
@pytest.mark.parametrize("query", ["q=a%00b", "q=" + "x" * 5000, "status=%00", "category=' OR 1=1 --",
                                   "before=-1", "before=1e9", "page=-1", "from=2026-02-30", "to=0000-01-01"])
def test_malformed_queries_are_refused_never_a_500(console: Console, path: str, query: str) -> None:
    answer = console.login("editor").client.get(f"{path}?{query}")
    assert answer.status_code < 500, answer.text
    if answer.status_code == 200 and path.endswith(".csv"):  # a filter it ignores still exports only what matches
        assert answer.text.count("\n") <= 1


def test_markup_in_names_and_addresses_is_text(console: Console) -> None:
    from sqlalchemy import update

    from newsletter.db import subscribers

    store = console.services.subscribers
    _, reader = store.add("o'neil&co@example.com", categories=["politics"], editions=[store.editions[0]], now=NOW,
                          confirmed=True, method="import", name="<script>alert('name')</script>",
                          consent_text="<b>동의</b>")
    assert reader is not None
    assert "o&#39;neil&amp;co@example.com" in console.login("viewer").client.get("/admin/subscribers").text
    with console.services.engine.begin() as db:  # a row from before addresses were checked, or written by hand
        db.execute(update(subscribers).where(subscribers.c.id == reader.id)
                   .values(email="<img src=x onerror=alert(1)>@example.com"))
    editor = console.login("editor")
    for path in ("/admin/subscribers", f"/admin/subscribers/{reader.id}", f"/admin/subscribers/{reader.id}/erase"):
        page = editor.client.get(path).text
        assert "<img src=x" not in page and "<script>alert" not in page and "<b>동의</b>" not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;" in editor.client.get(
        f"/admin/subscribers/{reader.id}").text


def test_markup_in_titles_sources_and_campaigns_is_text(console: Console) -> None:
    store = console.services.store
    store.upsert_articles([stored_article(9, title='<img src=x onerror="alert(1)">헤드라인', byline="<b>기자</b>",
                                          url="https://news.example.com/9?a=<x>")], source_id=None, now=NOW)
    store.add_campaign_click("<script>c</script>", "art000000009")
    viewer = console.login("viewer")
    listing = viewer.client.get("/admin/articles", params={"q": "헤드라인"}).text
    article = viewer.client.get("/admin/articles/art000000009").text
    for page in (listing, article):
        assert "<img src=x" not in page and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;헤드라인" in page
    assert "<b>기자</b>" not in article and "<script>c</script>" not in article


def test_a_javascript_url_is_not_a_link(console: Console) -> None:
    # Article URLs are normalised on the way in, so a stored one is http(s); the page still never links anything else.
    store = console.services.store
    store.upsert_articles([stored_article(8)], source_id=None, now=NOW)
    page = console.login("viewer").client.get("/admin/articles/art000000008").text
    assert 'href="javascript:' not in page


def test_an_erasure_from_another_site_changes_nothing(console: Console) -> None:
    readers(console)
    _, [reader, *_] = console.services.subscribers.list(limit=1)
    editor = console.login("editor")
    forged = editor.client.post(f"/admin/subscribers/{reader.id}/erase", data={"confirm": "erase"},
                                headers={"Origin": "https://evil.example"})  # no token: what a foreign form sends
    assert forged.status_code == 403
    assert console.services.subscribers.get(reader.id) is not None


def test_every_csv_cell_that_could_run_is_defused(console: Console) -> None:
    store = console.services.subscribers
    store.add("formula@example.com", categories=["politics"], editions=[store.editions[0]], now=NOW,
              confirmed=True, method="import", name='=cmd|" /C calc"!A0')
    store.add("-2+3@example.com", categories=["politics"], editions=[store.editions[0]], now=NOW,
              confirmed=True, method="import", name="@SUM(1)")
    body = console.login("editor").client.get("/admin/subscribers/export.csv").content.decode("utf-8-sig")
    for row in csv.reader(io.StringIO(body)):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert "'-2+3@example.com" in body and "'=cmd" in body
