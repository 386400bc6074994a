"""Composing mail: a Digest -> HTML and plain text (both from the same data, jinja2) -> an EmailMessage.

The text part is rendered from its own template, not derived from the HTML, so it reads well in a text-only
client. Korean subjects and names are encoded by the email package (RFC 2047, UTF-8).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any

from jinja2 import Environment

from feeds.settings import Settings

from .digest import Digest
from .subscribers import Subscriber

EDITION_LABELS = {
    "ko": {"daily": "오늘의 뉴스", "weekly": "이번 주 뉴스"},
    "en": {"daily": "Today's news", "weekly": "This week's news"},
}


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    html: str
    text: str


def edition_label(edition: str, language: str) -> str:
    return EDITION_LABELS.get(language, EDITION_LABELS["en"]).get(edition, edition)


def render_digest(env: Environment, settings: Settings, digest: Digest, subscriber: Subscriber) -> RenderedMail:
    language = subscriber.language or settings.site.language
    local_end = digest.period_end.astimezone(settings.site.timezone)
    date_text = (f"{local_end.year}년 {local_end.month}월 {local_end.day}일" if language == "ko"
                 else local_end.strftime("%B %-d, %Y"))
    label = edition_label(digest.edition, language)
    subject = f"[{settings.site.name}] {label} · {date_text}"
    context: dict[str, Any] = {
        "site": settings.site, "mail": settings.mail, "digest": digest, "subscriber": subscriber,
        "language": language, "label": label, "date_text": date_text, "subject": subject,
        "tz": settings.site.timezone,
    }
    html = env.get_template("email/digest.html").render(**context)
    text = env.get_template("email/digest.txt").render(**context)
    return RenderedMail(subject=subject, html=html, text=text)


# Python's header folder drops the space between two RFC 2047 encoded words when it splits a long Korean
# subject ("2026년 11월" arrives as "2026년11월"), so headers are not folded below the RFC 5322 hard limit.
MAIL_POLICY = policy.default.clone(max_line_length=998)


def build_message(settings: Settings, mail: RenderedMail, *, to: str, to_name: str | None, now: datetime,
                  list_id: str) -> EmailMessage:
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
