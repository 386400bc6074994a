"""The HTTP kit both sides' web code stands on: each HTTP rule once.

    admin auth           `check_admin_token` (the rule: bearer token, constant-time compare); `Access`, who a request
                         is (the admin token, an admin; or a console session cookie, with its CSRF header on unsafe
                         methods) and what role it needs (`viewer`, `editor`, `admin` dependencies); `admin_router`
                         (an API router behind it: reading needs a viewer, changing an editor; errors documented)
    errors               `install_error_handlers`: every `GazetteError` (its `.status`), `HTTPException` and
                         `RequestValidationError` answered in one place, as RFC 9457 problem+json under `/api/`,
                         `/partners/` and for `/widgets/….json` (`is_json_path`), as an HTML page elsewhere; `problem_body`, `status_title`
    paging               `Paged` (the `limit` and `cursor` every list takes) and `ListPage` (what it answers), over
                         `feeds.core.paging`
    conditional GET      `is_not_modified` (If-None-Match, else If-Modified-Since -> 304), `accepts_gzip`, and
                         `representation_response`, which applies both to bytes with validators (feeds, archives,
                         partner feeds)

Rate limiting is `feeds.core.limits` (not HTTP: workflows use it too).

It imports nothing of Gazette outside the shared layer: errors are recognised through `feeds.core.errors` by the
`status` every `GazetteError` carries, and a row id's bound is `feeds.core.database.MAX_ID`.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Annotated, Any, Callable, Generic, Mapping, Protocol, TypeVar

from fastapi import APIRouter, Depends, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyCookie, HTTPBearer
from itsdangerous import BadSignature, Signer
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from .accounts import TOKEN_ACTOR, Accounts, Actor, actor_of
from .database import MAX_ID
from .errors import GazetteError, Invalid
from .paging import DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT

log = logging.getLogger(__name__)

# --- admin auth -------------------------------------------------------------------------------------------------

ADMIN_REALM = 'Bearer realm="gazette-admin"'


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused, as an HTTP answer: status, message, extra headers."""

    status: int
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)


def check_admin_token(expected: str | None, authorization: str | None) -> Refusal | None:
    """None when `authorization` carries the admin token (compared in constant time), else the refusal: 403 when no
    token is configured (the admin API is off), 401 with `WWW-Authenticate` for a missing or wrong one."""
    if expected is None:
        return Refusal(403, "the admin API is off for tokens: set [admin] token in the configuration (a console "
                            "session may still use it)")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        return Refusal(401, "missing or wrong admin token (Authorization: Bearer <token>)",
                       {"WWW-Authenticate": ADMIN_REALM})
    return None


_BEARER = HTTPBearer(auto_error=False, scheme_name="adminToken",
                     description="The `[admin] token` of the configuration, as `Authorization: Bearer <token>`.")
SESSION_COOKIE = "gazette_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SESSION = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="consoleSession",
                        description="A console login's session cookie (log in at `/admin/login`). Requests that "
                                    f"change something also send the session's CSRF token as `{CSRF_HEADER}`.")


def acting(request: Request) -> Actor:
    """The actor `Access` found for this request (a handler behind `admin_router` or an `Access` dependency)."""
    return request.state.actor


