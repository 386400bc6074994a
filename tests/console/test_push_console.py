"""The console's alert pages with [push]: an editor sends an alert from the form, it reaches a browser (through the
loopback push service that verifies and decrypts it) and a mail reader once each, and the report counts the pushes
beside the mail; the alert page says how many browsers are subscribed."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW, Clock, SmtpRecorder, wait_until
from tests.console.conftest import console_over
from tests.push_service import LoopbackPushService
from tests.test_web_push import SUBJECT, push_config


def test_an_alert_sent_from_the_console_reaches_a_browser_and_a_reader_once_and_is_reported(  # type: ignore[no-untyped-def]
        tmp_path: Path, smtp_server: tuple[SmtpRecorder, str], clock: Clock, migrated_sqlite: Path) -> None:
    smtp, smtp_url = smtp_server
    section, public = push_config(tmp_path, admin=False)
    with LoopbackPushService(public, SUBJECT) as push_service, \
            console_over(tmp_path, smtp, clock, migrated_sqlite, mail_url=smtp_url, extra=section) as console:
        services = console.services
        services.subscribers.add("p@example.com", categories=["politics"], editions=["alerts"], now=NOW,
                                 confirmed=True, method="admin", consent_text="given elsewhere")
        browser = push_service.browser("phone")
        answer = console.base.post("/push/subscriptions", json={"subscription": browser.subscription(),
                                                                "categories": ["politics"]},
                                   headers={"Origin": "https://news.example.com"})
        assert answer.status_code == 201, answer.text
        editor = console.login("editor")
        page = editor.client.get("/admin/alerts").text
        assert 'id="push-subscribers">웹 푸시 구독 브라우저: 1곳<' in page
        draft = {"article_id": "", "subject": "국회 예산안 통과", "text": "본회의 가결", "categories": ["politics"]}
        sent = editor.post("/admin/alerts/send", {**draft, "confirm": "1"})
        assert sent.status_code == 303
        report_url = sent.headers["location"]
        wait_until(lambda: push_service.messages("phone") and smtp.to("p@example.com"))
        wait_until(lambda: "보냄 1 · 삭제(만료) 0 · 실패 0" in editor.client.get(report_url).text)
        [message] = push_service.messages("phone")
        assert message["title"] == "[속보] 국회 예산안 통과" and push_service.refusals == []
        assert len(smtp.to("p@example.com")) == 1
