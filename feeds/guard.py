"""The guard in front of every request: bounded headers and bodies, the admin token before any API body is read,
and the security headers of every answer.

`RequestGuard` is ASGI middleware, outermost, so nothing behind it (routing, form and JSON parsers, handlers) ever
sees a request it would refuse:
- request headers over `max_header_bytes` in all: 431 (uvicorn's httptools parser sets no limit of its own);
- a NUL character in the path or query: 400;
- a body declared or streamed over `max_body_bytes`: 413 before any parser runs. A declared length is enough (the
  server ends the body there); a chunked body is read and counted here, then handed on;
- `/api/…` without the admin token: 401 before the body is read (FastAPI would parse a JSON body first);
- every answer carries `X-Content-Type-Options: nosniff`; HTML pages also a Content-Security-Policy without
  scripts, `frame-ancestors 'none'` (no framing of the unsubscribe or preferences pages), and `Referrer-Policy:
  no-referrer`, since many of our URLs carry tokens.

`check_admin_token` is the one admin-token rule, used here, by the API's dependency and by /metrics.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from html import escape
from http import HTTPStatus
from typing import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_HEADER_BYTES = 32 * 1024
MAX_BODY_BYTES = 1024 * 1024
ADMIN_REALM = 'Bearer realm="gazette-admin"'
# Readable without the token: the API's description, so that a client can learn how to authenticate.
PUBLIC_API_PATHS = frozenset({"/api/openapi.json", "/api/docs"})
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
                           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_EVERY_ANSWER = [(b"x-content-type-options", b"nosniff")]
_HTML_ANSWER = [*_EVERY_ANSWER, (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer")]


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused, as an HTTP answer: status, message, extra headers."""

    status: int
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)


def check_admin_token(expected: str | None, authorization: str | None) -> Refusal | None:
    """None when `authorization` carries the admin token (compared in constant time), else the refusal."""
    if expected is None:
        return Refusal(403, "the admin API is off: set [admin] token in the configuration")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        return Refusal(401, "missing or wrong admin token (Authorization: Bearer <token>)",
                       {"WWW-Authenticate": ADMIN_REALM})
    return None


def is_json_path(path: str) -> bool:
    """Errors under these paths are JSON (RFC 9457 problem details); elsewhere they are pages."""
    return path.startswith(("/api/", "/partners/")) or path == "/api"


def problem_body(status: int, message: str, title: str) -> bytes:
    """An RFC 9457 problem document; `error` repeats the detail for clients written before problem details."""
    return json.dumps({"type": "about:blank", "title": title, "status": status, "detail": message, "error": message},
                      ensure_ascii=False).encode("utf-8")


def status_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class RequestGuard:
    def __init__(self, app: ASGIApp, *, admin_token: str | None, max_header_bytes: int = MAX_HEADER_BYTES,
                 max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self._app = app
        self._admin_token = admin_token
        self._max_header_bytes = max_header_bytes
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path: str = scope["path"]
        size, declared, authorization = 0, None, b""
        for name, value in scope["headers"]:  # one pass: this runs for every request
            size += len(name) + len(value)
            if name == b"content-length":
                declared = value
            elif name == b"authorization":
                authorization = value
        refusal = self._refusal(scope, path, size, authorization)
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

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers")
                if type(headers) is not list:
                    headers = message["headers"] = list(headers or ())
                for name, value in headers:
                    if name == b"content-type":
                        headers += _HTML_ANSWER if value.startswith(b"text/html") else _EVERY_ANSWER
                        break
                else:
                    headers += _EVERY_ANSWER
            await send(message)

        await self._app(scope, receive, secured)

    def _refusal(self, scope: Scope, path: str, size: int, authorization: bytes) -> Refusal | None:
        if size > self._max_header_bytes:
            return Refusal(431, f"the request's headers are larger than {self._max_header_bytes} bytes")
        if "\x00" in path or b"%00" in scope.get("query_string", b""):
            return Refusal(400, "the URL holds a NUL character")  # no route takes one; PostgreSQL refuses them
        if path.startswith("/api") and (path == "/api" or path.startswith("/api/")) and path not in PUBLIC_API_PATHS:
            return check_admin_token(self._admin_token, authorization.decode("latin-1"))
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
        title = escape(f"{refusal.status} {status_title(refusal.status)}")
        body = (f'<!doctype html><html lang="ko"><meta charset="utf-8"><title>{title}</title>'
                f"<h1>{title}</h1><p>{escape(refusal.message)}</p></html>").encode("utf-8")
        content_type = b"text/html; charset=utf-8"
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store"), *_EVERY_ANSWER,
               *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in refusal.headers.items())]
    if content_type.startswith(b"text/html"):
        headers += _HTML_ANSWER[len(_EVERY_ANSWER):]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