class Access:
    """Who a request is, and whether its role may do what it asks.

    `Authorization: Bearer <admin token>` is an admin (scripts, as before the console). Otherwise the console's
    session cookie: signed with the site's key (the guard refuses a forged one before any body is read), opening a
    live session (`Accounts.session`), and for unsafe methods carrying the session's CSRF token in `X-CSRF-Token`
    (forms carry it as a field: `newsletter.http.console`). `viewer`, `editor` and `admin` are FastAPI dependencies
    returning the `Actor`; `api` asks for a viewer to read and an editor to change. Their security schemes
    (`adminToken`, `consoleSession`) document both ways in OpenAPI, as alternatives."""

    def __init__(self, admin_token: str | None, accounts: Accounts | None, signing_key: str) -> None:
        self.admin_token = admin_token
        self.accounts = accounts
        self._signer = Signer(signing_key, salt="gazette.console-session")
        self.viewer = self._dependency("viewer")
        self.editor = self._dependency("editor")
        self.admin = self._dependency("admin")
        self.api = self._dependency(None)

    def cookie_value(self, secret: str) -> str:
        return self._signer.sign(secret).decode()

    def secret_of(self, cookie: str | None) -> str | None:
        """The session secret a cookie carries when its signature is ours; None otherwise."""
        if not cookie or len(cookie) > 200:
            return None
        try:
            return self._signer.unsign(cookie).decode()
        except (BadSignature, UnicodeDecodeError):
            return None

    def session_actor(self, cookie: str | None) -> Actor | None:
        secret = self.secret_of(cookie)
        if secret is None or self.accounts is None:
            return None
        session = self.accounts.session(secret)
        return actor_of(session) if session is not None else None

    def authenticate(self, request: Request, role: str | None) -> Actor:
        """The request's actor with at least `role` (None: a viewer to read, an editor to change); else an
        HTTPException (401 no or wrong credentials, 403 the API off, a missing CSRF token or too small a role)."""
        unsafe = request.method not in SAFE_METHODS
        needed = role or ("editor" if unsafe else "viewer")
        authorization = request.headers.get("authorization")
        if authorization is not None or self.accounts is None:
            refusal = check_admin_token(self.admin_token, authorization)
            if refusal is not None:
                raise HTTPException(refusal.status, refusal.message, headers=dict(refusal.headers) or None)
            return TOKEN_ACTOR
        actor = self.session_actor(request.cookies.get(SESSION_COOKIE))
        if actor is None:
            raise HTTPException(401, "log in to the console (/admin/login) or send the admin token "
                                     "(Authorization: Bearer <token>)", headers={"WWW-Authenticate": ADMIN_REALM})
        if unsafe and not hmac.compare_digest((request.headers.get(CSRF_HEADER) or "").encode(),
                                              (actor.csrf or "").encode()):
            raise HTTPException(403, f"a change made with a console session needs its CSRF token in {CSRF_HEADER}")
        if not actor.can(needed):
            raise HTTPException(403, f"this needs the {needed} role; {actor.email} is {actor.role}")
        return actor

    def _dependency(self, role: str | None) -> Callable[..., Actor]:
        def dependency(request: Request, _token: Annotated[Any, Depends(_BEARER)] = None,
                       _session: Annotated[Any, Depends(_SESSION)] = None) -> Actor:
            request.state.actor = actor = self.authenticate(request, role)
            return actor
        dependency.__name__ = f"needs_{role or 'api'}"
        return dependency


# RFC 9457 problem details, as every error of the API answers; `error` repeats `detail` for older clients.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "error": {"type": "string"},
                   "errors": {"type": "array", "items": {"type": "object"}}}}
