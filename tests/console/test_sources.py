"""The console's sources page in-process: what each role may do, add with a test first (nothing stored), edit,
pause, resume, delete with a confirmation, the file's sources read-only, errors naming the field, and the audit log.

The feed is served on loopback at 127.0.0.2 under the name `feeds.example.test`, which the app's fetcher counts as
public (the address rule of tests/security/test_ssrf.py): the console works under the default outbound policy, as in
production.
"""

from __future__ import annotations

import html
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import NOW, Clock, SmtpRecorder
from tests.console.conftest import ACCOUNTS, Console, console_over
from tests.test_fetch import Site, respond

FILE_SOURCE = """
[[sources]]
name = "wire"
kind = "feed"
url = "https://wire.example.com/rss"
category = "politics"
"""


def rss(*titles: str) -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>http://feeds.example.test/news/{i}</link><guid>n{i}</guid>"
        f"<pubDate>{(NOW - timedelta(hours=i + 1)).strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
        f"<description>{title} 요약</description></item>" for i, title in enumerate(titles))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>속보</title>'
            f"<link>http://feeds.example.test/</link><description>d</description>{items}</channel></rss>").encode()


class PublicLoopback:
    """feeds.example.test is 127.0.0.2, and 127.0.0.2 counts as public; every other address keeps the real rule."""

    @staticmethod
    def resolve(host: str, port: int) -> list[str]:
        from feeds.outbound import resolve

        return ["127.0.0.2"] if host == "feeds.example.test" else resolve(host, port)

    @staticmethod
    def rule(address: str) -> str | None:
        from feeds.outbound import refused_reason

        return None if address == "127.0.0.2" else refused_reason(address)


@pytest.fixture
def feed() -> Iterator[Site]:
    site = Site("127.0.0.2")
    site.routes["/rss.xml"] = respond(200, rss("첫 기사", "둘째 기사"), Content_Type="application/rss+xml")
    yield site
    site.close()


@pytest.fixture
def console(tmp_path: Path, smtp_server: tuple[SmtpRecorder, str], clock: Clock,
            migrated_sqlite: Path) -> Iterator[Console]:
    from feeds.fetch import HostLimiter, HttpFetcher

    def public_loopback(services: Any) -> None:
        services.__dict__["fetcher"] = HttpFetcher(timeout=5, deadline=10, limiter=HostLimiter(4, 0),
                                                   resolver=PublicLoopback.resolve, rule=PublicLoopback.rule)

    with console_over(tmp_path, smtp_server[0], clock, migrated_sqlite, mail_url=smtp_server[1], extra=FILE_SOURCE,
                      prepare=public_loopback) as site:
        yield site


def form(feed: Site, **changes: str) -> dict[str, str]:
    return {"name": "속보 <b>피드</b>", "kind": "feed", "url": f"http://feeds.example.test:{feed.port}/rss.xml",
            "interval": "10m", "category": "economy", "category_map": "", "allow_hosts": "", "wall_clock_zone": "",
            **changes}


def stored_names(console: Console) -> list[str]:
    return [entry.name for entry in console.services.source_book.entries()]


def test_a_viewer_reads_the_list_and_changes_nothing(console: Console, feed: Site) -> None:
    viewer = console.login("viewer")
    page = viewer.client.get("/admin/sources")
    assert page.status_code == 200
    assert "wire" in page.text and "설정 파일" in page.text  # the file's source, badged
    assert 'href="/admin/sources/new"' not in page.text and "/admin/sources/pause" not in page.text
    assert viewer.client.get("/admin/sources/new").status_code == 403
    for path, data in (("/admin/sources/new", {**form(feed), "action": "save"}),
                       ("/admin/sources/new", {**form(feed), "action": "test"}),
                       ("/admin/sources/test", {"name": "wire"}), ("/admin/sources/pause", {"name": "wire"})):
        assert viewer.post(path, data).status_code == 403, path
    assert stored_names(console) == ["wire"] and feed.hits == {}


