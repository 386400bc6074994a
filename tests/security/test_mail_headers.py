"""Class 3: no user or upstream string can add a header or a line to mail we send.

A subscriber's name `=?utf-8?q?x=0D=0AContent-Type:…?=` was decoded by Python's header folder while it wrote `To:`,
so the name wrote headers and an HTML body into a confirmation mail we sent and would sign. The same happened to the
share mail's Subject through a sender name or an upstream title. Every trick below goes into every header we fill
(To's display name, Subject, From, Reply-To, List-Id), through the pure composers and through the real pages with
a real SMTP server; each message must keep exactly its own headers, one recipient and two parts, and show the
characters given (less line breaks and controls) where the trick went.
"""

from __future__ import annotations

import base64
import email
import re
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter.settings import load_settings
from tests.conftest import NOW, write_config
from tests.security.conftest import Gazette, stored_article

TRICKS = {
    "crlf": "김독자\r\nBcc: victim@example.com",
    "lf": "kim\nBcc: victim@example.com",
    "cr": "kim\rBcc: victim@example.com",
    "nel": "kim\x85Bcc: victim@example.com",
    "u2028": "kim\u2028Bcc: victim@example.com",
    "u2029": "kim\u2029Bcc: victim@example.com",
    "q-encoded-word": "=?utf-8?q?x=0D=0AContent-Type:text/html=0D=0A=0D=0A<h1>phish</h1>?=",
    "b-encoded-word": "=?utf-8?b?" + base64.b64encode(b"x\r\nBcc: victim@example.com").decode() + "?=",
    "encoded-word-in-korean": "김 =?UTF-8?B?" + base64.b64encode("\r\nBcc: v@example.com".encode()).decode() + "?= 님",
    "overlong-korean": "가나다" * 1000,
    "overlong-ascii": "x" * 3000,
    "emoji-and-korean": "김독자 🎉 뉴스",
    "nul-and-controls": "a\x00b\x1bc\x7fd",
    "address-lookalike": '"a" <evil@example.com>, b@example.com',
    "tab-and-spaces": "a\t\t b   c",
    "bidi-override": "\u202eevil\u202c name",
}
NAMED = ("crlf", "q-encoded-word", "b-encoded-word", "nel", "address-lookalike", "overlong-korean")


def visible(text: str, limit: int) -> str:
    """What a header may show of `text`: one line, no controls, spaces collapsed, at most `limit` characters."""
    from newsletter.headers import header_text

    return header_text(text, limit)


