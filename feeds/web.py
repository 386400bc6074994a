"""HTTP for the content side: the feed list, the feeds themselves, OPML and the health check.

Only HTTP lives here (conditional GET, gzip, status codes); what a feed contains is `publish`'s business.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Callable
from xml.sax.saxutils import escape, quoteattr

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .errors import StoreError
from .publish import FeedPublisher, Rendered, feed_url
from .render import FORMATS
from .settings import Settings
from .store import ArticleStore

FORMAT_NAMES = {"rss": "RSS 2.0", "atom": "Atom 1.0", "json": "JSON Feed 1.1"}


def is_fresh(request: Request, rendered: Rendered) -> bool:
    """RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return "*" in tags or rendered.etag in tags
    if_modified_since = request.headers.get("if-modified-since")
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
    for part in request.headers.get("accept-encoding", "").split(","):
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


def routes(settings: Settings, store: ArticleStore, publisher: FeedPublisher, templates: Environment,
           clock: Callable[[], datetime]) -> list[Route]:
    def page(name: str, status: int = 200, **context: object) -> HTMLResponse:
        html = templates.get_template(f"pages/{name}").render(site=settings.site, **context)
        return HTMLResponse(html, status_code=status)

    def feed_links() -> list[dict[str, str]]:
        return [{"slug": info.slug, "title": info.title, "description": info.description,
                 "formats": [{"fmt": fmt, "name": FORMAT_NAMES[fmt], "type": FORMATS[fmt].split(";")[0],
                              "url": feed_url(settings, info.slug, fmt)} for fmt in FORMATS]}
                for info in publisher.feeds()]

    async def index(request: Request) -> Response:
        return page("index.html", feeds=feed_links(), latest=store.articles(limit=10))

    async def feed(request: Request) -> Response:
        slug, fmt = request.path_params["slug"], request.path_params["fmt"]
        rendered = publisher.get(slug, fmt)
        if rendered is None:
            known = ", ".join(info.slug for info in publisher.feeds())
            return page("error.html", status=404, title="404",
                        message=f"'{slug}.{fmt}' 피드는 없습니다. 있는 피드: {known} (형식: rss, atom, json)")
        links = {"hub": list(settings.feeds.hubs), "self": [feed_url(settings, slug, fmt)]} if settings.feeds.hubs else None
        return feed_response(request, rendered, settings.feeds.max_age, links)

    async def archive(request: Request) -> Response:
        slug, month = request.path_params["slug"], request.path_params["month"]
        rendered = publisher.archive(slug, month)
        if rendered is None:
            return page("error.html", status=404, title="404",
                        message=f"'{slug}' 피드에는 {month} 보관 문서가 없습니다. 보관 문서는 지난 달까지, "
                                f"YYYY-MM 형식입니다 (예: /feeds/{slug}/archive/2026-10.atom).")
        # A finished month never changes: caches may keep it for a long time.
        return feed_response(request, rendered, max(settings.feeds.max_age, 86400))

    async def news_sitemap(request: Request) -> Response:
        return feed_response(request, publisher.news_sitemap(), settings.feeds.max_age)

    async def opml(request: Request) -> Response:
        outlines = "\n".join(
            f"    <outline type=\"rss\" text={quoteattr(info['title'])} title={quoteattr(info['title'])} "
            f"xmlUrl={quoteattr(info['formats'][0]['url'])} htmlUrl={quoteattr(settings.site.base_url + '/')}/>"
            for info in feed_links())
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">\n  <head>\n'
                f"    <title>{escape(settings.site.name)}</title>\n  </head>\n  <body>\n{outlines}\n  </body>\n</opml>\n")
        return Response(body.encode("utf-8"), media_type="text/x-opml; charset=utf-8",
                        headers={"Cache-Control": f"public, max-age={settings.feeds.max_age}"})

    async def healthz(request: Request) -> Response:
        try:
            store.ping()
        except StoreError as exc:
            return JSONResponse({"status": "error", "database": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok", "time": clock().isoformat()},
                            headers={"Cache-Control": "no-store"})

    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/feeds/{slug}.{fmt}", feed, methods=["GET", "HEAD"]),
        Route("/feeds/{slug}/archive/{month}.atom", archive, methods=["GET", "HEAD"]),
        Route("/sitemap-news.xml", news_sitemap, methods=["GET", "HEAD"]),
        Route("/opml", opml, methods=["GET", "HEAD"]),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
    ]

