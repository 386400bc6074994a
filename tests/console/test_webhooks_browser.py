"""`/admin/webhooks` in Chromium, over the demo (whose operator keeps webhooks off the private network): add an
endpoint and see its secret once, send a test event that the outbound guard refuses and read why in the log; each
page at 375 and 1280 px with axe-core, screenshots in docs/screenshots/."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.console.browser import check_page, needs_browser

pytestmark = needs_browser

W = {
    "ko": {"title": "웹훅", "name": "이름", "url": "URL", "add": "엔드포인트 추가", "secret": "비밀값",
           "test": "테스트 이벤트 보내기", "failed": "테스트 이벤트가 전달되지 않았습니다."},
    "en": {"title": "Webhooks", "name": "Name", "url": "URL", "add": "Add endpoint", "secret": "Secret",
           "test": "Send test event", "failed": "The test event was not delivered"},
}


@pytest.mark.parametrize(("lang", "width"), [("ko", 1280), ("ko", 375), ("en", 1280)])
def test_add_an_endpoint_and_send_a_test_event(console_browser: Any, lang: str, width: int) -> None:
    words = W[lang]
    page = console_browser.page("admin", width=width, lang=lang)
    page.get_by_role("link", name=words["title"], exact=True).first.click()
    page.wait_for_url(re.compile(r".*/admin/webhooks$"))
    if width == 1280:
        check_page(page, None if lang == "en" else "webhooks")
    page.get_by_label(words["name"], exact=True).fill(f"편집국 CRM {lang}-{width} <b>")
    page.get_by_role("textbox", name=re.compile("^" + words["url"])).fill("http://localhost:9/hooks")
    page.get_by_label("subscriber.confirmed").check()
    page.get_by_label("edition.sent").check()
    page.get_by_role("button", name=words["add"]).click()
    secret = page.get_by_label(words["secret"], exact=True).input_value()
    assert secret.startswith("whsec_") and len(secret) > 40
    check_page(page, "webhook-secret" if lang == "ko" else None)

    page.get_by_role("link", name=re.compile("^← 편집국 CRM")).click()
    assert secret not in page.content()
    page.get_by_role("button", name=words["test"]).click()
    page.get_by_text(words["failed"]).wait_for()
    assert "allow_private_network" in page.content()  # the guard's reason, in the log
    check_page(page, "webhook" if lang == "ko" else None)
    page.context.close()


def test_a_viewer_has_no_webhooks(console_browser: Any) -> None:
    page = console_browser.page("viewer", lang="en")
    assert page.get_by_role("link", name="Webhooks").count() == 0
    page.goto(page.url.split("/admin")[0] + "/admin/webhooks")
    assert page.get_by_role("heading", name="Webhooks").count() == 0
    page.context.close()
