"""`/widgets/most-viewed` (the box as a page, for an iframe), `.json` (its data, for the script) and `.js` (the
script): thin handlers over `feeds.widgets.MostViewedBoard`.

A fresh ranking is answered from memory on the event loop; a stale one is computed in the thread pool. Conditional
GET and gzip are the kit's (`representation_response`); a bad parameter is the domain's `Invalid` (422), answered
as problem+json for the `.json` path (`feeds.core.http.is_json_path`; with the CORS headers, so that an allowed
page's script can read why) and as a page elsewhere.

Cross-origin rules, from `[widgets] origins`: the JSON carries `Access-Control-Allow-Origin` naming the request's
`Origin` only when that exact origin is configured (never `*`, never credentials), with `Vary: Origin`; a preflight
from any other origin is refused. The page may be framed by the site itself and the configured origins
(`frame-ancestors`; the guard then sends no `X-Frame-Options`), and runs no script.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from templates import CATALOGUE

from ..core.errors import GazetteError
from ..core.http import representation_response
from ..errors import OriginRefused
from ..settings import Settings
from ..widgets import MostViewedBoard, WidgetQuery, read_query

SCRIPT_MAX_AGE = 3600  # the script changes with a release, not with the news
PREFLIGHT_MAX_AGE = 86400


class WidgetRoutes:
    def __init__(self, settings: Settings, board: MostViewedBoard) -> None:
        self._settings = settings
        self._board = board
        self._origins = frozenset(settings.widgets.origins)
        ancestors = " ".join(("'self'", *settings.widgets.origins))
        self._page_policy = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
                             f"form-action 'none'; base-uri 'none'; frame-ancestors {ancestors}")
        self._cache_control = f"public, max-age={settings.widgets.max_age}"

    def routes(self) -> list[Route]:
        return [
            Route("/widgets/most-viewed", self.fragment, methods=["GET", "HEAD"]),
            Route("/widgets/most-viewed.json", self.data, methods=["GET", "HEAD"]),
            Route("/widgets/most-viewed.json", self.preflight, methods=["OPTIONS"]),
            Route("/widgets/most-viewed.js", self.script, methods=["GET", "HEAD"]),
        ]

    async def _answer(self, request: Request, fmt: str, headers: dict[str, str]) -> Response:
        query: WidgetQuery = read_query(request.query_params, self._settings)
        rendered = self._board.cached(query, fmt) or await run_in_threadpool(self._board.get, query, fmt)
        return representation_response(request, rendered, self._cache_control, headers)

    async def fragment(self, request: Request) -> Response:
        return await self._answer(request, "html", {"Content-Security-Policy": self._page_policy})

    async def data(self, request: Request) -> Response:
        headers = {"Vary": "Accept-Encoding, Origin"}
        origin = request.headers.get("origin")
        if origin is not None and origin in self._origins:
            headers["Access-Control-Allow-Origin"] = origin
        try:
            return await self._answer(request, "json", headers)
        except GazetteError as exc:  # the one mapping answers; an allowed page's script may read why
            exc.headers = {**(getattr(exc, "headers", None) or {}), **headers}
            raise

    async def preflight(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        language = self._settings.site.language
        if origin is None or origin not in self._origins:
            raise OriginRefused(CATALOGUE.text(language, "widget_origin_refused", origin=(origin or "-")[:100]))
        if request.headers.get("access-control-request-method", "GET") not in ("GET", "HEAD"):
            raise OriginRefused(CATALOGUE.text(language, "widget_method_refused"))
        return Response(status_code=204, headers={
            "Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": "GET, HEAD",
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE), "Vary": "Origin", "Cache-Control": "no-store"})

    async def script(self, request: Request) -> Response:
        return representation_response(request, self._board.script, f"public, max-age={SCRIPT_MAX_AGE}")
