"""The guard in front of every request: bounded headers and bodies, the admin token before any API body is read,
and the security headers of every answer.

`RequestGuard` is ASGI middleware, outermost, so nothing behind it (routing, form and JSON parsers, handlers) ever
sees a request it would refuse:
- request headers over `max_header_bytes` in all: 431 (uvicorn's httptools parser sets no limit of its own);
- a NUL character in the path or query: 400;
- a body declared or streamed over `max_body_bytes`: 413 before any parser runs. A declared length is enough (the
  server ends the body there); a chunked body is read and counted here, then handed on;
- `/api/…` without the admin token or a console session cookie signed with our key: 401 before the body is read
  (FastAPI would parse a JSON body first); whether the session is live, and its role, the routes' `Access` decides;
- every answer carries `X-Content-Type-Options: nosniff`; HTML pages also a Content-Security-Policy without
  scripts (unless the page sets one of its own that allows its own scripts: `/api/docs`), `frame-ancestors 'none'`
  (no framing of the unsubscribe or preferences pages), and `Referrer-Policy: no-referrer`, since many of our URLs
  carry tokens. The console's pages (`/admin`) may frame their own previews and be framed by themselves only
  (`CONSOLE_SECURITY_POLICY`). An embeddable widget's page (`/widgets/…`) that sets its own policy names who may
  frame it there (`frame-ancestors`), so it gets no `X-Frame-Options` (which can only say DENY or SAMEORIGIN).

The admin-token rule itself, the problem documents and the JSON-or-page choice are the HTTP kit's
(`feeds.core.http`): the same ones the routes' error handlers use.
"""

from __future__ import annotations

from html import escape

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.http import (
    ADMIN_REALM,
    SESSION_COOKIE,
    Access,
    Refusal,
    check_admin_token,
    is_json_path,
    problem_body,
    status_title,
)

MAX_HEADER_BYTES = 32 * 1024
MAX_BODY_BYTES = 1024 * 1024
# Readable without the token: the API's description, so that a client can learn how to authenticate, and the
# reference page that shows it, with its assets (`docs.py`).
PUBLIC_API_PATHS = frozenset({"/api/openapi.json", "/api/docs"})
PUBLIC_API_PREFIX = "/api/docs/assets/"
WIDGETS_PREFIX = "/widgets/"
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
                           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_EVERY_ANSWER = [(b"x-content-type-options", b"nosniff")]
_HTML_ANSWER = [*_EVERY_ANSWER, (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer")]
# The console (/admin): no scripts either; it frames its own previews (a digest or an alert, in a sandboxed iframe),
# so it may frame itself and be framed by itself only.
CONSOLE_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
                           "form-action 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'")
_CONSOLE_ANSWER = [*_EVERY_ANSWER, (b"content-security-policy", CONSOLE_SECURITY_POLICY.encode()),
                   (b"x-frame-options", b"SAMEORIGIN"), (b"referrer-policy", b"same-origin")]


class RequestGuard:
    def __init__(self, app: ASGIApp, *, access: Access, max_header_bytes: int = MAX_HEADER_BYTES,
                 max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self._app = app
        self._access = access
        self._max_header_bytes = max_header_bytes
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path: str = scope["path"]
        size, declared, authorization, cookie = 0, None, None, b""
        for name, value in scope["headers"]:  # one pass: this runs for every request
            size += len(name) + len(value)
            if name == b"content-length":
                declared = value
            elif name == b"authorization":
                authorization = value
            elif name == b"cookie":
                cookie = value
        refusal = self._refusal(scope, path, size, authorization, cookie)
        if refusal is None and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            if declared is None:  # chunked: read and count here, hand on what fits
                body, refusal = await self._read_body(receive)
                if refusal is None:
                    receive = _replay(body, receive)
            elif not declared.isdigit():
                refusal = Refusal(400, "Content-Length is not a number")
            elif int(declared) > self._max_body_bytes:  # the server stops a body at its declared length
                refusal = self._too_large()
        if refusal is not None:
            await _answer(send, path, refusal)
            return

        html_answer = _CONSOLE_ANSWER if path == "/admin" or path.startswith("/admin/") else _HTML_ANSWER
        is_embeddable = path.startswith(WIDGETS_PREFIX)

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers")
                if type(headers) is not list:
                    headers = message["headers"] = list(headers or ())
                for name, value in headers:
                    if name == b"content-type":
                        if not value.startswith(b"text/html"):
                            headers += _EVERY_ANSWER
                        elif any(n == b"content-security-policy" for n, _ in headers):
                            # A second policy would forbid what the page's own allows (`/api/docs`' scripts); a
                            # widget's own policy says who may frame it, which X-Frame-Options would forbid.
                            headers += [h for h in html_answer if h[0] != b"content-security-policy"
                                        and not (is_embeddable and h[0] == b"x-frame-options")]
                        else:
                            headers += html_answer
                        break
                else:
                    headers += _EVERY_ANSWER
            await send(message)

        await self._app(scope, receive, secured)

    def _refusal(self, scope: Scope, path: str, size: int, authorization: bytes | None,
                 cookie: bytes) -> Refusal | None:
        if size > self._max_header_bytes:
            return Refusal(431, f"the request's headers are larger than {self._max_header_bytes} bytes")
        if "\x00" in path or b"%00" in scope.get("query_string", b""):
            return Refusal(400, "the URL holds a NUL character")  # no route takes one; PostgreSQL refuses them
        if (path.startswith("/api") and (path == "/api" or path.startswith("/api/")) and path not in PUBLIC_API_PATHS
                and not path.startswith(PUBLIC_API_PREFIX)):
            if authorization is None and self._access.accounts is not None:
                if self._access.secret_of(cookie_parser(cookie.decode("latin-1")).get(SESSION_COOKIE)) is not None:
                    return None  # a session of ours: the route's `Access` checks it is live, its role, its CSRF token
                return Refusal(401, "log in to the console (/admin/login) or send the admin token "
                                    "(Authorization: Bearer <token>)", {"WWW-Authenticate": ADMIN_REALM})
            return check_admin_token(self._access.admin_token,
                                     authorization.decode("latin-1") if authorization is not None else None)
        return None

    def _too_large(self) -> Refusal:
        return Refusal(413, f"the request body is larger than {self._max_body_bytes} bytes")

    async def _read_body(self, receive: Receive) -> tuple[bytes, Refusal | None]:
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", Refusal(400, "the client went away before sending the whole body")
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self._max_body_bytes:
                return b"", self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands over the body read already, then whatever the client does next (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _answer(send: Send, path: str, refusal: Refusal) -> None:
    if is_json_path(path):
        body = problem_body(refusal.status, refusal.message, status_title(refusal.status))
        content_type = b"application/problem+json"
    else:
        title = escape(f"{refusal.status} {status_title(refusal.status)}")  # the guard's messages are English
        body = (f'<!doctype html><html lang="en"><meta charset="utf-8"><title>{title}</title>'
                f"<h1>{title}</h1><p>{escape(refusal.message)}</p></html>").encode("utf-8")
        content_type = b"text/html; charset=utf-8"
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store"), *_EVERY_ANSWER,
               *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in refusal.headers.items())]
    if content_type.startswith(b"text/html"):
        headers += _HTML_ANSWER[len(_EVERY_ANSWER):]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
