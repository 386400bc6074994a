"""The public pages of the content side: the feed list (`/`), feeds and archives, the news sitemap, OPML, the view
beacon (`/v/…`), signed redirects (`/r/…`), `/livez` and `/healthz`.

Each handler parses the request, asks one domain object (`FeedPublisher`, `ViewCounter`, `Clicks`, `opml`) and maps
the answer; conditional GET and gzip are the kit's (`feeds.core.http.representation_response`), errors propagate to
the one error mapping (`feeds.core.http.install_error_handlers`). Handlers that reach the database are plain
methods, which Starlette runs in its thread pool so that the event loop never waits on a query; those served from
memory (feeds, the beacon) are coroutines.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from jinja2 import Environment
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from templates import CATALOGUE

from ..core.http import Representation, representation_response
from ..errors import StoreError, UnknownName
from ..opml import build_opml, feed_links
from ..publish import FeedPublisher, feed_url
from ..readership import TRANSPARENT_GIF, Clicks, Unavailable, ViewCounter
from ..settings import Settings
from ..store import ArticleStore

# What a signed link to a story that is not live shows: killed (410) or held (404).
NOTICES = {410: ("article_withdrawn_title", "article_withdrawn_text"),
           404: ("article_unavailable_title", "article_unavailable_text")}
# A finished month changes only when an editor kills, holds or releases a story in it: caches may keep it an hour.
ARCHIVE_MAX_AGE = 3600


def client_ip(request: Request) -> str:
    # uvicorn's proxy_headers already put X-Forwarded-For from trusted proxies into request.client.
    return request.client.host if request.client else ""


class PublicPages:
    """The handlers, holding what they ask; `routes()` is their route table."""

    def __init__(self, settings: Settings, store: ArticleStore, publisher: FeedPublisher, templates: Environment,
                 clock: Callable[[], datetime], counter: ViewCounter, clicks: Clicks) -> None:
        self._settings = settings
        self._store = store
        self._publisher = publisher
        self._templates = templates
        self._clock = clock
        self._counter = counter
        self._clicks = clicks

    def routes(self) -> list[Route]:
        return [
            Route("/", self.index, methods=["GET", "HEAD"]),
            Route("/feeds/{slug}.{fmt}", self.feed, methods=["GET", "HEAD"]),
            Route("/feeds/{slug}/popular.{fmt}", self.category_popular, methods=["GET", "HEAD"]),
            Route("/v/{article_id}.gif", self.beacon_gif, methods=["GET"]),
            Route("/v/{article_id}", self.beacon_post, methods=["POST"]),
            Route("/r/{token}", self.redirect, methods=["GET"]),
            Route("/livez", self.livez, methods=["GET", "HEAD"]),
            Route("/feeds/{slug}/archive/{month}.atom", self.archive, methods=["GET", "HEAD"]),
            Route("/sitemap-news.xml", self.news_sitemap, methods=["GET", "HEAD"]),
            Route("/opml", self.opml, methods=["GET", "HEAD"]),
            Route("/healthz", self.healthz, methods=["GET", "HEAD"]),
        ]

    def _feed_answer(self, request: Request, rendered: Representation, max_age: int,
                     links: dict[str, list[str]] | None = None) -> Response:
        headers = None
        if links:  # WebSub discovery (W3C WebSub §4): the hubs and the topic URL, also in HTTP
            headers = {"Link": ", ".join(f'<{href}>; rel="{rel}"' for rel, hrefs in links.items() for href in hrefs)}
        return representation_response(request, rendered, f"public, max-age={max_age}", headers)

    def index(self, request: Request) -> Response:
        html = self._templates.get_template("pages/index.html").render(
            site=self._settings.site, feeds=feed_links(self._settings, self._publisher.feeds()),
            latest=self._store.articles(limit=10))
        return HTMLResponse(html)

    async def feed(self, request: Request) -> Response:
        return self._serve_feed(request, request.path_params["slug"], request.path_params["fmt"])

    async def category_popular(self, request: Request) -> Response:
        return self._serve_feed(request, f"{request.path_params['slug']}/popular", request.path_params["fmt"])

    def _serve_feed(self, request: Request, slug: str, fmt: str) -> Response:
        rendered = self._publisher.get(slug, fmt)
        if rendered is None:
            known = ", ".join(info.slug for info in self._publisher.feeds())
            raise UnknownName(CATALOGUE.text(self._settings.site.language, "feed_missing", feed=f"{slug}.{fmt}",
                                             known=known))
        hubs = self._settings.feeds.hubs
        links = {"hub": list(hubs), "self": [feed_url(self._settings, slug, fmt)]} if hubs else None
        return self._feed_answer(request, rendered, self._settings.feeds.max_age, links)

    def archive(self, request: Request) -> Response:
        slug, month = request.path_params["slug"], request.path_params["month"]
        rendered = self._publisher.archive(slug, month)
        if rendered is None:
            raise UnknownName(CATALOGUE.text(self._settings.site.language, "archive_missing", slug=slug, month=month))
        return self._feed_answer(request, rendered, max(self._settings.feeds.max_age, ARCHIVE_MAX_AGE))

    def news_sitemap(self, request: Request) -> Response:
        return self._feed_answer(request, self._publisher.news_sitemap(), self._settings.feeds.max_age)

    async def _count(self, request: Request) -> str:
        args = (request.path_params["article_id"], client_ip(request), request.headers.get("user-agent", ""))
        if self._counter.is_shared:  # a round trip to Redis: off the event loop
            return await run_in_threadpool(self._counter.record, *args)
        return self._counter.record(*args)

    async def beacon_gif(self, request: Request) -> Response:
        if await self._count(request) == "unknown":
            return Response(b"", status_code=404, headers={"Cache-Control": "no-store"})
        return Response(TRANSPARENT_GIF, media_type="image/gif", headers={"Cache-Control": "no-store"})

    async def beacon_post(self, request: Request) -> Response:
        if await self._count(request) == "unknown":
            return JSONResponse({"error": "no such article"}, status_code=404)
        return Response(status_code=204, headers={"Cache-Control": "no-store"})

    def redirect(self, request: Request) -> Response:
        try:
            destination = self._clicks.follow(request.path_params["token"], client_ip(request),
                                              request.headers.get("user-agent", ""))
        except Unavailable as gone:
            language = self._settings.site.language
            title, text = NOTICES[gone.status]
            page = self._templates.get_template("pages/error.html").render(
                site=self._settings.site, title=CATALOGUE.text(language, title), message=CATALOGUE.text(language, text))
            return HTMLResponse(page, status_code=gone.status, headers={"Cache-Control": "no-store"})
        if destination is None:
            raise UnknownName(CATALOGUE.text(self._settings.site.language, "link_invalid"))
        return RedirectResponse(destination, status_code=302, headers={"Cache-Control": "no-store"})

    async def livez(self, request: Request) -> Response:
        return Response(b"ok\n", media_type="text/plain", headers={"Cache-Control": "no-store"})

    def opml(self, request: Request) -> Response:
        site = self._settings.site
        body = build_opml(site.name, site.base_url + "/", feed_links(self._settings, self._publisher.feeds()))
        return Response(body, media_type="text/x-opml; charset=utf-8",
                        headers={"Cache-Control": f"public, max-age={self._settings.feeds.max_age}"})

    def healthz(self, request: Request) -> Response:
        try:
            self._store.ping()
        except StoreError as exc:  # the answer a load balancer reads, not an error page
            return JSONResponse({"status": "error", "database": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok", "time": self._clock().isoformat()},
                            headers={"Cache-Control": "no-store"})
