"""The subscribers and articles pages in Chromium, on the demo site: search, open a subscriber, erase one through
its confirmation page, open an article; each page at phone and desktop widths with axe-core, in Korean and English.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.console.browser import WIDTHS, check_page, needs_browser

pytestmark = needs_browser

WORDS = {
    "ko": {"subscribers": "구독자", "address": "이메일 주소", "search": "찾기", "erase": "구독자 삭제",
           "confirm": "삭제합니다", "erased": "구독자를 삭제했습니다.", "articles": "기사", "title": "제목",
           "revisions": "수정 이력", "clicks": "경로별 클릭", "consents": "동의 기록"},
    "en": {"subscribers": "Subscribers", "address": "Email address", "search": "Search", "erase": "Erase the subscriber",
           "confirm": "Erase", "erased": "The subscriber is erased.", "articles": "Articles", "title": "Title",
           "revisions": "Revisions", "clicks": "Clicks by channel", "consents": "Consent records"},
}


def site_url(page: Any) -> str:
    return page.url.split("/admin")[0]


def a_reader(console_site: Any, email: str) -> int:
    store = console_site.services.subscribers
    found = store.find(email)
    if found is None:
        _, found = store.add(email, categories=["politics"], editions=[store.editions[0]],
                             now=console_site.services.clock(), confirmed=True, method="import",
                             consent_text="개인정보 수집·이용에 동의합니다.", name="브라우저 독자")
    return found.id


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_search_and_open_a_subscriber(console_site: Any, console_browser: Any, lang: str) -> None:
    w = WORDS[lang]
    a_reader(console_site, f"browser.{lang}@example.com")
    page = console_browser.page("viewer", lang=lang)
    page.get_by_role("navigation").get_by_role("link", name=w["subscribers"], exact=True).click()
    page.get_by_role("heading", name=w["subscribers"], exact=True).wait_for()
    page.get_by_label(w["address"]).fill(f"browser.{lang}")
    page.get_by_role("button", name=w["search"]).click()
    page.get_by_role("link", name=f"browser.{lang}@example.com").click()
    page.get_by_role("heading", name=f"browser.{lang}@example.com").wait_for()
    assert page.get_by_role("heading", name=w["consents"]).is_visible()
    assert page.get_by_role("link", name=w["erase"]).count() == 0  # a viewer reads
    check_page(page)
    page.context.close()


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_erase_a_subscriber_through_the_confirmation_page(console_site: Any, console_browser: Any,
                                                          lang: str) -> None:
    w = WORDS[lang]
    reader_id = a_reader(console_site, f"erase.me.{lang}@example.com")
    page = console_browser.page("editor", lang=lang)
    page.goto(f"{site_url(page)}/admin/subscribers/{reader_id}")
    page.get_by_role("link", name=w["erase"]).click()
    page.get_by_role("heading", name=w["erase"]).wait_for()
    check_page(page, "subscriber-erase" if lang == "ko" else None)
    assert console_site.services.subscribers.get(reader_id) is not None  # the link alone erased nothing
    page.get_by_role("button", name=w["confirm"], exact=True).click()
    page.get_by_role("status").filter(has_text=w["erased"]).wait_for()
    assert console_site.services.subscribers.get(reader_id) is None
    page.context.close()


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_search_and_open_an_article(console_site: Any, console_browser: Any, lang: str) -> None:
    w = WORDS[lang]
    some = console_site.services.store.articles(limit=1)[0]
    page = console_browser.page("viewer", lang=lang)
    page.get_by_role("navigation").get_by_role("link", name=w["articles"], exact=True).click()
    page.get_by_label(w["title"]).fill(some.title[:6])
    page.get_by_role("button", name=w["search"]).click()
    page.get_by_role("link", name=some.title, exact=True).first.click()
    page.get_by_role("heading", name=w["revisions"]).wait_for()
    assert page.get_by_role("heading", name=w["clicks"]).is_visible()
    check_page(page)
    page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("lang", ["ko", "en"])
def test_each_page_fits_and_passes_axe(console_site: Any, console_browser: Any, width: int, lang: str) -> None:
    reader_id = a_reader(console_site, "screenshot.reader@example.com")
    store = console_site.services.store
    article = store.articles(limit=1)[0]
    now = console_site.services.clock()
    store.add_views_batch([(article.id, now - timedelta(days=d), 3 + (d * 7) % 11) for d in range(0, 20, 2)])
    store.add_click(article.id, now, "email")
    page = console_browser.page("editor", width=width, lang=lang)
    base = site_url(page)
    for path, name in (("/admin/subscribers", "subscribers"), (f"/admin/subscribers/{reader_id}", "subscriber"),
                       ("/admin/subscribers/new", "subscriber-new"), ("/admin/articles", "articles"),
                       (f"/admin/articles/{article.id}", "article")):
        page.goto(base + path)
        check_page(page, name if lang == "ko" else None)
    page.context.close()
