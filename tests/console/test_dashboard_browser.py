"""The dashboard in Chromium, over a month of history: at 375 and 1280 px in Korean and English, nothing overflowing
sideways, no serious axe-core violation, the 30/90-day switch by keyboard, a chart's numbers opened from its
<details>; screenshots docs/screenshots/console-dashboard-{375,1280}.png (Korean)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from newsletter.settings import load_settings
from tests.conftest import NOW, Clock, ServerThread, sqlite_copy, write_config
from tests.console.browser import WIDTHS, ConsoleBrowser, check_page, needs_browser
from tests.console.conftest import ACCOUNTS, PASSWORD, cheap_accounts
from tests.console.dashboard_data import SOURCES, seed_history
from tests.security.conftest import EXTRA

pytestmark = needs_browser


@pytest.fixture(scope="module")
def dashboard_site(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[Any]:
    import service

    folder = tmp_path_factory.mktemp("dashboard")
    settings = load_settings(write_config(folder / "gazette.toml", database_url=sqlite_copy(migrated_sqlite, folder),
                                          mail_url=f"maildir://{folder / 'outbox'}", extra=EXTRA + SOURCES), {})
    services = service.Components(settings, clock=Clock(NOW))
    services.accounts = cheap_accounts(services)
    services.prepare_database(migrate=True)
    seed_history(services, NOW)
    for role, email in ACCOUNTS.items():
        services.accounts.add(email, role, PASSWORD)
    with ServerThread(service.create_app(services)) as server:
        server.sessions = {}  # type: ignore[attr-defined]  # one login per role, kept (the form's rate limit)
        yield server
    services.close()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("lang", ["ko", "en"])
def test_the_dashboard_page(dashboard_site: Any, chromium: Any, width: int, lang: str) -> None:
    page = ConsoleBrowser(chromium, dashboard_site.url, ACCOUNTS, PASSWORD, dashboard_site.sessions).page("viewer", width=width, lang=lang)
    words = {"ko": ("대시보드", "일별 구독 증감", "90일"), "en": ("Dashboard", "Subscriber growth per day", "90 days")}[lang]
    assert page.get_by_role("heading", name=words[0], level=1).is_visible()
    growth = page.get_by_role("img", name=words[1])
    assert growth.is_visible() and growth.bounding_box()["width"] <= width
    check_page(page, "dashboard" if lang == "ko" else None)
    # The span by keyboard alone: tab to the 90-day link and follow it.
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == words[2]:
            break
    else:
        pytest.fail("the 90-day link cannot be reached with the keyboard")
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin?days=90")
    assert page.get_by_role("link", name=words[2]).get_attribute("aria-current") == "page"
    numbers = page.locator("figure.chart details").first
    numbers.locator("summary").click()
    assert numbers.get_by_role("table").is_visible() and numbers.get_by_role("row").count() == 91
    check_page(page)
    page.context.close()
