"""`/api/docs`: the admin API's interactive reference (Swagger UI), served whole from the installed packages, so
nothing loads from the network when a browser opens it; `/docs` redirects there.

Swagger UI's files are those the `fastapi-swagger` wheel carries (swagger-ui-dist as released, byte for byte; the
version is pinned and named in pyproject.toml, and a test reads it out of the bundle). `docs.js`, beside this
module, starts it: the page holds no inline script or style, so its own Content-Security-Policy (in place of the
site's "no scripts") allows scripts, styles and requests from this origin alone.

Assets are named by a hash of their bytes and cached for a year (`immutable`): a new release is a new name. They go
through the kit's one conditional GET (`representation_response`): ETag, 304, gzip. The page and its assets are
readable without the admin token (`guard.PUBLIC_API_PATHS`, `PUBLIC_API_PREFIX`): they hold nothing but what
`/api/openapi.json` says.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape
from importlib import resources
from pathlib import Path
from typing import Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..core.http import CSRF_HEADER, SESSION_COOKIE, Access, representation_response
from ..errors import UnknownName

DOCS_PATH = "/api/docs"
ASSETS_PATH = "/api/docs/assets"
OPENAPI_PATH = "/api/openapi.json"
ASSET_CACHE = "public, max-age=31536000, immutable"
# What /api/openapi.json says of the whole API (its `info.description`, the top of /api/docs); docs/api.md says more.
API_DESCRIPTION = """\
Gazette's admin API. The same rules hold for every operation:

- **Access**: the admin token (`Authorization: Bearer <[admin] token>`, an admin), or the session cookie of a
  console login (`gazette_session`; reads need a viewer, changes an editor, changes to partners and their keys an
  admin). A change made with a session also sends the session's CSRF token as `X-CSRF-Token` (this page does it
  for you when you are logged in to the console).
- **Lists** answer `{"items": [...], "next_cursor": "..."}`: pass `next_cursor` back as `cursor` for the next page
  until it is `null`. `limit` is 1 to 500 (50 by default). A cursor is opaque: pass it back as it is; one that was
  changed answers 422. Rankings (`/api/popular`) are one page, `next_cursor` always null.
- **Errors**, every one (unknown paths and methods, validation, access included), are RFC 9457 problem details
  (`application/problem+json`): `type`, `title`, `status`, `detail`; validation errors also list `errors`.
"""
# Everything from this origin only, nothing inline: Swagger UI sets its few element styles through the DOM, which a
# policy does not restrict (tests/console/test_api_docs_browser.py opens operations and schemas: no violation).
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; "
                           "base-uri 'none'")


@dataclass(frozen=True)
class Asset:
    """One file as served: its bytes once plain and once gzipped, named by their hash (a `Representation`)."""

    name: str
    body: bytes
    gzipped: bytes
    content_type: str
    last_modified: datetime

    @property
    def etag(self) -> str:
        return '"' + self.name.rsplit(".", 2)[-2] + '"'

    @property
    def last_modified_http(self) -> str:
        return format_datetime(self.last_modified.replace(microsecond=0), usegmt=True)


def make_asset(stem: str, suffix: str, body: bytes, content_type: str, last_modified: datetime) -> Asset:
    digest = hashlib.sha256(body).hexdigest()[:16]
    return Asset(f"{stem}.{digest}{suffix}", body, gzip.compress(body, mtime=0), content_type, last_modified)


def swagger_ui_files() -> dict[str, Path]:
    """Swagger UI's files as installed (the bundle, its style sheet, its icon), with ours."""
    shipped = resources.files("fastapi_swagger") / "resources"
    return {"swagger-ui-bundle.js": Path(str(shipped / "swagger-ui-bundle.js")),
            "swagger-ui.css": Path(str(shipped / "swagger-ui.css")),
            "favicon.png": Path(str(shipped / "favicon-32x32.png")),
            "docs.js": Path(__file__).with_name("docs.js")}


_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png"}


def load_assets(files: dict[str, Path]) -> dict[str, Asset]:
    """Each file read once, by its plain name ("docs.js")."""
    assets = {}
    for plain, path in files.items():
        stem, dot, suffix = plain.rpartition(".")
        modified = datetime.fromtimestamp(int(path.stat().st_mtime), UTC)
        assets[plain] = make_asset(stem, dot + suffix, path.read_bytes(), _TYPES[dot + suffix], modified)
    return assets


class DocsPages:
    """`/api/docs`, its assets and the `/docs` redirect; assets are read on the first request, not at start.

    For a browser logged in to the console, the page carries its session's CSRF token, which `docs.js` adds to
    the changes "Try it out" sends (`Access` asks for it, in `X-CSRF-Token`, beside the session cookie)."""

    def __init__(self, title: str, access: Access | None = None,
                 files: Callable[[], dict[str, Path]] = swagger_ui_files) -> None:
        self._title = title
        self._access = access
        self._files = files
        self._assets: dict[str, Asset] | None = None
        self._by_name: dict[str, Asset] = {}

    def routes(self) -> list[Route]:
        return [Route(DOCS_PATH, self.page, methods=["GET", "HEAD"]),
                Route(ASSETS_PATH + "/{name}", self.asset, methods=["GET", "HEAD"]),
                Route("/docs", self.redirect, methods=["GET", "HEAD"])]

    def assets(self) -> dict[str, Asset]:
        if self._assets is None:
            self._assets = load_assets(self._files())
            self._by_name = {a.name: a for a in self._assets.values()}
        return self._assets

    def page(self, request: Request) -> Response:
        assets = self.assets()
        root = request.scope.get("root_path", "")

        def href(plain: str) -> str:
            return escape(f"{root}{ASSETS_PATH}/{assets[plain].name}")

        actor = self._access.session_actor(request.cookies.get(SESSION_COOKIE)) if self._access is not None else None
        csrf = actor.csrf if actor is not None else None
        csrf_attrs = f' data-csrf-header="{escape(CSRF_HEADER)}" data-csrf-token="{escape(csrf)}"' if csrf else ""
        html = (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
                f"<title>{escape(self._title)}</title>\n"
                f'<link rel="stylesheet" href="{href("swagger-ui.css")}">\n'
                f'<link rel="icon" type="image/png" href="{href("favicon.png")}">\n</head>\n<body>\n'
                f'<main id="swagger-ui" data-openapi-url="{escape(root + OPENAPI_PATH)}"{csrf_attrs}></main>\n'
                f'<script src="{href("swagger-ui-bundle.js")}"></script>\n'
                f'<script src="{href("docs.js")}"></script>\n</body>\n</html>\n')
        # With a session's token in it, no cache may keep the page.
        return HTMLResponse(html, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Vary": "Cookie",
                                           "Cache-Control": "no-store" if csrf else "no-cache"})

    def asset(self, request: Request) -> Response:
        self.assets()
        found = self._by_name.get(request.path_params["name"])
        if found is None:  # an old name after an upgrade, or a made-up one
            raise UnknownName(f"no asset {request.path_params['name']!r}; reload {DOCS_PATH}")
        return representation_response(request, found, ASSET_CACHE)

    async def redirect(self, request: Request) -> Response:
        return RedirectResponse(request.scope.get("root_path", "") + DOCS_PATH, status_code=307)
