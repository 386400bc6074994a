"""The admin pages in Chromium, in Korean and English: create a partner and see its key once, rotate the key (the new
one shown once, the old one revoked from the same page), see the usage chart; add a user; filter the audit log;
each page at 375 and 1280 px with axe-core, screenshots in docs/screenshots/."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.console.browser import WIDTHS, check_page, needs_browser

pytestmark = needs_browser

W = {
    "ko": {"slug": "식별자", "name": "이름", "create": "제휴사 만들기", "key_title": "새 제휴사 키", "key": "키",
           "rotate": "교체", "revoked": "키를 폐기했습니다.", "chart": "하루 사용량 (최근 30일)", "email": "이메일",
           "role": "권한", "first_password": "첫 비밀번호", "add": "추가", "added": "사용자를 추가했습니다",
           "action": "작업", "filter": "거르기", "politics": "정치"},
    "en": {"slug": "Slug", "name": "Name", "create": "Create partner", "key_title": "New partner key", "key": "Key",
           "rotate": "Rotate", "revoked": "The key is revoked.", "chart": "Usage per day (last 30 days)",
           "email": "Email", "role": "Role", "first_password": "First password", "add": "Add",
           "added": "The user is added", "action": "Action", "filter": "Filter", "politics": "정치"},
}


@pytest.fixture(scope="module")
def logged_in() -> dict[str, Any]:
    return {}


@pytest.fixture
def admin_pages(console_browser: Any, logged_in: dict[str, Any]) -> Any:
    """Pages of one logged-in session per role for the whole module: the login form allows 10 attempts per client
    in 5 minutes, and every browser test comes from 127.0.0.1."""
    def page(role: str = "admin", *, width: int = 1280, lang: str = "ko") -> Any:
        if role not in logged_in:
            first = console_browser.page(role)
            logged_in[role] = first.context.storage_state()
            first.context.close()
        context = console_browser.browser.new_context(viewport={"width": width, "height": 900},
                                                      locale="ko-KR" if lang == "ko" else "en-US",
                                                      storage_state=logged_in[role])
        opened = context.new_page()
        opened.goto(f"{console_browser.url}/admin?lang={lang}")
        return opened
    return page


def base(page: Any) -> str:
    return page.url.split("/admin")[0]


def shown_key(page: Any, words: dict[str, str]) -> str:
    page.get_by_role("heading", name=words["key_title"]).wait_for()
    key = page.get_by_label(words["key"], exact=True).input_value()
    assert key.startswith("gzp_") and len(key) > 40
    return key


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_create_a_partner_rotate_its_key_and_see_its_usage(admin_pages: Any, lang: str) -> None:
    words, slug = W[lang], f"desk-{lang}"
    page = admin_pages("admin", lang=lang)
    page.goto(base(page) + "/admin/partners")
    page.get_by_role("textbox", name=re.compile("^" + words["slug"] + " ")).fill(slug)
    page.get_by_label(words["name"], exact=True).fill(f"데스크 {lang} <b>")
    page.get_by_label(words["politics"], exact=True).check()
    page.get_by_role("button", name=words["create"]).click()
    first = shown_key(page, words)
    if lang == "ko":
        check_page(page, "partner-key")
    page.goto(base(page) + f"/admin/partners/{slug}")
    assert first not in page.content()  # once, and never again
    assert page.get_by_role("heading", name=f"데스크 {lang} <b> {slug}").is_visible()  # the name is text

    # The partner fetches with its first key, then the key is rotated: a new key, and the old one revoked.
    feed = f"{base(page)}/partners/{slug}/feeds/all.json"
    assert httpx.get(feed, headers={"Authorization": f"Bearer {first}"}).status_code == 200
    page.get_by_role("button", name=words["rotate"]).first.click()
    second = shown_key(page, words)
    assert second != first
    page.get_by_role("button", name=re.compile(r"^(키 #\d+ 폐기|Revoke key #\d+)$")).click()
    page.get_by_text(words["revoked"]).wait_for()
    assert httpx.get(feed, headers={"Authorization": f"Bearer {first}"}).status_code == 403
    assert httpx.get(feed, headers={"Authorization": f"Bearer {second}"}).status_code == 200
    page.reload()
    assert first not in page.content() and second not in page.content()

    chart = page.get_by_role("img", name=words["chart"])
    assert chart.is_visible()
    page.locator("details summary").click()
    assert page.locator("details").get_by_role("rowheader").count() == 1  # today's numbers, as a table
    check_page(page, None if lang == "en" else "partner-rotated")
    page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_partner_pages_at_each_width(admin_pages: Any, width: int) -> None:
    page = admin_pages("admin", width=width)
    page.goto(base(page) + "/admin/partners")
    assert page.get_by_role("heading", name="제휴사", exact=True).is_visible()
    check_page(page, "partners")
    page.goto(base(page) + "/admin/partners/portal")
    assert page.get_by_role("img", name="하루 사용량 (최근 30일)").is_visible()
    check_page(page, "partner")
    key_link = page.get_by_role("link", name=re.compile("키 #\\d+ 폐기")).first
    key_link.click()
    check_page(page, "partner-revoke")
    page.context.close()
    viewer = admin_pages("viewer", width=width, lang="en")
    viewer.goto(base(viewer) + "/admin/partners/portal")
    assert viewer.get_by_role("button", name="Rotate").count() == 0  # a viewer reads
    check_page(viewer)
    viewer.context.close()


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("width", WIDTHS)
def test_an_admin_adds_a_user(admin_pages: Any, lang: str, width: int) -> None:
    words, email = W[lang], f"desk-{lang}-{width}@news.example.com"
    page = admin_pages("admin", lang=lang, width=width)
    page.goto(base(page) + "/admin/users")
    form = page.locator("form").filter(has=page.get_by_label(words["first_password"]))
    form.get_by_label(words["email"]).fill(email)
    form.get_by_label(words["role"]).select_option("editor")
    form.get_by_label(words["first_password"]).fill("a long first password")
    form.get_by_role("button", name=words["add"], exact=True).click()
    page.get_by_text(words["added"]).wait_for()
    assert page.get_by_role("rowheader", name=email).is_visible()
    check_page(page, "users" if lang == "ko" else None)
    page.goto(base(page) + f"/admin/users/{console_browser_user_id(page, email)}/remove")
    check_page(page, "user-remove" if lang == "ko" else None)
    page.context.close()


def console_browser_user_id(page: Any, email: str) -> str:
    page.goto(base(page) + "/admin/users")
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=email))
    href = row.get_by_role("link").first.get_attribute("href")
    return href.split("/")[3]


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("width", WIDTHS)
def test_the_audit_log_filters_by_action(admin_pages: Any, lang: str, width: int) -> None:
    words = W[lang]
    page = admin_pages("admin", lang=lang, width=width)
    page.goto(base(page) + "/admin/audit")
    page.get_by_label(words["action"]).select_option("user.login")
    page.get_by_role("button", name=words["filter"], exact=True).click()
    page.wait_for_url("**action=user.login**")
    actions = page.locator("tbody td code").all_inner_texts()
    assert actions and set(actions) == {"user.login"}
    check_page(page, "audit" if lang == "ko" else None)
    page.context.close()
