"""The console's breaking-news page in-process: an editor composes, previews, confirms and sends an alert to the
SMTP server on loopback and reads its report; a viewer reads and changes nothing; every send is in the audit log."""

from __future__ import annotations

import re

from newsletter.alerts import AlertDraft
from tests.conftest import NOW, wait_until
from tests.console.conftest import Console


def readers(console: Console) -> None:
    for address, categories in (("p@example.com", ["politics"]), ("e@example.com", ["economy"]),
                                ("all@example.com", ["politics", "economy"])):
        console.services.subscribers.add(address, categories=categories, editions=["alerts"], now=NOW,
                                         confirmed=True, method="admin", consent_text="given elsewhere")
    console.services.subscribers.add("digest@example.com", categories=["politics"], editions=["daily"], now=NOW,
                                     confirmed=True, method="admin", consent_text="given elsewhere")


def test_an_editor_previews_confirms_sends_and_reads_the_report(console: Console) -> None:
    readers(console)
    editor = console.login("editor")
    page = editor.client.get("/admin/alerts")
    assert page.status_code == 200 and "새 속보" in page.text and "기사 3" in page.text  # the newest stories offered
    found = editor.client.get("/admin/alerts?q=기사 2").text
    assert "기사 2" in found and "기사 3" not in found
    draft = {"article_id": "", "subject": "국회 <b>예산안</b> 통과", "text": "본회의 가결", "categories": ["politics"]}
    preview = editor.post("/admin/alerts/preview", draft)
    assert preview.status_code == 200
    assert 'sandbox=""' in preview.text and "&lt;b&gt;예산안" in preview.text and "<b>예산안" not in preview.text
    assert re.search(r'id="recipients">2<', preview.text)  # p@ and all@: alert readers of politics
    assert console.smtp.messages == []  # a preview sends nothing

    unconfirmed = editor.post("/admin/alerts/send", draft)  # the box not ticked: nothing goes
    assert unconfirmed.status_code == 422 and "확인란" in unconfirmed.text
    assert console.services.alerts.store.count() == 0

    sent = editor.post("/admin/alerts/send", {**draft, "confirm": "1"})
    assert sent.status_code == 303 and sent.headers["location"].startswith("/admin/alerts/")
    report_path = sent.headers["location"].split("?")[0]
    report = wait_until(lambda: (r := editor.client.get(report_path)).status_code == 200 and "완료" in r.text and r)
    assert re.search(r'id="count-sent">2<', report.text) and "editor@news.example.com" in report.text
    assert sorted(r for _, rcpts, _ in console.smtp.messages for r in rcpts) == ["all@example.com", "p@example.com"]
    [entry] = [e for e in console.services.audit.entries() if e.action == "alert.send"]
    assert entry.actor == "editor@news.example.com" and entry.after["subject"] == "국회 <b>예산안</b> 통과"
    listed = editor.client.get("/admin/alerts").text
    assert f'href="{report_path}"' in listed and "국회 &lt;b&gt;예산안&lt;/b&gt; 통과" in listed


def test_an_article_alert_and_a_refused_draft(console: Console) -> None:
    readers(console)
    editor = console.login("editor")
    [article] = [a for a in console.services.store.articles(limit=10) if a.title == "기사 1"]
    preview = editor.post("/admin/alerts/preview", {"article_id": article.id, "subject": "", "text": ""})
    assert preview.status_code == 200 and "[속보] 기사 1" in preview.text and "요약 1" in preview.text
    back = editor.post("/admin/alerts/edit", {"article_id": article.id, "subject": "", "text": "", "ads": "1"})
    assert back.status_code == 200 and f'value="{article.id}" checked' in back.text
    refused = editor.post("/admin/alerts/preview", {"subject": "", "text": "본문만"})
    assert refused.status_code == 422 and 'role="alert"' in refused.text


def test_a_viewer_reads_alerts_but_cannot_send_one(console: Console) -> None:
    readers(console)
    alert = console.services.alerts.create(AlertDraft(subject="이미 보낸 속보", text="본문"),
                                           created_by="editor@news.example.com")
    console.services.alerts.send(alert.id)
    viewer = console.login("viewer")
    page = viewer.client.get("/admin/alerts")
    assert page.status_code == 200 and "이미 보낸 속보" in page.text and "새 속보" not in page.text
    assert viewer.client.get(f"/admin/alerts/{alert.id}").status_code == 200
    assert viewer.client.get("/admin/alerts/9999").status_code == 404
    before = len(console.smtp.messages)
    for path in ("/admin/alerts/preview", "/admin/alerts/send", "/admin/alerts/edit"):
        assert viewer.post(path, {"subject": "x", "text": "y", "confirm": "1"}).status_code == 403
    assert len(console.smtp.messages) == before and console.services.alerts.store.count() == 1
    editor = console.login("editor")  # an editor's form without its session's token changes nothing either
    assert editor.client.post("/admin/alerts/send", data={"subject": "x", "text": "y", "confirm": "1"}).status_code == 403
    assert console.services.alerts.store.count() == 1