def test_an_editor_tests_then_adds_edits_pauses_and_deletes(console: Console, feed: Site) -> None:
    editor = console.login("editor")
    new = editor.client.get("/admin/sources/new")
    assert new.status_code == 200 and 'name="url"' in new.text

    tested = editor.post("/admin/sources/new", {**form(feed), "action": "test"})
    assert tested.status_code == 200, tested.text
    assert "첫 기사" in tested.text and "둘째 기사" in tested.text and "아무것도 저장하지 않았습니다" in tested.text
    assert stored_names(console) == ["wire"] and console.services.store.articles(limit=10) == []

    added = editor.post("/admin/sources/new", {**form(feed), "action": "save"})
    assert added.status_code == 303 and "console_flash_source_added" in added.headers["location"]
    name = "속보 <b>피드</b>"
    assert stored_names(console) == ["wire", name]
    listed = editor.client.get("/admin/sources").text
    assert html.escape(name) in listed and name not in listed  # the name is text, never markup
    created = console.services.audit.entries(action="source.create")[0]
    assert created.actor == ACCOUNTS["editor"] and created.target == f"source:{name}" and created.before is None
    assert created.after["definition"]["url"].endswith("/rss.xml")

    edit = editor.client.get("/admin/sources/edit", params={"name": name})
    assert edit.status_code == 200 and 'value="10m"' in edit.text
    saved = editor.post("/admin/sources/edit", {**form(feed, interval="5m"), "original": name, "action": "save"})
    assert saved.status_code == 303
    updated = console.services.audit.entries(action="source.update")[0]
    assert (updated.before["definition"]["interval"], updated.after["definition"]["interval"]) == ("10m", "5m")

    assert editor.post("/admin/sources/pause", {"name": name}).status_code == 303
    assert "일시 중지" in editor.client.get("/admin/sources").text
    assert console.services.source_book.get(name).is_paused
    assert editor.post("/admin/sources/resume", {"name": name}).status_code == 303
    assert not console.services.source_book.get(name).is_paused

    console.services.ingest(name)
    articles = len(console.services.store.articles(limit=10))
    assert articles == 2
    confirm = editor.client.get("/admin/sources/delete", params={"name": name})
    assert confirm.status_code == 200 and "그대로 남습니다" in confirm.text
    assert stored_names(console) == ["wire", name]  # asking is not deleting
    assert editor.post("/admin/sources/delete", {"name": name}).status_code == 303
    assert stored_names(console) == ["wire"]
    assert len(console.services.store.articles(limit=10)) == articles  # its articles stay
    deleted = console.services.audit.entries(action="source.delete")[0]
    assert deleted.before["name"] == name and deleted.after is None


def test_the_files_sources_are_read_only_here(console: Console) -> None:
    editor = console.login("editor")
    listed = editor.client.get("/admin/sources").text
    assert "설정 파일에서 바꿉니다" in listed
    assert editor.client.get("/admin/sources/edit", params={"name": "wire"}).status_code == 409
    assert editor.client.get("/admin/sources/delete", params={"name": "wire"}).status_code == 409
    for path in ("/admin/sources/pause", "/admin/sources/delete"):
        assert editor.post(path, {"name": "wire"}).status_code == 409
    assert console.services.audit.entries(action="source.") == []


@pytest.mark.parametrize("changes, key", [
    pytest.param({"url": "ftp://feeds.example.test/rss.xml"}, "url", id="url"),
    pytest.param({"interval": "often"}, "interval", id="interval"),
    pytest.param({"category": "", "category_map": "정치 politics"}, "category_map", id="map-line"),
    pytest.param({"name": "wire"}, None, id="a-name-of-the-file"),
])
def test_a_bad_form_comes_back_with_the_field_named(console: Console, feed: Site, changes: dict[str, str],
                                                    key: str | None) -> None:
    editor = console.login("editor")
    answer = editor.post("/admin/sources/new", {**form(feed, **changes), "action": "save"})
    assert answer.status_code == (409 if key is None else 422)
    assert 'role="alert"' in answer.text
    if key is not None:
        assert f"{key}: " in answer.text and 'aria-invalid="true"' in answer.text
    assert stored_names(console) == ["wire"]


def test_a_test_that_cannot_fetch_says_why(console: Console, feed: Site) -> None:
    editor = console.login("editor")
    refused = editor.post("/admin/sources/new", {**form(feed, url=f"http://127.0.0.1:{feed.port}/rss.xml"),
                                                 "action": "test"})
    assert refused.status_code == 502 and "loopback" in refused.text
    assert feed.hits == {}
    missing = editor.post("/admin/sources/test", {"name": "wire"})  # wire.example.com does not resolve
    assert missing.status_code == 502 and "가져오지 못했습니다" in missing.text


def test_a_form_without_the_token_changes_nothing(console: Console, feed: Site) -> None:
    editor = console.login("editor")
    answer = editor.client.post("/admin/sources/new", data={**form(feed), "action": "save"})
    assert answer.status_code == 403 and stored_names(console) == ["wire"]


def test_english_too(console: Console) -> None:
    editor = console.login("editor")
    page = editor.client.get("/admin/sources?lang=en").text
    assert "from config" in page and "Add a source" in page and "Articles a day" in page
