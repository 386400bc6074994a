"""Composing mail: a Digest -> one `MailTemplate` per segment -> the bytes of each subscriber's message.

A segment (subscribers with the same categories, language, time zone and high-water mark) shares everything but
a few fields: the address, the unsubscribe, preferences and archive links, the Message-ID. So the HTML (with its
CSS inlined by css-inline) and the text part are rendered once per segment with placeholders, and
`personalise` fills them in and writes the MIME bytes directly: building an `EmailMessage` per subscriber costs
about 3 ms, this costs a few tens of microseconds. The text part is rendered from its own template, not derived
from the HTML, so it reads well in a text-only client.

Headers are written here with `headers`, not by Python's header folder: that one drops the space between two
RFC 2047 encoded words when it folds a long Korean subject, mangles long List-Unsubscribe values into encoded
words, and decodes encoded words a reader typed into their name while writing it (header injection).
"""

from __future__ import annotations

import binascii
import html as html_escape
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime, parseaddr
from typing import Any, Callable, Protocol
from urllib.parse import quote

import css_inline
from jinja2 import Environment

from feeds.core.i18n import Words
from feeds.settings import SiteSettings
from templates import CATALOGUE

from .digest import Digest
from .headers import (
    HeaderError,
    address_header,
    encode_text,
    header_line,
    header_text,
    phrase,
)
from .settings import MailSettings

# The subject's label of the two built-in editions (catalogue keys); any other edition is named by its own name.
EDITION_LABELS = {"daily": "digest_label_daily", "weekly": "digest_label_weekly"}

# Filled in per subscriber. Plain ASCII words that survive escaping, CSS inlining and URL attributes unchanged.
# The web copy's marker keeps its old text: segments stored in the database before the rename contain it.
EMAIL, NAME, UNSUBSCRIBE, PREFERENCES, WEB_COPY = ("GZXEMAILX", "GZXNAMEX", "GZXUNSUBSCRIBEX", "GZXPREFERENCESX",
                                                   "GZXARCHIVEX")

_MARKERS = re.compile(f"({EMAIL}|{NAME}|{UNSUBSCRIBE}|{PREFERENCES}|{WEB_COPY})")
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


class SiteAndMail(Protocol):
    """The settings a mail is made from: the site (name, address, privacy policy) and the [mail] section (sender,
    reply-to, postal address). `Settings` has them, and so has an edition run's `RunSettings`."""

    @property
    def site(self) -> SiteSettings: ...

    @property
    def mail(self) -> MailSettings: ...


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

    def encode(self, values: dict[str, bytes]) -> bytes:
        """The part's base64 with `values` (marker -> bytes) in place of the markers."""
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
    web_copy_url: str


def edition_label(edition: str, language: str) -> str:
    key = EDITION_LABELS.get(edition)
    return _words(language).text(key) if key else edition


def local_date_text(moment: datetime, language: str) -> str:
    """The day in the reader's words: "2026년 11월 25일", "November 25, 2026" (Babel, CLDR's long date)."""
    return _words(language).date(moment)


def _words(language: str) -> Words:
    """The reader's words; English for a language the catalogue lacks (as the mails always did)."""
    return CATALOGUE[language] if language in CATALOGUE else CATALOGUE["en"]


def digest_subject(settings: SiteAndMail, digest: Digest, *, language: str, zone: Any, has_ads: bool = False) -> str:
    """The subject line of a segment's digest (what `render_digest` puts in the mail, without rendering it)."""
    date_text = local_date_text(digest.period_end.astimezone(zone), language)
    label = edition_label(digest.edition, language)
    return (_words(language).text("digest_ad_mark") if has_ads else "") + f"[{settings.site.name}] {label} · {date_text}"


def render_digest(env: Environment, settings: SiteAndMail, digest: Digest, *, language: str, zone: Any,
                  link: Callable[[str], str], has_ads: bool = False) -> RenderedMail:
    """The segment's mail with placeholders where each subscriber's own address and links go.

    `link(article_id)` gives the tracked link of an article (a signed /r/ redirect).
    """
    local_end = digest.period_end.astimezone(zone)
    date_text = local_date_text(local_end, language)
    label = edition_label(digest.edition, language)
    subject = digest_subject(settings, digest, language=language, zone=zone, has_ads=has_ads)
    first = [a.title for s in digest.sections for a in s.articles][:3]
    context: dict[str, Any] = {
        "site": settings.site, "mail": settings.mail, "digest": digest, "language": language, "label": label,
        "date_text": date_text, "subject": subject, "tz": zone, "link": link, "preheader": " · ".join(first),
        "email": EMAIL, "unsubscribe_url": UNSUBSCRIBE, "preferences_url": PREFERENCES, "web_copy_url": WEB_COPY,
        "has_ads": has_ads,
    }
    html = _INLINER.inline(env.get_template("email/digest.html").render(**context))
    text = env.get_template("email/digest.txt").render(**context)
    return RenderedMail(subject=subject, html=html, text=text)


def render_notice(env: Environment, settings: SiteAndMail, *, language: str, subject: str, title: str, body: str,
                  button: str, button_url: str, footnote: str = "", why: str = "", template: str = "notice",
                  **extra: Any) -> RenderedMail:
    """A one-action mail (confirm, manage, a shared article; `template` "welcome" and its `extra` values for the
    welcome): the same words in the HTML and the text part."""
    context: dict[str, Any] = {"site": settings.site, "mail": settings.mail, "language": language, "subject": subject,
                               "title": title, "body": body, "button": button, "button_url": button_url,
                               "footnote": footnote, "why": why, **extra}
    return RenderedMail(subject=subject,
                        html=_INLINER.inline(env.get_template(f"email/{template}.html").render(**context)),
                        text=env.get_template(f"email/{template}.txt").render(**context))


