"""Breaking-news alerts: an editor's subject, text and link reach every reader's inbox, so none of them may write a
header, break out of the HTML, or smuggle a script or a javascript: link into the mail; and the API is the admin's."""

from __future__ import annotations

import email
from email import policy

import pytest

from tests.conftest import NOW, wait_until
from tests.security.conftest import ADMIN, Gazette

INJECTED_SUBJECTS = {
    "crlf": "속보\r\nBcc: evil@example.net",
    "lf": "속보\nBcc: evil@example.net",
    "nel": "속보\x85Bcc: evil@example.net",
    "line separator": "속보\u2028Bcc: evil@example.net",
    "encoded word": "=?utf-8?q?x=0D=0ABcc:_evil@example.net?=",
    "bidi override": "속보 \u202egnp.exe",
}


def reader(gazette: Gazette, address: str = "reader@example.com") -> None:
    gazette.services.subscribers.add(address, categories=["politics"], editions=["alerts"], now=NOW, confirmed=True,
                                     method="admin", consent_text="given elsewhere")


def sent_alert(gazette: Gazette, body: dict[str, object]) -> email.message.EmailMessage:
    answer = gazette.client.post("/api/alerts", headers=ADMIN, json=body)
    assert answer.status_code == 202, answer.text
    [raw] = wait_until(lambda: gazette.smtp.to("reader@example.com"))
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


@pytest.mark.parametrize("subject", INJECTED_SUBJECTS.values(), ids=INJECTED_SUBJECTS.keys())
def test_the_subject_cannot_write_a_header(gazette: Gazette, subject: str) -> None:
    reader(gazette)
    mail = sent_alert(gazette, {"subject": subject, "text": "본문\r\nBcc: evil@example.net"})
    assert "Bcc" not in mail and mail.get_all("Subject") is not None and len(mail.get_all("Subject")) == 1
    assert [r for _, rcpts, _ in gazette.smtp.messages for r in rcpts] == ["reader@example.com"]
    shown = str(mail["Subject"])
    assert shown.startswith("[속보] ") and "\n" not in shown and "\r" not in shown and "\u202e" not in shown
    head = gazette.smtp.messages[0][2].split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc" not in head and b"evil@example.net" not in head.replace(b"=", b"")  # not even encoded inline


def test_the_text_and_subject_are_escaped_in_the_html(gazette: Gazette) -> None:
    reader(gazette)
    mail = sent_alert(gazette, {"subject": "<script>alert(1)</script>", "text": '<img src=x onerror="alert(1)">\n\n'
                                                                               "</p></td><a href='javascript:x'>"})
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img src=x" not in html and "&lt;img" in html
    assert "<a href='javascript" not in html and 'href="javascript' not in html and "&lt;a href=" in html
    assert "&lt;/p&gt;&lt;/td&gt;" in html  # the text closes no element of ours
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "<script>alert(1)</script>" in text  # the text part shows the words as written


@pytest.mark.parametrize("link", ["javascript:alert(1)", "data:text/html,<script>", "https://x.example/\"><script>",
                                  "https://x.example/a b", "https://x.example/\r\nBcc: y", "//x.example/", "ftp://x/"])
def test_a_link_that_is_not_a_plain_http_address_is_refused(gazette: Gazette, link: str) -> None:
    reader(gazette)
    for path in ("/api/alerts/preview", "/api/alerts"):
        answer = gazette.client.post(path, headers=ADMIN, json={"subject": "속보", "text": "본문", "link": link})
        assert answer.status_code == 422, answer.text
    assert gazette.smtp.messages == [] and gazette.client.get("/api/alerts", headers=ADMIN).json()["total"] == 0


def test_the_preview_is_escaped_too(gazette: Gazette) -> None:
    preview = gazette.client.post("/api/alerts/preview", headers=ADMIN, json={
        "subject": "<b onmouseover=x>", "text": "<iframe src=//evil>", "to": "someone@example.com"}).json()
    assert "<b onmouseover" not in preview["html"] and "<iframe" not in preview["html"]
    assert "&lt;iframe" in preview["html"]


@pytest.mark.parametrize(("method", "path"), [("POST", "/api/alerts"), ("POST", "/api/alerts/preview"),
                                              ("GET", "/api/alerts"), ("GET", "/api/alerts/1")])
def test_alerts_are_the_admins_alone(gazette: Gazette, method: str, path: str) -> None:
    reader(gazette)
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
        answer = gazette.client.request(method, path, headers=headers, json={"subject": "속보", "text": "본문"})
        assert answer.status_code in (401, 403)
    assert gazette.smtp.messages == []
