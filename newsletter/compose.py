"""Composing mail: a Digest -> one `MailTemplate` per segment -> the bytes of each subscriber's message.

A segment (subscribers with the same categories, language, time zone and high-water mark) shares everything but
a few fields: the address, the unsubscribe, preferences and archive links, the Message-ID. So the HTML (with its
CSS inlined by css-inline) and the text part are rendered once per segment with placeholders, and
`personalise` fills them in and writes the MIME bytes directly: building an `EmailMessage` per subscriber costs
about 3 ms, this costs a few tens of microseconds. The text part is rendered from its own template, not derived
from the HTML, so it reads well in a text-only client.

Headers are written here, not by Python's header folder: that one drops the space between two RFC 2047 encoded
words when it folds a long Korean subject, and mangles long List-Unsubscribe values into encoded words.
"""

from __future__ import annotations

import binascii
import re
import html as html_escape
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from typing import Any, Callable
from urllib.parse import quote

import css_inline
from jinja2 import Environment

from feeds.settings import Settings

from .digest import Digest

EDITION_LABELS = {
    "ko": {"daily": "오늘의 뉴스", "weekly": "이번 주 뉴스"},
    "en": {"daily": "Today's news", "weekly": "This week's news"},
}
AD_LABELS = {"ko": "(광고) ", "en": "(Advertisement) "}

# Filled in per subscriber. Plain ASCII words that survive escaping, CSS inlining and URL attributes unchanged.
EMAIL, NAME, UNSUBSCRIBE, PREFERENCES, ARCHIVE = ("GZXEMAILX", "GZXNAMEX", "GZXUNSUBSCRIBEX", "GZXPREFERENCESX",
                                                  "GZXARCHIVEX")

_MARKERS = re.compile(f"({EMAIL}|{NAME}|{UNSUBSCRIBE}|{PREFERENCES}|{ARCHIVE})")
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
MAIL_POLICY = policy.default.clone(max_line_length=998)  # for the one-off mails built as EmailMessage


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class MailTemplate:
    """One segment's mail, rendered once; `personalise` makes each subscriber's bytes from it."""

    subject: str
    html: str
    text: str
    head: bytes  # the headers every copy shares (From, Reply-To, Subject, List-Id, MIME), CRLF-terminated
    boundary: str
    domain: str
    html_body: "Base64Body"
    text_body: "Base64Body"


@dataclass(frozen=True)
class Base64Body:
    """A part's base64, encoded once around the markers, so that each copy encodes only a few hundred bytes.

    Base64 of consecutive chunks is the base64 of the whole when every chunk but the last is a multiple of three
    bytes long, and lines may be shorter than 76 characters (RFC 2045 §6.8). So each static piece is encoded
    ahead for each of the three offsets at which it can start; per copy only the glue (the bytes left over
    from a piece, a reader's value, the first bytes of the next piece) is encoded.
    """

    markers: tuple[str, ...]  # the marker between piece i and piece i+1
    pieces: tuple[bytes, ...]
    encoded: tuple[tuple[tuple[bytes, bytes] | None, ...], ...]  # [piece][offset] -> (base64 lines, raw tail)

    @classmethod
    def of(cls, text: str) -> "Base64Body":
        split = _MARKERS.split(text)
        pieces = tuple(p.encode("utf-8") for p in split[0::2])
        encoded = []
        for piece in pieces:
            variants: list[tuple[bytes, bytes] | None] = []
            for offset in range(3):
                if offset > len(piece):
                    variants.append(None)
                    continue
                end = offset + (len(piece) - offset) // 3 * 3
                variants.append((_base64_lines(piece[offset:end]), piece[end:]))
            encoded.append(tuple(variants))
        return cls(markers=tuple(split[1::2]), pieces=pieces, encoded=tuple(encoded))

    def fill(self, values: dict[str, bytes]) -> bytes:
        out: list[bytes] = []
        carry = b""
        for i, piece in enumerate(self.pieces):
            offset = -len(carry) % 3
            variant = self.encoded[i][offset]
            if variant is None:  # a piece shorter than the glue it would need: it all joins the carry
                carry += piece
            else:
                out.append(_base64_lines(carry + piece[:offset]))
                out.append(variant[0])
                carry = variant[1]
            if i < len(self.markers):
                carry += values[self.markers[i]]
        out.append(_base64_lines(carry))
        return b"".join(out)


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str | None
    message_id: str
    unsubscribe_url: str
    preferences_url: str
    archive_url: str


def edition_label(edition: str, language: str) -> str:
    return EDITION_LABELS.get(language, EDITION_LABELS["en"]).get(edition, edition)


def local_date_text(moment: datetime, language: str) -> str:
    return (f"{moment.year}년 {moment.month}월 {moment.day}일" if language == "ko"
            else moment.strftime("%B %-d, %Y"))


def render_digest(env: Environment, settings: Settings, digest: Digest, *, language: str, zone: Any,
                  link: Callable[[str], str], has_ads: bool = False) -> RenderedMail:
    """The segment's mail with placeholders where each subscriber's own address and links go.

    `link(article_id)` gives the tracked link of an article (a signed /r/ redirect).
    """
    local_end = digest.period_end.astimezone(zone)
    date_text = local_date_text(local_end, language)
    label = edition_label(digest.edition, language)
    subject = (AD_LABELS.get(language, AD_LABELS["en"]) if has_ads else "") + f"[{settings.site.name}] {label} · {date_text}"
    first = [a.title for s in digest.sections for a in s.articles][:3]
    context: dict[str, Any] = {
        "site": settings.site, "mail": settings.mail, "digest": digest, "language": language, "label": label,
        "date_text": date_text, "subject": subject, "tz": zone, "link": link, "preheader": " · ".join(first),
        "email": EMAIL, "unsubscribe_url": UNSUBSCRIBE, "preferences_url": PREFERENCES, "archive_url": ARCHIVE,
        "has_ads": has_ads,
    }
    html = _INLINER.inline(env.get_template("email/digest.html").render(**context))
    text = env.get_template("email/digest.txt").render(**context)
    return RenderedMail(subject=subject, html=html, text=text)


