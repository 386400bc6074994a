"""`FeedFastPath`: the ASGI fast path that answers GET and HEAD of built public feeds straight from memory."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from ..core.http import accepts_gzip, is_not_modified
from ..publish import FeedPublisher, Rendered, feed_url
from ..settings import Settings
from .guard import MAX_HEADER_BYTES

FEED_PATH = re.compile(r"^/feeds/([a-z0-9][a-z0-9-]*(?:/popular)?)\.(rss|atom|json)$")


class FeedFastPath:
    """ASGI middleware that answers GET and HEAD of built public feeds straight from memory.

    Feeds are the hot path (readers' apps poll them, mostly with validators): answering here skips the
    framework's routing and middleware, whose cost per request is several times that of the answer; it sits even
    in front of the request guard, whose rules it keeps for what it answers (a header cap, nosniff) and to which it
    leaves everything else. The behaviour is the `feed` route's (the same conditional-GET and gzip rules of
    `feeds.core.http`), which still answers anything this does not (a feed not built yet, errors).
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
        if is_not_modified(none_match.decode("latin-1") if none_match is not None else None,
                           modified_since.decode("latin-1") if modified_since else None,
                           etag=rendered.etag, last_modified=rendered.last_modified):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body = rendered.body
        if accepts_gzip(request_headers.get(b"accept-encoding", b"").decode("latin-1")):
            body = rendered.gzipped
            headers.append((b"content-encoding", b"gzip"))
        headers += [(b"content-type", rendered.content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
