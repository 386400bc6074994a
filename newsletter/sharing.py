"""`POST /articles/{article_id}/share`: "email this article" (기사 메일전송) from the newsroom's article page.

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
from datetime import datetime, timedelta
from typing import Any, Callable

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from feeds.settings import Settings
from feeds.store import ArticleStore
from feeds.views import Redirects

from .compose import build_message, message_id, render_notice, sender_domain
from .errors import DeliveryError, SubscriberError
from feeds.core.http import RateLimiter
from .messages import TEXT, pick_language
from .signing import DkimSigner
from .subscribers import SubscriberStore, normalise_email
from .transport import Transport
from .verp import TagCodec
from .notices import send_one
from .web import with_form

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


def routes(settings: Settings, articles: ArticleStore, subscribers: SubscriberStore, redirects: Redirects,
           templates: Environment, clock: Callable[[], datetime], transport: Callable[[], Transport],
           tags: TagCodec, signer: DkimSigner | None = None) -> list[Route]:
    per_ip = RateLimiter(5, timedelta(hours=1), clock)
    per_recipient = RateLimiter(3, timedelta(days=1), clock)

    def answer(request: Request, lang: str, status: int, key: str, **extra: Any) -> Response:
        message = TEXT[lang][key]
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"error" if status >= 400 else "status": message, **extra}, status_code=status,
                                headers={k: v for k, v in extra.items() if k == "Retry-After"})
        page = templates.get_template("pages/notice.html").render(
            site=settings.site, lang=lang, t=TEXT[lang], title=TEXT[lang]["share_heading"], message=message,
            path=request.url.path)
        headers = {"Cache-Control": "no-store", **{k: v for k, v in extra.items() if k == "Retry-After"}}
        return HTMLResponse(page, status_code=status, headers=headers)

    def share_article(request: Request, form: Any) -> Response:
        lang = pick_language(form.get("lang") or request.query_params.get("lang"), None, settings.site.language)
        article = articles.article(request.path_params["article_id"])
        if article is None:
            return answer(request, lang, 404, "share_no_article")
        sender = " ".join(plain_text(str(form.get("sender_name", ""))).split())[:MAX_SENDER]
        note = plain_text(str(form.get("note", ""))).strip()[:MAX_NOTE]
        if not sender:
            return answer(request, lang, 400, "share_no_sender")
        if has_link(note) or has_link(sender):
            return answer(request, lang, 400, "share_links")
        try:
            recipient = normalise_email(str(form.get("recipient", ""))[:320])
        except SubscriberError:
            return answer(request, lang, 400, "share_bad_address")
        ip = request.client.host if request.client else ""
        for limiter, key in ((per_ip, ip), (per_recipient, recipient.lower())):
            wait = limiter.hit(key)
            if wait:
                return answer(request, lang, 429, "share_too_many", **{"Retry-After": str(wait)})
        if subscribers.is_suppressed(recipient):
            log.info("share of article %s: the recipient asked for no mail; nothing sent", article.id)
            return answer(request, lang, 200, "share_sent")
        t, names = TEXT[lang], {"site": settings.site.name, "sender": sender}
        body = article.title + (f"\n\n{article.summary}" if article.summary else "")
        mail = render_notice(templates, settings, language=lang,
                             subject=t.text("share_subject", title=article.title, **names)[:200],
                             title=t.text("share_title", **names), body=body, button=t["share_button"],
                             button_url=redirects.url(article.id, "email"),
                             footnote=f"{t.text('share_note', **names)}: “{note}”" if note else "",
                             why=t.text("share_why", **names))
        tag = tags.share()
        data = build_message(settings, mail, to=recipient, to_name=None, now=clock(), list_id="share",
                             message_id=message_id(sender_domain(settings), tag))
        try:
            send_one(transport, signer, tags.envelope_from(tag), recipient, data)
        except DeliveryError as exc:
            log.warning("share of article %s failed: %s", article.id, exc)
            return answer(request, lang, 503, "share_failed")
        log.info("article %s shared by mail", article.id)
        return answer(request, lang, 200, "share_sent")

    return [Route("/articles/{article_id}/share", with_form(share_article), methods=["POST"])]
