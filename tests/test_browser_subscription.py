"""The reader's whole subscription path in Chromium, in Korean and in English, at phone and desktop widths.

subscribe -> the confirmation mail, read from a real SMTP server -> its link and button -> preferences -> one-click
unsubscribe by POST as a mail client sends it (no cookie) -> the page offers resubscribe -> resubscribe.
Every page is saved to docs/screenshots/subscription-<step>-<lang>-<width>.png.
"""

from __future__ import annotations

import email
import re
from datetime import timedelta
from email import policy

import httpx
import pytest

from feeds.settings import load_settings
from tests.conftest import NOW, ServerThread, write_config
from tests.test_browser import CHROMIUM, SCREENSHOTS, _skip_reason

pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")

CATEGORIES = """
[[categories]]
slug = "society"
name = "사회"

[[categories]]
slug = "culture"
name = "문화"
"""

WORDS = {
    "ko": {"check": "메일함을 확인해 주세요", "confirm": "구독 확인", "confirmed": "구독이 시작되었습니다", "saved": "저장했습니다",
           "question": "더는 뉴스레터를 받지 않으시겠습니까", "done": "수신을 거부했습니다", "again": "다시 구독을 시작했습니다",
           "expired": "유효 기간이 지났습니다", "economy": "경제", "culture": "문화"},
    "en": {"check": "Check your inbox", "confirm": "Confirm your subscription", "confirmed": "You're subscribed", "saved": "Saved", "question": "Stop sending",
           "done": "You're unsubscribed", "again": "You're subscribed again", "expired": "This link has expired",
           "economy": "경제", "culture": "문화"},
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    import service
    from aiosmtpd.controller import Controller

    from tests.conftest import Clock, SmtpRecorder, free_port

    folder = tmp_path_factory.mktemp("subscription")
    recorder = SmtpRecorder()
    smtp = Controller(recorder, hostname="127.0.0.1", port=free_port())
    smtp.start()
    settings = load_settings(write_config(folder / "gazette.toml", database_url=f"sqlite:///{folder / 'g.db'}",
                                          mail_url=f"smtp://127.0.0.1:{smtp.port}", extra=CATEGORIES), {})
    clock = Clock(NOW)
    services = service.Services(settings, clock=clock)
    services.prepare_database(migrate=True)
    with ServerThread(service.create_app(services)) as server:
        yield server, recorder, services, clock
    services.close()
    smtp.stop()


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        yield browser
        browser.close()


def local(url: str, server: ServerThread) -> str:
    """Links in mails and pages point at the configured site; the test server is on another port."""
    return url.replace("https://news.example.com", server.url)


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("width", [375, 1280])
def test_subscription_flow_in_the_browser(site, browser, lang: str, width: int) -> None:  # type: ignore[no-untyped-def]
    server, recorder, services, _ = site
    words = WORDS[lang]
    address = f"reader-{lang}-{width}@example.com"
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="ko-KR" if lang == "ko" else "en-US")
    page = context.new_page()

    def shot(step: str) -> None:
        assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{step} overflows sideways"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"subscription-{step}-{lang}-{width}.png"), full_page=True)

    page.goto(f"{server.url}/subscribe" + ("?lang=en" if lang == "en" else ""))
    assert page.locator("html").get_attribute("lang") == lang
    page.fill("input[name=email]", address)
    page.fill("input[name=name]", "김독자" if lang == "ko" else "Reader")
    page.uncheck("input[value=politics]")
    page.uncheck("input[value=society]")
    page.check("input[name=frequency][value=daily]")
    shot("1-form")
    page.click("form#subscribe button[type=submit]")
    page.wait_for_load_state()
    assert words["check"] in page.inner_text("h1")
    shot("2-check-inbox")
    assert services.subscribers.find(address).status == "pending"  # nothing active before the click in the mail

    [mail] = recorder.to(address)
    message = email.message_from_bytes(mail, policy=policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    confirm_url = re.search(r"https://news\.example\.com/confirm/\S+", text)[0]  # type: ignore[index]
    page.goto(local(confirm_url, server))  # a page with one button: opening the link confirms nothing
    assert words["confirm"] in page.inner_text("h1")
    assert services.subscribers.find(address).status == "pending"
    shot("3-confirm")
    page.click("form#confirm button[type=submit]")
    page.wait_for_load_state()
    assert words["confirmed"] in page.inner_text("h1")
    assert page.locator("#chosen li").all_inner_texts() == ["경제", "문화"]
    shot("3-confirmed")

    page.goto(local(page.get_attribute("#preferences", "href"), server))  # type: ignore[arg-type]
    page.check("input[value=politics]")
    page.uncheck("input[value=culture]")
    page.check("input[name=frequency][value=weekly]")
    page.select_option("select[name=timezone]", "Europe/London")
    page.click("form#preferences button[type=submit]")
    page.wait_for_load_state()
    assert words["saved"] in page.inner_text("#saved")
    shot("4-preferences")
    stored = services.subscribers.find(address)
    assert (stored.categories, stored.frequency, stored.timezone) == (("politics", "economy"), "weekly", "Europe/London")

    unsubscribe_url = local(page.get_attribute("#unsubscribe", "href"), server)  # type: ignore[arg-type]
    page.goto(unsubscribe_url)
    assert words["question"] in page.inner_text("#message")
    shot("5-unsubscribe")
    # The mail client's one-click POST (RFC 8058): no cookie, no form token, no further step.
    answer = httpx.post(unsubscribe_url, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert answer.status_code == 200
    assert services.subscribers.find(address).status == "unsubscribed"
    page.goto(unsubscribe_url)
    assert words["done"] in page.inner_text("h1")
    shot("6-unsubscribed")
    page.click("form#resubscribe button[type=submit]")
    page.wait_for_load_state()
    assert words["again"] in page.inner_text("h1")
    shot("7-resubscribed")
    assert services.subscribers.find(address).status == "confirmed"
    context.close()


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("width", [375, 1280])
def test_expired_link_page(site, browser, lang: str, width: int) -> None:  # type: ignore[no-untyped-def]
    server, _, services, clock = site
    token = services.tokens.make("confirm", {"s": 1, "e": "x@example.com", "c": [], "f": "daily"})
    clock.now = NOW + timedelta(days=3)
    try:
        page = browser.new_page(viewport={"width": width, "height": 700})
        response = page.goto(f"{server.url}/confirm/{token}?lang={lang}")
        assert response is not None and response.status == 410
        assert WORDS[lang]["expired"] in page.inner_text("h1")
        page.click("text=" + ("새 링크 받기" if lang == "ko" else "Get a new link"))
        assert page.locator("form#link").count() == 1
        page.goto(f"{server.url}/confirm/{token}?lang={lang}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(SCREENSHOTS / f"subscription-8-expired-{lang}-{width}.png"), full_page=True)
        page.close()
    finally:
        clock.now = NOW