def render_notice(env: Environment, settings: Settings, *, language: str, subject: str, title: str, body: str,
                  button: str, button_url: str, footnote: str = "", why: str = "") -> RenderedMail:
    """A one-action mail (confirm, manage, a shared article): the same words in the HTML and the text part."""
    context: dict[str, Any] = {"site": settings.site, "mail": settings.mail, "language": language, "subject": subject,
                               "title": title, "body": body, "button": button, "button_url": button_url,
                               "footnote": footnote, "why": why}
    return RenderedMail(subject=subject, html=_INLINER.inline(env.get_template("email/notice.html").render(**context)),
                        text=env.get_template("email/notice.txt").render(**context))


def make_template(settings: Settings, mail: RenderedMail, *, list_id: str) -> MailTemplate:
    """The headers and parts that every copy of this segment's mail shares."""
    name, address = parseaddr(settings.mail.from_address)
    domain = address.rpartition("@")[2] or "localhost"
    boundary = "=_gz_" + secrets.token_hex(12)
    lines = [f"From: {_address_header(name, address)}"]
    if settings.mail.reply_to:
        lines.append(f"Reply-To: {settings.mail.reply_to}")
    lines += [
        f"Subject: {_encode_words(mail.subject, 'Subject')}",
        f"List-Id: {_encode_words(settings.site.name, 'List-Id')} <{list_id}.{domain}>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
    ]
    return MailTemplate(subject=mail.subject, html=mail.html, text=mail.text,
                        head=("\r\n".join(lines) + "\r\n").encode("ascii"), boundary=boundary, domain=domain,
                        html_body=Base64Body.of(mail.html), text_body=Base64Body.of(mail.text))


def personalise(template: MailTemplate, recipient: Recipient, *, now: datetime, unsubscribe_address: str) -> bytes:
    """One subscriber's message as wire bytes (CRLF line ends), ready to sign and send."""
    name = " ".join((recipient.name or "").split())  # no line break can reach a header
    fills = {EMAIL: recipient.email, NAME: name, UNSUBSCRIBE: recipient.unsubscribe_url,
             PREFERENCES: recipient.preferences_url, ARCHIVE: recipient.archive_url}
    text_values = {marker: value.encode("utf-8") for marker, value in fills.items()}
    html_values = {marker: html_escape.escape(value).encode("utf-8") for marker, value in fills.items()}
    token = recipient.unsubscribe_url.rsplit("/", 1)[-1]
    mailto = f"mailto:{unsubscribe_address}?subject={quote('unsubscribe ' + token)}"
    head = (template.head
            + f"To: {_address_header(name, recipient.email)}\r\n"
              f"Date: {format_datetime(now.astimezone(timezone.utc), usegmt=True)}\r\n"
              f"Message-ID: {recipient.message_id}\r\n"
              f"List-Unsubscribe: <{recipient.unsubscribe_url}>,\r\n <{mailto}>\r\n".encode("utf-8"))
    b = template.boundary.encode("ascii")
    return b"".join((
        head, b"\r\n",
        b"--", b, b"\r\nContent-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        template.text_body.fill(text_values), b"--", b,
        b"\r\nContent-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        template.html_body.fill(html_values), b"--", b, b"--\r\n"))


def message_id(domain: str, *parts: object) -> str:
    """The same id for the same (edition, subscriber): a resend after a crash is recognisably the same mail."""
    return "<gz." + ".".join(str(p) for p in parts) + f"@{domain}>"


def build_message(settings: Settings, mail: RenderedMail, *, to: str, to_name: str | None, now: datetime,
                  list_id: str) -> EmailMessage:
    """A one-off mail (a confirmation, a shared article) as an EmailMessage."""
    message = EmailMessage(policy=MAIL_POLICY)
    name, address = parseaddr(settings.mail.from_address)
    domain = address.rpartition("@")[2] or "localhost"
    message["From"] = Address(display_name=name, addr_spec=address) if name else address
    if settings.mail.reply_to:
        message["Reply-To"] = settings.mail.reply_to
    message["To"] = Address(display_name=to_name or "", addr_spec=to)
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(now.astimezone(timezone.utc), usegmt=True)
    message["Message-ID"] = make_msgid(domain=domain)
    message["List-Id"] = f"{settings.site.name} <{list_id}.{domain}>"
    message.set_content(mail.text, subtype="plain", charset="utf-8")
    message.add_alternative(mail.html, subtype="html", charset="utf-8")
    return message


def wire_bytes(message: EmailMessage) -> bytes:
    """An EmailMessage as sent over SMTP: CRLF line ends."""
    return message.as_bytes(policy=MAIL_POLICY.clone(linesep="\r\n"))


def _encode_words(text: str, header_name: str) -> str:
    if text.isascii():
        return text
    # Header splits between characters, never at a space, so no space is lost between encoded words.
    return Header(text, "utf-8", header_name=header_name).encode(linesep="\r\n")


def _address_header(name: str, address: str) -> str:
    if not name:
        return address
    return formataddr((name, address), charset="utf-8")


def _base64_lines(raw: bytes) -> bytes:
    """Base64 in lines of at most 76 characters, each ending CRLF; nothing for nothing."""
    return b"".join([binascii.b2a_base64(raw[i:i + 57]) for i in range(0, len(raw), 57)]).replace(b"\n", b"\r\n")
