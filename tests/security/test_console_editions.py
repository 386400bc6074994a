"""Attacks on the console's edition pages: a hostile feed's markup in the preview, forged and cross-site POSTs,
odd readers and ids, the framed preview opened on its own."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.conftest import NOW
from tests.console.conftest import Console, console  # noqa: F401  (the fixture, used here too)
from tests.security.conftest import stored_article

AT = NOW - timedelta(hours=2)
HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'</textarea>'


def hostile_article(c: Console) -> int:
    c.services.store.upsert_articles([stored_article(9, title=f"기사 {HOSTILE}", summary=f"요약 {HOSTILE}")],
                                     source_id=None, now=NOW)
    return c.services.subscribers.add("kim@example.com", categories=["politics"], editions=["daily"],
                                      now=c.clock(), confirmed=True, method="admin")[1].id


def test_a_hostile_title_is_escaped_on_the_page_and_inert_in_the_frame(console: Console) -> None:
    reader = hostile_article(console)
    viewer = console.login("viewer").client
    page = viewer.get(f"/admin/editions/preview?edition=daily&who={reader}")
    assert page.status_code == 200
    assert "<script>alert" not in page.text and not re.search(r"<img[^>]+onerror", page.text, re.I)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text  # the text part, shown as text
    framed = viewer.get(f"/admin/editions/preview/frame?edition=daily&reader={reader}")
    assert "<script" not in framed.text.lower() and not re.search(r"<img[^>]+onerror", framed.text, re.I)
    policies = framed.headers.get_list("content-security-policy")
    assert any(p.split(";")[0].strip() == "sandbox" for p in policies)  # inert even when opened on its own
    assert all("allow-" not in p for p in policies)  # no allow-scripts, no allow-same-origin


@pytest.mark.parametrize("path", ["/admin/editions/{id}/pause", "/admin/editions/preview/test"])
def test_forged_posts_change_nothing(console: Console, path: str) -> None:
    reader = hostile_article(console)
    edition_id = console.services.deliveries.open_edition("daily", AT, AT - timedelta(days=1), console.clock())
    editor = console.login("editor")
    data = {"edition": "daily", "reader": str(reader)}
    assert editor.client.post(path.format(id=edition_id), data=data).status_code == 403  # no token
    assert editor.client.post(path.format(id=edition_id), data={**data, "csrf": "x" * 43}).status_code == 403
    other = console.login("editor")  # another session's token is not this one's
    assert editor.client.post(path.format(id=edition_id), data={**data, "csrf": other.csrf}).status_code == 403
    assert console.services.deliveries.stats(edition_id)[0].status == "sending"
    assert console.smtp.messages == [] and console.services.audit.entries(action="edition.") == []


@pytest.mark.parametrize("who", ["<script>@example.com", "a@b.c\r\nBcc: x@evil.example", "9" * 40, "../../etc"])
def test_odd_readers_are_refused_with_a_page_not_a_crash(console: Console, who: str) -> None:
    hostile_article(console)
    viewer = console.login("viewer").client
    page = viewer.get("/admin/editions/preview", params={"edition": "daily", "who": who})
    assert page.status_code == 422 and "<script>@" not in page.text
    framed = viewer.get("/admin/editions/preview/frame", params={"edition": "daily", "reader": who})
    assert framed.status_code == 404
    editor = console.login("editor")
    answer = editor.post("/admin/editions/preview/test", {"edition": "daily", "reader": who})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/admin/editions/preview?")
    assert "\r" not in answer.headers["location"] and "\n" not in answer.headers["location"]
    assert console.smtp.messages == []


@pytest.mark.parametrize("edition_id", ["0", "99999999999999999999", "-1", "x"])
def test_odd_ids_answer_4xx(console: Console, edition_id: str) -> None:
    editor = console.login("editor")
    assert 400 <= editor.client.get(f"/admin/editions/{edition_id}").status_code < 500
    assert 400 <= editor.post(f"/admin/editions/{edition_id}/pause").status_code < 500