def decoded(raw: bytes, header: str, part: str = "text") -> str:
    """The header's text (or, for `part="name"`, its display name) as RFC 2047 §6.2 reads it: whitespace between
    adjacent encoded words is ignored. (Python's address parser keeps it, which real clients do not.)"""
    head = raw.partition(b"\r\n\r\n")[0].decode("utf-8")
    value = re.search(rf"(?im)^{header}: ([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head)[1]  # type: ignore[index]
    value = value.replace("\r\n", "")
    if part == "name":
        value = value.rsplit(" <", 1)[0] if value.endswith(">") else ""
        if value.startswith('"') and value.endswith('"'):
            return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return str(make_header(decode_header(value)))


def check_message(raw: bytes, *, headers: set[str], recipient: str) -> EmailMessage:
    """The message has exactly `headers`, lines ended by CRLF and at most 998 bytes long, one recipient, two parts."""
    head, _, _ = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert all(b"\r" not in line and b"\n" not in line for line in lines), "a bare CR or LF in the head"
    assert all(len(line) <= 998 for line in lines), "a header line over 998 bytes"
    names = {line.split(b":", 1)[0].decode().lower() for line in lines if line[:1] not in (b" ", b"\t")}
    assert names == headers, f"headers changed: {names ^ headers}"
    message = email.message_from_bytes(raw, policy=policy.default)
    assert [a.addr_spec for a in message["To"].addresses] == [recipient]
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert not message.defects and all(not message[h].defects for h in message.keys())
    return message  # type: ignore[return-value]


DIGEST_HEADERS = {"from", "reply-to", "subject", "list-id", "list-unsubscribe-post", "mime-version", "content-type",
                  "to", "date", "message-id", "list-unsubscribe"}
NOTICE_HEADERS = {"from", "reply-to", "subject", "list-id", "mime-version", "content-type", "to", "date",
                  "message-id"}


def settings_with(tmp_path: Path, trick: str):  # type: ignore[no-untyped-def]
    """A configuration whose site name, From name and Reply-To name are the trick (an operator's typo, a paste)."""
    from newsletter.headers import header_text

    name = header_text(trick, 60)
    toml = name.replace("\\", "\\\\").replace('"', '\\"')  # a TOML string...
    mailbox = '\\"' + name.replace("\\", "\\\\\\\\").replace('"', '\\\\\\"') + '\\"'  # ...of a quoted mail phrase
    config = write_config(tmp_path / "gazette.toml", database_url=f"sqlite:///{tmp_path / 'g.db'}", extra="")
    text = config.read_text().replace('[site]\nname = "한빛일보"\n', f'[site]\nname = "{toml}"\n')
    text = text.replace('from = "한빛일보 <news@example.com>"',
                        f'from = "{mailbox} <news@example.com>"\nreply_to = "{mailbox} <desk@example.com>"')
    config.write_text(text)
    return load_settings(config, {})


@pytest.mark.parametrize("trick", list(TRICKS), ids=list(TRICKS))
def test_every_trick_in_every_header_of_a_digest(tmp_path: Path, trick: str) -> None:
    from newsletter.compose import Recipient, RenderedMail, make_template, personalise

    value = TRICKS[trick]
    settings = settings_with(tmp_path, value)
    template = make_template(settings, RenderedMail(subject=value, html="<p>본문</p>", text="본문"), list_id="daily")
    raw = personalise(template, Recipient(email="kim@example.com", name=value, message_id="<d1-1-0@example.com>",
                                          unsubscribe_url="https://news.example.com/unsubscribe/t",
                                          preferences_url="https://news.example.com/preferences/t",
                                          web_copy_url="https://news.example.com/archive/1/t"),
                      now=NOW, unsubscribe_address="unsubscribe@example.com")
    check_message(raw, headers=DIGEST_HEADERS, recipient="kim@example.com")
    assert decoded(raw, "Subject") == visible(value, 998)
    assert decoded(raw, "To", "name") == visible(value, 100)
    assert decoded(raw, "From", "name") == visible(value, 60)
    assert decoded(raw, "List-Id", "name") == visible(value, 60)


@pytest.mark.parametrize("trick", list(TRICKS), ids=list(TRICKS))
def test_every_trick_in_every_header_of_a_one_off_mail(tmp_path: Path, trick: str) -> None:
    from newsletter.compose import RenderedMail, build_message

    value = TRICKS[trick]
    raw = build_message(settings_with(tmp_path, value), RenderedMail(subject=value, html="<p>x</p>", text="x"),
                        to="kim@example.com", to_name=value, now=NOW, list_id="notices",
                        message_id="<n1-1-0@example.com>")
    message = check_message(raw, headers=NOTICE_HEADERS, recipient="kim@example.com")
    assert decoded(raw, "Subject") == visible(value, 998)
    assert decoded(raw, "To", "name") == visible(value, 100)
    assert decoded(raw, "Reply-To", "name") == visible(value, 60)
    assert message["Reply-To"].addresses[0].addr_spec == "desk@example.com"


@pytest.mark.parametrize("trick", NAMED)
def test_a_subscribers_name_cannot_write_the_confirmation_mail(gazette: Gazette, trick: str) -> None:
    fields = gazette.form("/subscribe")
    answer = gazette.client.post("/subscribe", data={**fields, "email": "reader@example.com", "name": TRICKS[trick],
                                                     "categories": ["politics"]})
    assert answer.status_code == 200, answer.text
    [(_, rcpts, raw)] = gazette.smtp.messages
    assert rcpts == ["reader@example.com"]
    message = check_message(raw, headers=NOTICE_HEADERS - {"reply-to"}, recipient="reader@example.com")
    assert "victim" not in str(message["To"]).split("<")[-1] and "phish" not in message.get_body(("html",)).get_content()


@pytest.mark.parametrize("trick", NAMED)
def test_a_sender_name_or_an_upstream_title_cannot_write_the_share_mail(gazette: Gazette, trick: str) -> None:
    value = TRICKS[trick]
    gazette.services.store.upsert_articles([stored_article(9, title=value, identity="url:x9", id="art000000009",
                                                           url="https://news.example.com/9")],
                                           source_id=None, now=NOW)
    answer = gazette.client.post("/articles/art000000009/share", headers={"Accept": "application/json"},
                                 data={"sender_name": value.replace("@example.com", "")[:30],  # no link: refused
                                       "recipient": "friend@example.com", "note": "읽어 봐"})
    assert answer.status_code == 200, answer.text
    [(_, rcpts, raw)] = gazette.smtp.messages
    assert rcpts == ["friend@example.com"]
    message = check_message(raw, headers=NOTICE_HEADERS - {"reply-to"}, recipient="friend@example.com")
    assert "\n" not in str(message["Subject"]) and "Bcc" not in message.keys()


def test_an_address_that_could_break_a_header_is_refused() -> None:
    from newsletter.headers import HeaderError, address_header

    for address in ("a@example.com\r\nBcc: v@example.com", "a@example.com>, <v@example.com", "a b@example.com",
                    "a@example.com\u2028"):
        with pytest.raises(HeaderError):
            address_header("x", address)
