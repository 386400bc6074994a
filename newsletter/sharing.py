""""Email this article" (기사 메일전송) from the newsroom's article page: the workflow behind
`POST /articles/{article_id}/share` (`newsletter.http.sharing` parses the form and maps the outcome).

Never an open relay: the mail can only hold one of our stored articles, our own words around it, and a short
note that is escaped, kept to 300 characters and may not contain links. The note and the sender's name are read
as NFKC with invisible characters removed (what is checked is what is sent), and refused if anything in them looks
like a link a mail client would make clickable: a scheme, `www.`, a host name under any TLD (`paypal-secure.co`,
`.shop`, fullwidth or ideographic dots), a bare IP. The sender's name is a label, never an address or a header of
its own. Limits: 5 shares an hour per client IP, 3 a day per recipient. An address that asked us for no mail (the
suppression list) gets nothing, and the sender is told the same as for any other address, so the answer does
not reveal who opted out. The recipient's address is not stored.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from jinja2 import Environment

from feeds.core.limits import Limits
from feeds.readership import Redirects
from feeds.store import ArticleStore

from .compose import build_message, message_id, render_notice, sender_domain
from .errors import DeliveryError, SubscriberError
from .messages import TEXT
from .notices import send_one
from .records import normalise_email
from .settings import Settings
from .signing import DkimSigner
from .subscribers import SubscriberStore
from .transport import Transport
from .verp import TagCodec

log = logging.getLogger(__name__)

MAX_NOTE, MAX_SENDER = 300, 30
# On NFKC text, lower-cased, with the ideographic full stops turned into dots.
LINKS = re.compile(r"[a-z][a-z0-9+.-]*:/|\b(?:www\d?|ftp)\.|(?:mailto|javascript|data|tel):"
                   r"|[\w-]\.(?:[a-z]{2,63}|xn--[a-z0-9-]+|한국|中国|中國|台灣|台湾|香港|рф|онлайн|сайт)(?![a-z0-9])"
                   r"|\b\d{1,3}(?:\.\d{1,3}){3}\b|\[[0-9a-f:.]*:[0-9a-f:.]*\]")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_DOTS = str.maketrans({"\u3002": ".", "\uff61": ".", "\ufe52": ".", "\u2024": "."})

def plain_text(value: str) -> str:
    """NFKC, without control characters and invisible ones (zero-width spaces, joiners, bidirectional marks)."""
    text = CONTROL.sub("", unicodedata.normalize("NFKC", value))
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def has_link(text: str) -> bool:
    """Whether a mail client could turn something in `text` into a link."""
    return LINKS.search(unicodedata.normalize("NFKC", text).lower().translate(_DOTS)) is not None


@dataclass(frozen=True)
class ShareForm:
    """The share form as sent."""

    sender_name: str
    recipient: str
    note: str = ""


@dataclass(frozen=True)
class ShareOutcome:
    """What to tell the sender. `key` names their words in the catalogue (`share_<key>`): "sent" (also when the recipient opted out: the
    answer must not tell), "no_article", "no_sender", "links", "bad_address", "too_many" (with `retry_after`
    seconds), "failed" (the mail server did not take it)."""

    key: str
    retry_after: int | None = None


class Sharing:
    """"Email this article": checks the form, applies the limits, composes the mail around a stored article and
    sends it."""

    def __init__(self, settings: Settings, articles: ArticleStore, subscribers: SubscriberStore, redirects: Redirects,
                 templates: Environment, clock: Callable[[], datetime], transport: Callable[[], Transport],
                 tags: TagCodec, signer: DkimSigner | None = None, *, limits: Limits | None = None) -> None:
        self.settings = settings
        self.articles = articles
        self.subscribers = subscribers
        self.redirects = redirects
        self.templates = templates
        self.clock = clock
        self.transport = transport
        self.tags = tags
        self.signer = signer
        limits = limits or Limits(clock)
        self.per_ip = limits.limiter("share-ip", 5, timedelta(hours=1))
        self.per_recipient = limits.limiter("share-recipient", 3, timedelta(days=1))

    def share(self, article_id: str, form: ShareForm, *, lang: str, ip: str) -> ShareOutcome:
        article = self.articles.article(article_id)
        if article is None or not article.is_live:  # a killed or held story is not mailed on
            return ShareOutcome("no_article")
        sender = " ".join(plain_text(form.sender_name).split())[:MAX_SENDER]
        note = plain_text(form.note).strip()[:MAX_NOTE]
        if not sender:
            return ShareOutcome("no_sender")
        if has_link(note) or has_link(sender):
            return ShareOutcome("links")
        try:
            recipient = normalise_email(form.recipient[:320])
        except SubscriberError:
            return ShareOutcome("bad_address")
        for limiter, key in ((self.per_ip, ip), (self.per_recipient, recipient.lower())):
            wait = limiter.hit(key)
            if wait:
                return ShareOutcome("too_many", retry_after=wait)
        if self.subscribers.is_suppressed(recipient):
            log.info("share of article %s: the recipient asked for no mail; nothing sent", article.id)
            return ShareOutcome("sent")
        settings = self.settings
        t, names = TEXT[lang], {"site": settings.site.name, "sender": sender}
        body = article.title + (f"\n\n{article.summary}" if article.summary else "")
        mail = render_notice(self.templates, settings, language=lang,
                             subject=t.text("share_subject", title=article.title, **names)[:200],
                             title=t.text("share_title", **names), body=body, button=t["share_button"],
                             button_url=self.redirects.url(article.id, "email"),
                             footnote=f"{t.text('share_note', **names)}: “{note}”" if note else "",
                             why=t.text("share_why", **names))
        tag = self.tags.share()
        data = build_message(settings, mail, to=recipient, to_name=None, now=self.clock(), list_id="share",
                             message_id=message_id(sender_domain(settings), tag))
        try:
            send_one(self.transport, self.signer, self.tags.envelope_from(tag), recipient, data)
        except DeliveryError as exc:
            log.warning("share of article %s failed: %s", article.id, exc)
            return ShareOutcome("failed")
        log.info("article %s shared by mail", article.id)
        return ShareOutcome("sent")