_MEANINGS = {400: "The request is not acceptable, e.g. a NUL character in the URL (the detail says why)",
             401: "No admin token or console session, or a wrong one",
             403: "Not allowed: the session's role is too small, a change lacks its CSRF token, or the admin API is "
                  "off ([admin] token is not set)",
             404: "No such thing", 409: "Conflicts with what is stored", 413: "The body is larger than 1 MiB",
             422: "A parameter or the body is not valid", 429: "Too many requests; Retry-After says when to try again",
             431: "The request's headers are too large", 502: "A server we depend on (the mail relay) refused"}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses."""
    return {status: {"description": _MEANINGS[status],
                     "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}}} for status in statuses}


# What any admin route may answer besides its own errors.
COMMON_PROBLEMS = problems(400, 401, 403, 413, 422, 431)
# A stored row's id in a path: larger numbers are refused by validation (422), never passed to the database.
RowId = Annotated[int, Path(ge=0, le=MAX_ID)]


def admin_router(access: Access, prefix: str, tag: str) -> APIRouter:
    """A router of admin routes: the caller authenticated (a viewer reads, an editor changes; a route adds
    `Depends(access.admin)` for more), the common error answers documented."""
    return APIRouter(prefix=prefix, dependencies=[Depends(access.api)], tags=[tag], responses=COMMON_PROBLEMS)


# --- errors -----------------------------------------------------------------------------------------------------

def is_json_path(path: str) -> bool:
    """Errors under these paths are JSON (RFC 9457 problem details), and those of a widget's data (`/widgets/….json`);
    elsewhere they are pages."""
    return path.startswith(("/api/", "/partners/")) or path == "/api" or (path.startswith("/widgets/")
                                                                           and path.endswith(".json"))


def status_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(status: int, message: str, title: str, **extra: Any) -> bytes:
    """An RFC 9457 problem document; `error` repeats the detail for clients written before problem details."""
    return json.dumps({"type": "about:blank", "title": title, "status": status, "detail": message, "error": message,
                       **extra}, ensure_ascii=False).encode("utf-8")


PageRenderer = Callable[[int, str], str]
"""(status, message) -> the HTML of an error page in the site's look."""


def error_headers(exc: GazetteError) -> dict[str, str]:
    """The headers an error asks for: its `headers` (a redirect's `Location`), and `Retry-After` when it carries
    `retry_after` seconds (a rate limit)."""
    retry_after = getattr(exc, "retry_after", None)
    headers = dict(getattr(exc, "headers", None) or {})
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return headers


class ErrorAnswers:
    """Turns errors into answers: problem+json where `is_json_path`, else the page `render_page` makes."""

    def __init__(self, render_page: PageRenderer) -> None:
        self._render_page = render_page

    def answer(self, request: Request, status: int, message: str, headers: Mapping[str, str] | None = None,
               **extra: Any) -> Response:
        if is_json_path(request.url.path):
            return Response(problem_body(status, message, status_title(status), **extra), status_code=status,
                            headers=headers, media_type="application/problem+json")
        return HTMLResponse(self._render_page(status, message), status_code=status, headers=headers)

    async def gazette_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GazetteError)
        status = exc.status
        if status == 500:  # a bug or a broken deployment, not the client's doing: its text stays in the log
            log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
            return self.answer(request, 500, status_title(500))
        return self.answer(request, status, str(exc), error_headers(exc) or None)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return self.answer(request, exc.status_code, str(exc.detail), exc.headers)

    async def validation_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        found = [{"where": ".".join(str(part) for part in e.get("loc", ())), "problem": str(e.get("msg", ""))}
                 for e in exc.errors()]
        message = "; ".join(f"{p['where']}: {p['problem']}" for p in found) or "the request is not valid"
        return self.answer(request, 422, message, errors=found)


def install_error_handlers(app: Starlette, render_page: PageRenderer) -> ErrorAnswers:
    """Answer every `GazetteError` with its `.status` and message (a 500 with a generic text, the error logged),
    every `HTTPException` with its status, detail and headers, and every `RequestValidationError` with 422 and the
    list of problems; JSON under `/api/` and `/partners/`, pages elsewhere. Routes let domain errors propagate."""
    answers = ErrorAnswers(render_page)
    app.add_exception_handler(GazetteError, answers.gazette_error)
    app.add_exception_handler(HTTPException, answers.http_error)
    app.add_exception_handler(RequestValidationError, answers.validation_error)
    return answers


# --- conditional GET and gzip -----------------------------------------------------------------------------------

