"""The reader's whole subscription path in Chromium, in Korean and in English, at phone and desktop widths.

subscribe (a custom `evening` edition, the required consent and the optional advertising one) -> the confirmation
mail, read from a real SMTP server -> its link and button -> the welcome mail -> the evening edition, sent by the
scheduler's tick at 18:00 on the reader's clock -> preferences (another zone, advertising withdrawn, and the notice
of that result) -> one-click unsubscribe by POST as a mail client sends it (no cookie) -> the page offers
resubscribe -> resubscribe.
Every page is saved to docs/screenshots/subscription-<step>-<lang>-<width>.png.
"""

from __future__ import annotations

import email
import itertools
import re
from dataclasses import replace
from datetime import timedelta
from email import policy

import httpx
import pytest

from newsletter.settings import load_settings
from newsletter.timing import TICK
from tests.conftest import NOW, ServerThread, write_config
from tests.console.browser import (
    SCREENSHOTS,
    launched_chromium,
    needs_browser,
)
from tests.test_store import make_article

pytestmark = needs_browser

CATEGORIES = """
[[categories]]
slug = "society"
name = "사회"

[[categories]]
slug = "culture"
name = "문화"

[digests.daily]
schedule = "0 7 * * *"

[digests.evening]
schedule = "0 18 * * *"
window = "12h"
label = { ko = "저녁 브리핑", en = "Evening briefing" }
description = { ko = "하루를 마무리하는 저녁 6시 뉴스", en = "The day's news at 6 p.m." }

[digests.offers]
schedule = "0 12 * * *"
ad = true
label = { ko = "제휴 소식", en = "Partner offers" }
"""

DAYS = itertools.count()


def _text(raw: bytes) -> str:
    return email.message_from_bytes(raw, policy=policy.default).get_body(("plain",)).get_content()  # type: ignore[union-attr]


def _subject(raw: bytes) -> str:
    return str(email.message_from_bytes(raw, policy=policy.default)["Subject"])


WORDS = {
    "ko": {"welcome": "구독해 주셔서 고맙습니다", "evening": "저녁 브리핑", "ads_withdrawn": "광고성 정보 수신 거부 처리 결과","check": "메일함을 확인해 주세요", "confirm": "구독 확인", "confirmed": "구독이 시작되었습니다", "saved": "저장했습니다",
           "question": "더는 뉴스레터를 받지 않으시겠습니까", "done": "수신을 거부했습니다", "again": "다시 구독을 시작했습니다",
           "expired": "유효 기간이 지났습니다", "economy": "경제", "culture": "문화"},
    "en": {"welcome": "Thank you for subscribing", "evening": "Evening briefing", "ads_withdrawn": "Advertising stopped", "check": "Check your inbox", "confirm": "Confirm your subscription", "confirmed": "You're subscribed", "saved": "Saved", "question": "Stop sending",
           "done": "You're unsubscribed", "again": "You're subscribed again", "expired": "This link has expired",
           "economy": "경제", "culture": "문화"},
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from aiosmtpd.controller import Controller

    import service
    from tests.conftest import Clock, SmtpRecorder, free_port

    folder = tmp_path_factory.mktemp("subscription")
    recorder = SmtpRecorder()
    smtp = Controller(recorder, hostname="127.0.0.1", port=free_port())
    smtp.start()
    settings = load_settings(write_config(folder / "gazette.toml", database_url=f"sqlite:///{folder / 'g.db'}",
                                          mail_url=f"smtp://127.0.0.1:{smtp.port}", extra=CATEGORIES), {})
    settings = replace(settings, site=replace(settings.site, privacy_url="https://news.example.com/privacy"),
                       mail=replace(settings.mail, welcome=True))
    clock = Clock(NOW)
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    services.store.upsert_articles([make_article(n, category="economy", published_at=NOW + timedelta(hours=n))
                                    for n in range(1, 24 * 5, 2)], source_id=None, now=NOW)
    with ServerThread(service.create_app(services)) as server:
        yield server, recorder, services, clock
    services.close()
    smtp.stop()


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    with launched_chromium() as browser:
        yield browser


def local(url: str, server: ServerThread) -> str:
    """Links in mails and pages point at the configured site; the test server is on another port."""
    return url.replace("https://news.example.com", server.url)


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("width", [375, 1280])
def test_subscription_flow_in_the_browser(site, browser, lang: str, width: int) -> None:  # type: ignore[no-untyped-def]
    server, recorder, services, clock = site
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
    page.uncheck("input[name=editions][value=daily]")
    page.check("input[name=editions][value=evening]")
    assert words["evening"] in page.inner_text("#editions")
    assert page.get_attribute("#privacy-policy", "href") == "https://news.example.com/privacy"
    page.check("input[name=privacy]")  # required: 개인정보 수집·이용 동의
    page.check("input[name=ads]")  # optional: 광고성 정보 수신 동의
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
    assert words["evening"] in page.inner_text("#chosen-editions")
    shot("3-confirmed")
    subscriber = services.subscribers.find(address)
    assert subscriber.editions == ("evening",) and subscriber.ad_consent_at is not None
    [welcome] = [m for m in recorder.to(address) if words["welcome"] in _subject(m)]
    assert words["evening"] in _text(welcome)  # the welcome names the editions and the result of the consent

    evening = NOW.replace(hour=9) + timedelta(days=next(DAYS))  # 18:00 in Seoul; a day of its own for each run
    for tick in (evening - TICK, evening, evening + TICK):  # the scheduler's ticks around it
        clock.now = tick
        services.audience_jobs.send_due(tick)
    clock.now = NOW
    digests = [m for m in recorder.to(address) if b"List-Unsubscribe-Post" in m and b" <evening.example.com>" in m]
    assert len(digests) == 1 and "/archive/" in _text(digests[0])

    page.goto(local(page.get_attribute("#preferences", "href"), server))  # type: ignore[arg-type]
    page.check("input[value=politics]")
    page.uncheck("input[value=culture]")
    page.check("input[name=editions][value=daily]")
    page.fill("input[name=timezone]", "Asia/Kolkata")  # any IANA zone, not only those suggested
    page.uncheck("input[name=ads]")
    page.click("form#preferences button[type=submit]")
    page.wait_for_load_state()
    assert words["saved"] in page.inner_text("#saved")
    shot("4-preferences")
    stored = services.subscribers.find(address)
    assert (stored.categories, stored.editions, stored.timezone) == (("politics", "economy"), ("daily", "evening"),
                                                                    "Asia/Kolkata")
    assert stored.ad_consent_at is None
    withdrawn = [m for m in recorder.to(address) if words["ads_withdrawn"] in _subject(m)]
    assert len(withdrawn) == 1  # 정보통신망법 §50⑦: the result of the withdrawal, told

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
    token = services.tokens.make("confirm", {"p": "nobody", "c": [], "d": ["daily"]})
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
