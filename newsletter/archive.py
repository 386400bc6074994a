"""`GET /archive/{edition}/{token}`: a digest as a web page, the mail's "view in browser" link.

The page is the segment's stored HTML with this subscriber's own links filled in, so it is exactly what they
were sent, without a copy per subscriber. The token is the subscriber's preferences token (the page shows that
link anyway); their delivery row of the edition says which segment they got.
"""

from __future__ import annotations

import html as html_escape
from typing import Callable

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from feeds.db import is_storable_id
from feeds.settings import Settings

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
            subscriber_id, email = tokens.subscriber_of("preferences", token)
            edition_id = int(request.path_params["edition"])
        except TokenError as exc:
            return problem(request, 410 if exc.reason == "expired" else 400, exc.reason)
        except ValueError:
            return problem(request, 400, "invalid")
        if not is_storable_id(edition_id):
            return problem(request, 404, "invalid")
        delivery = deliveries.delivery(edition_id, subscriber_id)
        found = deliveries.segment(int(delivery["segment_id"])) if delivery and delivery["segment_id"] else None  # type: ignore[arg-type]
        if found is None or found[0] != edition_id:
            return problem(request, 404, "invalid")
        _, mail, _ = found
        subscriber = subscribers.get(subscriber_id, email)
        base = settings.site.base_url
        links = {
            EMAIL: email, NAME: (subscriber.name or "") if subscriber else "",
            UNSUBSCRIBE: f"{base}/unsubscribe/{tokens.for_subscriber('unsubscribe', subscriber_id, email)}",
            PREFERENCES: f"{base}/preferences/{tokens.for_subscriber('preferences', subscriber_id, email)}",
            ARCHIVE: f"{base}/archive/{edition_id}/{token}",
        }
        page = fill(mail.html, links)
        # Private to its reader (it holds their links): never in a shared cache, never indexed.
        return HTMLResponse(page, headers={"Cache-Control": "private, max-age=3600", "X-Robots-Tag": "noindex"})

    return [Route("/archive/{edition}/{token}", archive, methods=["GET", "HEAD"])]


def fill(mail_html: str, values: dict[str, str], escape: Callable[[str], str] = html_escape.escape) -> str:
    """The segment's HTML with one reader's values in place of the markers."""
    for marker, value in values.items():
        mail_html = mail_html.replace(marker, escape(value))
    return mail_html
