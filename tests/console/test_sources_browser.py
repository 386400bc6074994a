"""The sources page in Chromium: an editor adds a source pointing at a feed this test serves on loopback, tests it
(its first items as they would be stored, nothing stored), saves it, and sees its articles arrive once the running
scheduler has picked it up (`[scheduler] reload`, 1 s here) and polled it. Screenshots at 375 and 1280 px:
docs/screenshots/console-sources-*.png.

The feed is at 127.0.0.2 under the name feeds.example.test, which the app's fetcher counts as public (as in
tests/console/test_sources.py): the console works under the default outbound policy.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from newsletter.settings import load_settings
from tests.conftest import DATA, ServerThread, wait_until, write_config
from tests.console.browser import WIDTHS, ConsoleBrowser, check_page, needs_browser
from tests.console.conftest import ACCOUNTS, PASSWORD, cheap_accounts
from tests.console.test_sources import PublicLoopback
from tests.security.conftest import EXTRA
from tests.test_fetch import Site, respond

pytestmark = needs_browser

FILE_SOURCE = f"""
[[sources]]
name = "hanbit-economy"
kind = "feed"
path = "{DATA / 'sources' / 'atom_basic.atom'}"
category = "economy"
"""
TITLES = {375: ("국회, 예산안 처리 합의", "여야 원내대표 회동"), 1280: ("한은 기준금리 동결", "수출 석 달째 증가")}


def rss(titles: tuple[str, ...]) -> bytes:
    now = datetime.now(timezone.utc)
    items = "".join(
        f"<item><title>{title}</title><link>http://feeds.example.test/news/{abs(hash(title))}</link>"
        f"<pubDate>{(now - timedelta(minutes=10 * (i + 1))).strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
        f"<author>desk@example.test (김기자)</author><description>{title}. 자세한 내용은 본문에.</description></item>"
        for i, title in enumerate(titles))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>속보 통신</title>'
            f"<link>http://feeds.example.test/</link><description>속보</description>{items}</channel></rss>").encode()


@pytest.fixture(scope="module")
def feed() -> Iterator[Site]:
    site = Site("127.0.0.2")
    for width, titles in TITLES.items():
        site.routes[f"/{width}.xml"] = respond(200, rss(titles), Content_Type="application/rss+xml; charset=utf-8")
    yield site
    site.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app on loopback with its scheduler running (it re-reads the sources every second)."""
    import service
    from feeds.fetch import HostLimiter, HttpFetcher

    folder: Path = tmp_path_factory.mktemp("sources-browser")
    config = write_config(folder / "gazette.toml", database_url=f"sqlite:///{folder / 'g.db'}", lease_ttl="2s",
                          mail_url=f"maildir://{folder / 'outbox'}", extra=EXTRA + FILE_SOURCE)
    services = service.Components(load_settings(config, {"GAZETTE_SCHEDULER_RELOAD": "1s"}))
    services.accounts = cheap_accounts(services)
    services.__dict__["fetcher"] = HttpFetcher(timeout=5, deadline=10, limiter=HostLimiter(4, 0),
                                               resolver=PublicLoopback.resolve, rule=PublicLoopback.rule)
    services.prepare_database(migrate=True)
    for role, email in ACCOUNTS.items():
        services.accounts.add(email, role, PASSWORD)
    with ServerThread(service.create_app(services, services.scheduler_runner())) as server:
        server.services = services  # type: ignore[attr-defined]
        yield server
    services.close()


@pytest.fixture(scope="module")
def browser_session(served: Any, chromium: Any) -> Iterator[ConsoleBrowser]:
    """The console's one Chromium (tests/console/conftest.py), logging in to this module's app."""
    yield ConsoleBrowser(chromium, served.url, ACCOUNTS, PASSWORD, {})


@pytest.mark.parametrize("width", WIDTHS)
def test_an_editor_adds_tests_and_sees_a_source_arrive(served: Any, feed: Site, browser_session: ConsoleBrowser,
                                                       width: int) -> None:
    services = served.services
    name = f"속보 통신 {width}"
    titles = TITLES[width]
    page = browser_session.page("editor", width=width)
    page.goto(served.url + "/admin/sources")
    assert page.get_by_role("heading", name="소스", exact=True).is_visible()
    assert page.get_by_text("설정 파일", exact=True).first.is_visible()  # the file's source, read-only

    page.get_by_role("link", name="소스 추가").click()
    page.wait_for_url("**/admin/sources/new")
    page.locator("input[name=name]").fill(name)
    page.locator("select[name=kind]").select_option("feed")
    page.locator("input[name=url]").fill(f"http://feeds.example.test:{feed.port}/{width}.xml")
    page.locator("input[name=interval]").fill("5m")
    page.locator("select[name=category]").select_option("politics")
    page.get_by_role("button", name="저장하지 않고 테스트").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="저장될 모습 미리 보기").is_visible()
    for title in titles:
        assert page.get_by_role("heading", name=title).is_visible()
    assert all(a.title not in titles for a in services.store.articles(limit=100))  # the test stored nothing
    check_page(page, "sources-test")

    page.get_by_role("button", name="저장", exact=True).click()
    page.wait_for_url("**/admin/sources?flash=*")
    assert page.get_by_role("status").is_visible()

    def arrived() -> bool:
        return {a.title for a in services.store.articles(limit=100)} >= set(titles)

    wait_until(arrived, 30, message="the running scheduler did not pick the new source up")
    state = wait_until(lambda: (s := services.store.source(name)) and s.last_success_at and s, 30)
    assert state.consecutive_failures == 0
    page.reload()
    row = page.get_by_role("row").filter(has_text=name)
    assert row.get_by_text("정상").is_visible() and row.get_by_text("콘솔").is_visible()
    check_page(page, "sources")
    page.context.close()


def test_a_viewer_sees_the_list_without_buttons(served: Any, browser_session: ConsoleBrowser) -> None:
    page = browser_session.page("viewer", width=1280, lang="en")
    page.goto(served.url + "/admin/sources")
    assert page.get_by_text("from config", exact=True).first.is_visible()
    assert page.get_by_role("link", name="Add a source").count() == 0
    assert page.get_by_role("button", name="Test").count() == 0
    check_page(page)
    page.context.close()