def is_not_modified(if_none_match: str | None, if_modified_since: str | None, *, etag: str,
                    last_modified: datetime) -> bool:
    """Whether a GET or HEAD with these request headers gets 304 for a representation with these validators.

    RFC 9110 §13.1: If-None-Match, when present, decides alone (weak comparison: `W/` ignored; `*` matches); else
    If-Modified-Since, when it is a valid HTTP date, matches a representation not changed since (at the
    second, as HTTP dates go). A date without a zone or one that does not parse is ignored (200)."""
    if if_none_match is not None:
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return "*" in tags or etag.removeprefix("W/") in tags
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            return False
        return last_modified.replace(microsecond=0) <= since
    return False


def _qvalue(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0  # a q-value that does not parse accepts nothing rather than everything
            return q if 0 <= q <= 1 else 0.0
    return 1.0


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether to send gzip for this `Accept-Encoding` (RFC 9110 §12.5.3).

    gzip (or its alias x-gzip) named with q > 0, else `*` with q > 0, makes gzip acceptable; no header, or neither
    named, does not (the bytes go as they are). gzip then goes unless `identity` is named with a higher q-value:
    the client's preference wins. When `identity;q=0` refuses plain bytes, gzip is all we can offer, so it goes
    unless it is refused too."""
    if not accept_encoding:
        return False
    q: dict[str, float] = {}
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        if name == "x-gzip":
            name = "gzip"
        if name:
            q.setdefault(name, _qvalue(params))
    gzip_q = q.get("gzip", q.get("*"))
    identity_q = q.get("identity")
    if gzip_q is None:
        return identity_q == 0
    return gzip_q > 0 and (identity_q is None or gzip_q >= identity_q)


class Representation(Protocol):
    """Bytes with their validators, as a feed or an archive is rendered once and served many times."""

    @property
    def body(self) -> bytes: ...
    @property
    def gzipped(self) -> bytes: ...
    @property
    def etag(self) -> str: ...
    @property
    def last_modified(self) -> datetime: ...
    @property
    def last_modified_http(self) -> str: ...
    @property
    def content_type(self) -> str: ...


def representation_response(request: Request, rendered: Representation, cache_control: str,
                            headers: Mapping[str, str] | None = None) -> Response:
    """The answer for `rendered`: 304 with its validators (no body) when the request's are fresh, else 200 with
    the bytes, gzipped when asked; for HEAD the headers of the 200 without the body. Always `ETag`,
    `Last-Modified`, `Cache-Control` and `Vary: Accept-Encoding`, plus `headers`."""
    answer = {"ETag": rendered.etag, "Last-Modified": rendered.last_modified_http, "Cache-Control": cache_control,
              "Vary": "Accept-Encoding", **(headers or {})}
    if is_not_modified(request.headers.get("if-none-match"), request.headers.get("if-modified-since"),
                       etag=rendered.etag, last_modified=rendered.last_modified):
        return Response(status_code=304, headers=answer)
    body = rendered.body
    if accepts_gzip(request.headers.get("accept-encoding")):
        body = rendered.gzipped
        answer["Content-Encoding"] = "gzip"
    answer["Content-Length"] = str(len(body))
    if request.method == "HEAD":
        return Response(status_code=200, headers=answer, media_type=rendered.content_type)
    return Response(body, headers=answer, media_type=rendered.content_type)


# --- paging -----------------------------------------------------------------------------------------------------

Item = TypeVar("Item")


class ListPage(BaseModel, Generic[Item]):
    """What every list of the API answers: a page of items and the cursor of the next (`feeds.core.paging`)."""

    items: list[Item]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: this is the last page")


@dataclass(frozen=True)
class PageQuery:
    limit: int
    cursor: str | None


def page_query(request: Request,
               limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = DEFAULT_LIMIT,
               cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH, description=(
                   "the `next_cursor` of the page before; none for the first page"))] = None) -> PageQuery:
    # `offset` paged these lists before: ignored, a client walking by offset would get the first page forever.
    if "offset" in request.query_params:
        raise Invalid("offset: lists page with cursors; follow each page's next_cursor (see /api/docs)")
    return PageQuery(limit, cursor)


Paged = Annotated[PageQuery, Depends(page_query)]