def make_template(settings: SiteAndMail, mail: RenderedMail, *, list_id: str) -> MailTemplate:
    """The headers and parts that every copy of this segment's mail shares."""
    boundary = "=_gz_" + secrets.token_hex(12)
    domain = sender_domain(settings)
    lines = _common_head(settings, mail.subject, list_id) + [
        header_line("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        header_line("MIME-Version", "1.0"),
        header_line("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    return MailTemplate(subject=mail.subject, html=mail.html, text=mail.text, head="".join(lines).encode("ascii"),
                        boundary=boundary, domain=domain, html_body=Base64Body.of(mail.html),
                        text_body=Base64Body.of(mail.text))


def personalise(template: MailTemplate, recipient: Recipient, *, now: datetime, unsubscribe_address: str) -> bytes:
    """One subscriber's message as wire bytes (CRLF line ends), ready to sign and send."""
    name = header_text(recipient.name, limit=100)
    fills = {EMAIL: recipient.email, NAME: name, UNSUBSCRIBE: recipient.unsubscribe_url,
             PREFERENCES: recipient.preferences_url, WEB_COPY: recipient.web_copy_url}
    text_values = {marker: value.encode("utf-8") for marker, value in fills.items()}
    html_values = {marker: html_escape.escape(value).encode("utf-8") for marker, value in fills.items()}
    token = recipient.unsubscribe_url.rsplit("/", 1)[-1]
    mailto = f"mailto:{unsubscribe_address}?subject={quote('unsubscribe ' + token)}"
    head = template.head + "".join((
        header_line("To", address_header(name, wire_address(recipient.email))),
        header_line("Date", format_datetime(now.astimezone(timezone.utc), usegmt=True)),
        header_line("Message-ID", recipient.message_id),
        header_line("List-Unsubscribe", f"<{_url(recipient.unsubscribe_url)}>,\r\n <{_url(mailto)}>"),
    )).encode("utf-8")
    return head + b"\r\n" + _parts(template.boundary, template.text_body.encode(text_values),
                                    template.html_body.encode(html_values))


def replace_markers(body: str, values: dict[str, str], escape: Callable[[str], str] = html_escape.escape) -> str:
    """A segment's HTML (or, with `escape=str`, its text) with one reader's values (marker -> value) in place of
    the markers: a web copy or a preview, where no MIME bytes are needed."""
    for marker, value in values.items():
        body = body.replace(marker, escape(value))
    return body


def sender_domain(settings: SiteAndMail) -> str:
    """The domain of the From address: where Message-IDs are made."""
    return parseaddr(settings.mail.from_address)[1].rpartition("@")[2] or "localhost"


def message_id(domain: str, tag: str) -> str:
    """`<tag@domain>`: the signed tag (see `verp`) makes it unique and ties replies about it to this message."""
    return f"<{tag}@{domain}>"


def build_message(settings: SiteAndMail, mail: RenderedMail, *, to: str, to_name: str | None, now: datetime,
                  list_id: str, message_id: str) -> bytes:
    """A one-off mail (a confirmation, a shared article) as wire bytes (CRLF line ends)."""
    boundary = "=_gz_" + secrets.token_hex(12)
    head = _common_head(settings, mail.subject, list_id) + [
        header_line("To", address_header(to_name, wire_address(to))),
        header_line("Date", format_datetime(now.astimezone(timezone.utc), usegmt=True)),
        header_line("Message-ID", message_id),
        header_line("MIME-Version", "1.0"),
        header_line("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    return "".join(head).encode("utf-8") + b"\r\n" + _parts(
        boundary, Base64Body.of(mail.text).encode({}), Base64Body.of(mail.html).encode({}))


def wire_address(address: str) -> str:
    """The address as written on the wire: an internationalised domain in its ASCII form (IDNA), so that only a
    non-ASCII local part needs SMTPUTF8."""
    if address.isascii():
        return address
    local, _, domain = address.rpartition("@")
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return address


def _common_head(settings: SiteAndMail, subject: str, list_id: str) -> list[str]:
    """From, Reply-To, Subject and List-Id: what every mail of ours carries."""
    name, address = parseaddr(settings.mail.from_address)
    lines = [header_line("From", address_header(name, address, "From"))]
    if settings.mail.reply_to:
        reply_name, reply_address = parseaddr(settings.mail.reply_to)
        lines.append(header_line("Reply-To", address_header(reply_name, reply_address, "Reply-To")))
    lines += [header_line("Subject", encode_text(subject, "Subject")),
              header_line("List-Id", f"{phrase(settings.site.name, 'List-Id')} <{list_id}.{sender_domain(settings)}>")]
    return lines


def _url(url: str) -> str:
    """A URL inside <...> in a header: nothing that could end the bracket or the line."""
    if any(c in url for c in "<>\r\n\t ") or not url.isascii():
        raise HeaderError(f"{url!r} cannot go into a header")
    return url


def _parts(boundary: str, text_b64: bytes, html_b64: bytes) -> bytes:
    b = boundary.encode("ascii")
    return b"".join((
        b"--", b, b"\r\nContent-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        text_b64, b"--", b,
        b"\r\nContent-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        html_b64, b"--", b, b"--\r\n"))


def _base64_lines(raw: bytes) -> bytes:
    """Base64 in lines of at most 76 characters, each ending CRLF; nothing for nothing."""
    return b"".join([binascii.b2a_base64(raw[i:i + 57]) for i in range(0, len(raw), 57)]).replace(b"\n", b"\r\n")
