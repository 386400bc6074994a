"""Pages in a real browser: Debian's Chromium driven by Playwright, with a Korean font.

Screenshots land in docs/screenshots/ so a reviewer can look without running anything. Where Chromium or a
Korean font is missing (not root, not Debian), the tests skip and say which; `make test` installs both where
it can.
"""

from __future__ import annotations

import pytest

from feeds.ingest import ingest_all
from newsletter.settings import load_settings
from tests.conftest import ROOT, ServerThread, demo_config
from tests.console.browser import (
    SCREENSHOTS,
    launched_chromium,
    needs_browser,
)

pytestmark = needs_browser


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    import service
    from feeds.fetch import HttpFetcher

    folder = tmp_path_factory.mktemp("demo")
    demo_config(folder)
    services = service.Components(load_settings(folder / "gazette.toml", {}))
    services.prepare_database(migrate=True)
    fetcher = HttpFetcher()
    ingest_all(services.settings.sources, store=services.store, fetcher=fetcher, clock=services.clock)
    fetcher.close()
    services.subscribers.import_csv((ROOT / "examples" / "subscribers.csv").read_text(encoding="utf-8"),
                                    known_categories=[c.slug for c in services.settings.categories],
                                    now=services.clock(), confirmed=True)
    with ServerThread(service.create_app(services)) as server:
        yield server, services, folder
    services.engine.dispose()


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    with launched_chromium() as browser:
        yield browser


@pytest.mark.parametrize("width", [375, 1280])
def test_index_page(demo_server, browser, width: int) -> None:  # type: ignore[no-untyped-def]
    server, _, _ = demo_server
    page = browser.new_page(viewport={"width": width, "height": 900}, locale="ko-KR")
    page.goto(server.url + "/")
    assert page.title() == "한빛일보"
    assert page.locator('link[rel="alternate"]').count() == 10 * 3  # all, popular, 4 categories and theirs × 3
    assert page.locator("#feeds > li").count() == 10
    assert page.locator("#latest > li").count() == 10
    assert page.evaluate("document.fonts.check('16px NanumGothic', '한')")
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing overflows sideways
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"index-{width}.png"), full_page=True)
    page.close()


@pytest.mark.parametrize("width", [375, 800])
def test_digest_mail_renders(demo_server, browser, width: int) -> None:  # type: ignore[no-untyped-def]
    import email
    import mailbox
    from email import policy

    _, services, folder = demo_server
    outbox = folder / "outbox"
    if not outbox.exists():
        services.send("daily", services.clock().replace(microsecond=0), everyone=True)
    box = mailbox.Maildir(str(outbox), create=False)
    message = email.message_from_bytes(box.get_bytes(sorted(box.keys())[0]), policy=policy.default)
    html = message.get_body(("html",)).get_content()
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_content(html)
    assert page.locator("h1").inner_text() == "오늘의 뉴스"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"digest-{width}.png"), full_page=True)
    page.close()
