"""The edition pages in Chromium on the demo site: the schedule, a run's report, the preview framed in its sandbox,
"send a test to me"; at 375 and 1280 px, in Korean and English, through axe-core."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from tests.console.browser import WIDTHS, check_page, needs_browser
from tests.console.conftest import ACCOUNTS
from tests.conftest import wait_until

pytestmark = needs_browser

WORDS = {"ko": {"title": "발송 회차", "schedule": "발송 일정", "recent": "최근 발송", "counts": "상태별 발송",
                "clicks": "기사별 클릭", "preview": "미리 보기", "html": "HTML 본문", "test": "나에게 테스트 보내기",
                "sent": "테스트 메일을 내 주소로 보냈습니다."},
         "en": {"title": "Editions", "schedule": "Schedule", "recent": "Recent runs", "counts": "Deliveries by state",
                "clicks": "Clicks per article", "preview": "Preview", "html": "HTML part", "test": "Send a test to me",
                "sent": "The test mail went to your address."}}
READER = "weekly.reader@example.com"  # of the weekly edition only: the daily run leaves their digest full


def a_reader(console_site: Any) -> str:
    services = console_site.services
    if services.subscribers.find(READER) is None:
        services.subscribers.add(READER, categories=["economy", "culture"], editions=["weekly"],
                                 now=services.clock(), confirmed=True, method="admin", language="ko")
    return READER


def a_run(console_site: Any) -> int:
    """The demo's daily edition, sent once (to its maildir) for the whole session."""
    services = console_site.services
    found = services.deliveries.find_edition("daily")
    if found is None:
        at = services.clock().replace(microsecond=0)
        found = services.send("daily", at, everyone=True).edition_id
    return found


SESSIONS: dict[tuple[str, str], Any] = {}  # (site, role) -> a logged-in browser's storage state


def open_page(console_browser: Any, role: str, *, width: int, lang: str) -> Any:
    """A logged-in page as `role`: one login per role for the module (the login form is rate limited per client
    address), each test in a fresh context with that session, at its own width and language."""
    key = (console_browser.url, role)
    if key not in SESSIONS:
        page = console_browser.page(role, width=width, lang=lang)
        SESSIONS[key] = page.context.storage_state()
        return page
    context = console_browser.browser.new_context(viewport={"width": width, "height": 900},
                                                  locale="ko-KR" if lang == "ko" else "en-US",
                                                  storage_state=SESSIONS[key])
    page = context.new_page()
    page.goto(f"{console_browser.url}/admin?lang={lang}")  # the language, for this context's pages
    return page


def suffix(lang: str) -> str:
    return "" if lang == "ko" else "-en"


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("width", WIDTHS)
def test_the_schedule_and_the_recent_runs(console_browser: Any, console_site: Any, width: int, lang: str) -> None:
    edition_id = a_run(console_site)
    page = open_page(console_browser, "viewer", width=width, lang=lang)
    page.goto(f"{console_site.url}/admin/editions")
    w = WORDS[lang]
    assert page.get_by_role("heading", name=w["title"], exact=True).is_visible()
    assert page.get_by_role("heading", name=w["schedule"]).is_visible()
    assert page.get_by_role("heading", name=w["recent"]).is_visible()
    assert page.get_by_text("0 18 * * mon-fri").is_visible()
    assert page.locator(f'a[href="/admin/editions/{edition_id}"]').is_visible()
    check_page(page, "editions" + suffix(lang))
    page.context.close()


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("width", WIDTHS)
def test_a_runs_report(console_browser: Any, console_site: Any, width: int, lang: str) -> None:
    edition_id = a_run(console_site)
    page = open_page(console_browser, "editor", width=width, lang=lang)
    page.goto(f"{console_site.url}/admin/editions")
    page.locator(f'a[href="/admin/editions/{edition_id}"]').click()
    page.wait_for_url(f"**/admin/editions/{edition_id}")
    w = WORDS[lang]
    assert page.get_by_role("heading", name=w["counts"]).is_visible()
    assert page.get_by_role("heading", name=w["clicks"]).is_visible()
    check_page(page, "edition" + suffix(lang))
    page.context.close()


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("width", WIDTHS)
def test_the_preview_is_framed_and_a_test_goes_to_me(console_browser: Any, console_site: Any, width: int,
                                                      lang: str) -> None:
    reader = a_reader(console_site)
    page = open_page(console_browser, "editor", width=width, lang=lang)
    w = WORDS[lang]
    page.goto(f"{console_site.url}/admin/editions")
    page.locator("form[action='/admin/editions/preview'] select[name=edition]").select_option("weekly")
    page.get_by_label("구독자 (주소 또는 번호)" if lang == "ko" else "Subscriber (address or number)").fill(reader)
    page.locator("form[action='/admin/editions/preview'] button").click()
    page.wait_for_url("**/admin/editions/preview?**")
    frame = page.locator("iframe.preview")
    assert frame.is_visible()
    assert frame.get_attribute("sandbox") == ""
    body = page.frame_locator("iframe.preview").locator("body")
    wait_until(lambda: body.inner_text().strip(), message="the framed mail stayed empty")
    assert page.locator("pre.text").is_visible()
    check_page(page, "edition-preview" + suffix(lang))

    outbox = Path(console_site.folder) / "outbox" / "new"
    before = set(outbox.iterdir()) if outbox.exists() else set()
    page.get_by_role("button", name=w["test"]).click()
    page.wait_for_url("**flash=console_flash_test_sent**")
    assert page.get_by_role("status").filter(has_text=w["sent"]).is_visible()
    [new] = wait_until(lambda: set(outbox.iterdir()) - before)
    mail = message_from_bytes(new.read_bytes(), policy=policy.default)
    assert mail["To"].addresses[0].addr_spec == ACCOUNTS["editor"]
    assert mail["Subject"].startswith("[테스트] ")  # the reader's language, not the console's
    page.context.close()
