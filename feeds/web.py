"""HTTP for the content side: the feed list, feeds and archives, OPML, the view beacon, signed redirects, health.

Only HTTP lives here (conditional GET, gzip, status codes); what a feed contains is `publish`'s business.
Handlers that reach the database are plain functions, which Starlette runs in its thread pool so that the
event loop never waits on a query; those served from memory (feeds, the beacon) are coroutines.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Callable
from xml.sax.saxutils import escape, quoteattr

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import StoreError
from .guard import MAX_HEADER_BYTES
from .publish import FeedPublisher, Rendered, feed_url
from .render import FORMATS
from .settings import Settings
from .store import ArticleStore
from .views import TRANSPARENT_GIF, Redirects, ViewCounter

FORMAT_NAMES = {"rss": "RSS 2.0", "atom": "Atom 1.0", "json": "JSON Feed 1.1"}


def is_fresh(request: Request, rendered: Rendered) -> bool:
    return is_fresh_for(request.headers.get("if-none-match"), request.headers.get("if-modified-since"), rendered)


def is_fresh_for(if_none_match: str | None, if_modified_since: str | None, rendered: Rendered) -> bool:
    """RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since."""
    if if_none_match is not None:
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return "*" in tags or rendered.etag in tags
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            return False
        return rendered.last_modified.replace(microsecond=0) <= since
    return False


def accepts_gzip(request: Request) -> bool:
    return accepts_gzip_in(request.headers.get("accept-encoding", ""))


def accepts_gzip_in(accept_encoding: str) -> bool:
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def feed_response(request: Request, rendered: Rendered, max_age: int, links: dict[str, list[str]] | None = None,
                  ) -> Response:
    headers = {
        "ETag": rendered.etag,
        "Last-Modified": rendered.last_modified_http,
        "Cache-Control": f"public, max-age={max_age}",
        "Vary": "Accept-Encoding",
    }
    if links:  # WebSub discovery (W3C WebSub §4): the hubs and the topic URL, also in HTTP
        headers["Link"] = ", ".join(f'<{href}>; rel="{rel}"' for rel, hrefs in links.items() for href in hrefs)
    if is_fresh(request, rendered):
        return Response(status_code=304, headers=headers)
    body = rendered.body
    if accepts_gzip(request):
        body = rendered.gzipped
        headers["Content-Encoding"] = "gzip"
    headers["Content-Length"] = str(len(body))
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers, media_type=rendered.content_type)
    return Response(body, headers=headers, media_type=rendered.content_type)


def client_ip(request: Request) -> str:
    # uvicorn's proxy_headers already put X-Forwarded-For from trusted proxies into request.client.
    return request.client.host if request.client else ""


FEED_PATH = re.compile(r"^/feeds/([a-z0-9][a-z0-9-]*(?:/popular)?)\.(rss|atom|json)$")


class FeedFastPath:
    """ASGI middleware that answers GET and HEAD of built public feeds straight from memory.

    Feeds are the hot path (readers' apps poll them, mostly with validators): answering here skips the
    framework's routing and middleware, whose cost per request is several times that of the answer; it sits even
    in front of the request guard, whose rules it keeps for what it answers (a header cap, nosniff) and to which it
    leaves everything else. The behaviour is the `feed` route's, which still answers anything this does not (a
    feed not built yet, errors).
    """

    def __init__(self, app: ASGIApp, publisher: FeedPublisher, settings: Settings) -> None:
        self._app = app
        self._publisher = publisher
        self._max_age = settings.feeds.max_age
        self._hubs = settings.feeds.hubs
        self._settings = settings
        self._headers: dict[tuple[str, str], tuple[Rendered, list[tuple[bytes, bytes]]]] = {}

    def _base_headers(self, slug: str, fmt: str, rendered: Rendered) -> list[tuple[bytes, bytes]]:
        cached = self._headers.get((slug, fmt))
        if cached is not None and cached[0] is rendered:
            return cached[1]
        headers = [(b"x-content-type-options", b"nosniff"),
                   (b"etag", rendered.etag.encode()), (b"last-modified", rendered.last_modified_http.encode()),
                   (b"cache-control", f"public, max-age={self._max_age}".encode()), (b"vary", b"Accept-Encoding")]
        if self._hubs:
            links = [f'<{hub}>; rel="hub"' for hub in self._hubs] + [f'<{feed_url(self._settings, slug, fmt)}>; rel="self"']
            headers.append((b"link", ", ".join(links).encode()))
        self._headers[(slug, fmt)] = (rendered, headers)
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            match = FEED_PATH.match(scope["path"])
            rendered = self._publisher.cached(match[1], match[2]) if match else None
            if rendered is not None:
                request_headers, size = {}, 0
                for name, value in scope["headers"]:
                    size += len(name) + len(value)
                    if name in (b"if-none-match", b"if-modified-since", b"accept-encoding"):
                        request_headers[name] = value
                if size <= MAX_HEADER_BYTES and b"%00" not in scope["query_string"]:  # else the guard refuses it
                    await self._answer(scope, send, match[1], match[2], rendered, request_headers)  # type: ignore[index]
                    return
        await self._app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send, slug: str, fmt: str, rendered: Rendered,
                      request_headers: dict[bytes, bytes]) -> None:
        headers = list(self._base_headers(slug, fmt, rendered))
        none_match = request_headers.get(b"if-none-match")
        modified_since = request_headers.get(b"if-modified-since")
        if is_fresh_for(none_match.decode("latin-1") if none_match is not None else None,
                        modified_since.decode("latin-1") if modified_since else None, rendered):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body = rendered.body
        if accepts_gzip_in(request_headers.get(b"accept-encoding", b"").decode("latin-1")):
            body = rendered.gzipped
            headers.append((b"content-encoding", b"gzip"))
        headers += [(b"content-type", rendered.content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


def routes(settings: Settings, store: ArticleStore, publisher: FeedPublisher, templates: Environment,
           clock: Callable[[], datetime], counter: ViewCounter, redirects: Redirects,
           on_partner_click: Callable[[str, datetime], None] = lambda partner, at: None) -> list[Route]:
    def page(name: str, status: int = 200, **context: object) -> HTMLResponse:
        html = templates.get_template(f"pages/{name}").render(site=settings.site, **context)
        return HTMLResponse(html, status_code=status)

    def feed_links() -> list[dict[str, str]]:
        return [{"slug": info.slug, "title": info.title, "description": info.description,
                 "formats": [{"fmt": fmt, "name": FORMAT_NAMES[fmt], "type": FORMATS[fmt].split(";")[0],
                              "url": feed_url(settings, info.slug, fmt)} for fmt in FORMATS]}
                for info in publisher.feeds()]

    def index(request: Request) -> Response:
        return page("index.html", feeds=feed_links(), latest=store.articles(limit=10))

    async def feed(request: Request) -> Response:
        return serve_feed(request, request.path_params["slug"], request.path_params["fmt"])

    async def category_popular(request: Request) -> Response:
        return serve_feed(request, f"{request.path_params['slug']}/popular", request.path_params["fmt"])

    def serve_feed(request: Request, slug: str, fmt: str) -> Response:
        rendered = publisher.get(slug, fmt)
        if rendered is None:
            known = ", ".join(info.slug for info in publisher.feeds())
            return page("error.html", status=404, title="404",
                        message=f"'{slug}.{fmt}' 피드는 없습니다. 있는 피드: {known} (형식: rss, atom, json)")
        links = {"hub": list(settings.feeds.hubs), "self": [feed_url(settings, slug, fmt)]} if settings.feeds.hubs else None
        return feed_response(request, rendered, settings.feeds.max_age, links)

    def archive(request: Request) -> Response:
        slug, month = request.path_params["slug"], request.path_params["month"]
        rendered = publisher.archive(slug, month)
        if rendered is None:
            return page("error.html", status=404, title="404",
                        message=f"'{slug}' 피드에는 {month} 보관 문서가 없습니다. 보관 문서는 지난 달까지, "
                                f"YYYY-MM 형식입니다 (예: /feeds/{slug}/archive/2026-10.atom).")
        # A finished month never changes: caches may keep it for a long time.
        return feed_response(request, rendered, max(settings.feeds.max_age, 86400))

    def news_sitemap(request: Request) -> Response:
        return feed_response(request, publisher.news_sitemap(), settings.feeds.max_age)

    def count(request: Request) -> str:
        return counter.record(request.path_params["article_id"], client_ip(request),
                              request.headers.get("user-agent", ""))

    async def beacon_gif(request: Request) -> Response:
        if count(request) == "unknown":
            return Response(b"", status_code=404, headers={"Cache-Control": "no-store"})
        return Response(TRANSPARENT_GIF, media_type="image/gif", headers={"Cache-Control": "no-store"})

    async def beacon_post(request: Request) -> Response:
        if count(request) == "unknown":
            return JSONResponse({"error": "no such article"}, status_code=404)
        return Response(status_code=204, headers={"Cache-Control": "no-store"})

    def redirect(request: Request) -> Response:
        found = redirects.target(request.path_params["token"])
        article = store.article(found.article_id) if found else None
        if found is None or article is None or not article.url:
            return page("error.html", status=404, title="404",
                        message="이 링크는 올바르지 않거나 더 이상 쓸 수 없습니다." if settings.site.language == "ko"
                        else "This link is not valid or no longer leads anywhere.")
        link = "/".join((article.id, found.channel, found.partner or "", found.query.get("utm_campaign", "")))
        if counter.is_click(link, client_ip(request), request.headers.get("user-agent", "")):
            store.add_click(article.id, clock(), found.channel)
            if found.query.get("utm_campaign"):  # a digest edition's own count, for its statistics
                store.add_campaign_click(found.query["utm_campaign"], article.id)
            if found.partner:
                on_partner_click(found.partner, clock())
        # Only ever to the URL stored for the signed article (plus its signed UTM): never an open redirect.
        return RedirectResponse(found.destination(article.url), status_code=302, headers={"Cache-Control": "no-store"})

    async def livez(request: Request) -> Response:
        return Response(b"ok\n", media_type="text/plain", headers={"Cache-Control": "no-store"})

    def opml(request: Request) -> Response:
        outlines = "\n".join(
            f"    <outline type=\"rss\" text={quoteattr(info['title'])} title={quoteattr(info['title'])} "
            f"xmlUrl={quoteattr(info['formats'][0]['url'])} htmlUrl={quoteattr(settings.site.base_url + '/')}/>"
            for info in feed_links())
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">\n  <head>\n'
                f"    <title>{escape(settings.site.name)}</title>\n  </head>\n  <body>\n{outlines}\n  </body>\n</opml>\n")
        return Response(body.encode("utf-8"), media_type="text/x-opml; charset=utf-8",
                        headers={"Cache-Control": f"public, max-age={settings.feeds.max_age}"})

    def healthz(request: Request) -> Response:
        try:
            store.ping()
        except StoreError as exc:
            return JSONResponse({"status": "error", "database": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok", "time": clock().isoformat()},
                            headers={"Cache-Control": "no-store"})

    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/feeds/{slug}.{fmt}", feed, methods=["GET", "HEAD"]),
        Route("/feeds/{slug}/popular.{fmt}", category_popular, methods=["GET", "HEAD"]),
        Route("/v/{article_id}.gif", beacon_gif, methods=["GET"]),
        Route("/v/{article_id}", beacon_post, methods=["POST"]),
        Route("/r/{token}", redirect, methods=["GET"]),
        Route("/livez", livez, methods=["GET", "HEAD"]),
        Route("/feeds/{slug}/archive/{month}.atom", archive, methods=["GET", "HEAD"]),
        Route("/sitemap-news.xml", news_sitemap, methods=["GET", "HEAD"]),
        Route("/opml", opml, methods=["GET", "HEAD"]),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
    ]

