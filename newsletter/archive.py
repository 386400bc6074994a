"""`GET /archive/{edition}/{token}`: a digest as a web page, the mail's "view in browser" link.

The page is the segment's stored HTML, so it is what its readers were sent, without a copy per reader; but it
shows nobody's address or links: a digest is forwarded, and whoever opens a forwarded link must not be able to
change or cancel the subscription. Where the mail had the reader's own links, the page links to /link, where a
reader gets theirs by mail. The token names the edition's segment only (`Tokens.for_archive`); links made before
that carried the reader's preferences token, and are still read (their delivery row says which segment) until
they expire, to the same page.
"""

from __future__ import annotations

import html as html_escape
from typing import Callable

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from feeds.db import is_storable_id
from .settings import Settings

from .compose import ARCHIVE, EMAIL, NAME, PREFERENCES, UNSUBSCRIBE
from .deliveries import DeliveryStore
from .errors import TokenError
from .messages import TEXT, pick_language
from .subscribers import SubscriberStore
from .tokens import Tokens


def routes(settings: Settings, deliveries: DeliveryStore, subscribers: SubscriberStore, tokens: Tokens,
           templates: Environment) -> list[Route]:
    def problem(request: Request, status: int, reason: str) -> Response:
        lang = pick_language(request.query_params.get("lang"), None, settings.site.language)
        t = TEXT[lang]
        page = templates.get_template("pages/notice.html").render(
            site=settings.site, lang=lang, t=t, title=t[f"{reason}_title"], message=t[reason], path=request.url.path,
            new_link=reason == "expired")
        return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})

    def archive(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            edition_id = int(request.path_params["edition"])
            segment_id = _segment_of(token, edition_id)
        except TokenError as exc:
            return problem(request, 410 if exc.reason == "expired" else 400, exc.reason)
        except ValueError:
            return problem(request, 400, "invalid")
        found = deliveries.segment(segment_id) if segment_id is not None else None
        if found is None or found[0] != edition_id:
            return problem(request, 404, "invalid")
        _, mail, language = found
        base = settings.site.base_url
        page = fill(mail.html, {EMAIL: TEXT[language if language in TEXT else "ko"]["address_hidden"], NAME: "",
                                UNSUBSCRIBE: f"{base}/link", PREFERENCES: f"{base}/link",
                                ARCHIVE: f"{base}/archive/{edition_id}/{token}"})
        # Nobody's links are on it; still not for search engines, and shared caches may keep it a while.
        return HTMLResponse(page, headers={"Cache-Control": "public, max-age=3600", "X-Robots-Tag": "noindex"})

    def _segment_of(token: str, edition_id: int) -> int | None:
        """The segment an archive token names, or (a link made before archive tokens) the one the reader got."""
        if not is_storable_id(edition_id):
            return None
        try:
            token_edition, segment_id = tokens.archive_of(token)
        except TokenError as exc:
            if exc.reason == "expired":
                raise
            try:
                owner = tokens.subscriber_of("preferences", token)
            except TokenError:
                raise exc from None
            subscriber = subscribers.owner_of(owner)
            delivery = deliveries.delivery(edition_id, subscriber.id) if subscriber is not None else None
            return int(delivery["segment_id"]) if delivery and delivery["segment_id"] else None  # type: ignore[arg-type]
        return segment_id if token_edition == edition_id else None

    return [Route("/archive/{edition}/{token}", archive, methods=["GET", "HEAD"])]


def fill(mail_html: str, values: dict[str, str], escape: Callable[[str], str] = html_escape.escape) -> str:
    """The segment's HTML with one reader's values in place of the markers."""
    for marker, value in values.items():
        mail_html = mail_html.replace(marker, escape(value))
    return mail_html
