"""The console's frame in Chromium: logging in, the navigation each role sees, the language switch, logging out."""

from __future__ import annotations

from typing import Any

import pytest

from tests.console.browser import WIDTHS, check_page, needs_browser

pytestmark = needs_browser


@pytest.mark.parametrize("width", WIDTHS)
def test_the_login_page(console_site: Any, chromium: Any, width: int) -> None:
    context = chromium.new_context(viewport={"width": width, "height": 900}, locale="ko-KR")
    page = context.new_page()
    page.goto(console_site.url + "/admin")
    assert page.url.startswith(console_site.url + "/admin/login")
    assert page.get_by_role("heading", name="콘솔 로그인").is_visible()
    check_page(page, "login")
    context.close()


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_each_role_sees_its_sections(console_browser: Any, lang: str) -> None:
    nav = {"ko": ("사용자", "감사 기록"), "en": ("Users", "Audit log")}[lang]
    for role, admin_only in (("viewer", False), ("editor", False), ("admin", True)):
        page = console_browser.page(role, lang=lang)
        sections = page.get_by_role("navigation")
        assert sections.get_by_role("link", name=nav[0], exact=True).count() == int(admin_only)
        assert sections.get_by_role("link", name=nav[1], exact=True).count() == int(admin_only)
        page.context.close()


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_logging_out(console_browser: Any, lang: str) -> None:
    page = console_browser.page("viewer", lang=lang, fresh=True)
    page.get_by_role("button", name={"ko": "로그아웃", "en": "Log out"}[lang]).click()
    page.wait_for_url("**/admin/login**")
    assert page.get_by_role("status").inner_text() == {"ko": "로그아웃했습니다.", "en": "You are logged out."}[lang]
    page.goto(console_site_url(page) + "/admin")
    assert "/admin/login" in page.url  # the session is over
    page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_account_page(console_browser: Any, width: int) -> None:
    page = console_browser.page("editor", width=width)
    page.goto(console_site_url(page) + "/admin/account")
    assert page.get_by_role("heading", name="내 계정").is_visible()
    check_page(page, "account")
    page.keyboard.press("Tab")  # the first stop is the skip link, and it leads to the content
    assert page.evaluate("document.activeElement.textContent") == "본문으로 건너뛰기"
    page.context.close()


def console_site_url(page: Any) -> str:
    return page.url.split("/admin")[0]
