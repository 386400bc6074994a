"""The breaking-news page in Chromium: an editor picks a story, chooses a section, previews the alert (the HTML in a
sandboxed iframe, the text part), confirms and sends it to an SMTP server on loopback (aiosmtpd), and reads its
report; in Korean and English, at 375 and 1280 px, each page checked with axe-core. Screenshots:
docs/screenshots/console-alerts-{375,1280}.png (the form and the past alerts), console-alerts-preview-*.png,
console-alerts-report-*.png."""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path
from typing import Any, Iterator

import pytest

from newsletter.settings import load_settings
from tests.conftest import NOW, Clock, ServerThread, SmtpRecorder, free_port, wait_until, write_config
from tests.console.browser import WIDTHS, ConsoleBrowser, check_page, needs_browser
from tests.console.conftest import ACCOUNTS, PASSWORD, cheap_accounts
from tests.security.conftest import EXTRA, stored_article

pytestmark = needs_browser

WORDS = {
    "ko": {"new": "새 속보", "preview": "미리 보기", "title": "속보 미리 보기", "send": "지금 보내기",
           "confirm": "지금 2명에게 보낸다는 것을 확인합니다.", "report": "속보 결과", "done": "완료",
           "section": "정치"},
    "en": {"new": "New alert", "preview": "Preview", "title": "Alert preview", "send": "Send now",
           "confirm": "I confirm: send it now to 2 readers.", "report": "Alert report", "done": "Done",
           "section": "정치"},
}


@pytest.fixture(scope="module")
def alerts_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, SmtpRecorder, Any]]:
    """The app on loopback, its mail going to aiosmtpd, with stories, alert readers and one account per role."""
    import service
    from aiosmtpd.controller import Controller

    folder = tmp_path_factory.mktemp("alerts")
    recorder = SmtpRecorder()
    smtp = Controller(recorder, hostname="127.0.0.1", port=free_port())
    smtp.start()
    settings = load_settings(write_config(folder / "gazette.toml", database_url=f"sqlite:///{folder / 'g.db'}",
                                          mail_url=f"smtp://127.0.0.1:{smtp.port}", extra=EXTRA), {})
    services = service.Components(settings, clock=Clock(NOW))
    services.accounts = cheap_accounts(services)
    services.prepare_database(migrate=True)
    services.store.upsert_articles([stored_article(n, title=title) for n, title in (
        (1, "국회, 내년 예산안 본회의 통과"), (2, "한국은행 기준금리 동결"), (3, "서울 첫눈"))], source_id=None, now=NOW)
    for address, categories, editions in (("p@example.com", ["politics"], ["alerts"]),
                                          ("all@example.com", ["politics", "economy"], ["daily", "alerts"]),
                                          ("e@example.com", ["economy"], ["alerts"]),
                                          ("digest@example.com", ["politics"], ["daily"])):
        services.subscribers.add(address, categories=categories, editions=editions, now=NOW, confirmed=True,
                                 method="admin", consent_text="given elsewhere")
    for role, address in ACCOUNTS.items():
        services.accounts.add(address, role, PASSWORD)
    with ServerThread(service.create_app(services)) as server:
        yield server, recorder, services
    services.close()
    smtp.stop()


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("width", WIDTHS)
def test_an_editor_sends_a_breaking_alert_and_reads_its_report(alerts_site: Any, chromium: Any, width: int,
                                                               lang: str) -> None:
    server, recorder, services = alerts_site
    w = WORDS[lang]
    shots = lang == "ko"  # one set of screenshots, in the first language
    page = ConsoleBrowser(chromium, server.url, ACCOUNTS, PASSWORD, {}).page("editor", width=width, lang=lang)
    page.goto(f"{server.url}/admin/alerts")
    assert page.get_by_role("heading", name=w["new"]).is_visible()
    check_page(page, "alerts" if shots else None)

    page.get_by_label("국회, 내년 예산안 본회의 통과").check()
    page.get_by_label(w["section"], exact=True).check()
    page.get_by_role("button", name=w["preview"], exact=True).click()
    assert page.get_by_role("heading", name=w["title"]).is_visible()
    frame = page.locator("iframe.preview")
    assert frame.get_attribute("sandbox") == ""
    assert page.frame_locator("iframe.preview").get_by_text("국회, 내년 예산안 본회의 통과").first.is_visible()
    assert "요약 1" in page.locator("pre.text").inner_text()
    check_page(page, "alerts-preview" if shots else None)
    before = len(recorder.messages)

    page.get_by_label(w["confirm"]).check()
    page.get_by_role("button", name=w["send"]).click()
    page.wait_for_url(re.compile(r".*/admin/alerts/\d+.*"))
    assert page.get_by_role("heading", name=re.compile(w["report"])).is_visible()

    def done() -> bool:
        page.reload()
        return page.locator("#status").inner_text().strip() == w["done"]

    wait_until(done, 30, interval=0.3, message="the alert did not finish")
    assert page.locator("#count-sent").inner_text() == "2" and page.locator("#count-failed").inner_text() == "0"
    check_page(page, "alerts-report" if shots else None)

    mails = recorder.messages[before:]
    assert sorted(r for _, rcpts, _ in mails for r in rcpts) == ["all@example.com", "p@example.com"]
    message = email.message_from_bytes(mails[0][2], policy=policy.default)
    assert str(message["Subject"]) == "[속보] 국회, 내년 예산안 본회의 통과"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    page.goto(f"{server.url}/admin/alerts")  # listed with the others, its counts in the row
    assert page.get_by_role("link", name="국회, 내년 예산안 본회의 통과").count() >= 1
    page.context.close()


def test_screenshots_exist() -> None:
    """The screenshots the docs show are committed (the test above writes them)."""
    for width in WIDTHS:
        assert (Path(__file__).resolve().parents[2] / "docs" / "screenshots" / f"console-alerts-{width}.png").exists()
