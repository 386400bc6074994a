"""The one part of `/api/` readable without credentials, the reference (`/api/docs` and its assets), opens nothing
else: paths that climb out of the assets' folder reach no data, an asset is only ever one of the four files the
page names, and a hostile site name stays text in the page.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.security.conftest import Gazette


def raw_get(app: Any, path: str, raw_path: bytes | None = None) -> tuple[int, bytes]:
    """A GET as the server hands it to the app, dot segments and all (an HTTP client would normalise them)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "https",
             "path": path, "raw_path": raw_path or path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"news.example.com")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 443)}
    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


@pytest.mark.parametrize(("path", "raw"), [
    ("/api/docs/assets/../../api/subscribers", None),
    ("/api/docs/assets/../subscribers", b"/api/docs/assets/%2e%2e/subscribers"),
    ("/api/docs/assets/..%2f..%2fsubscribers", None),
    ("/api/docs/assets//api/subscribers", None),
    ("/api/docs/assets/x/../../../subscribers", None),
    ("/api/docs/assets/../../../pyproject.toml", None),
    ("/api/docs/../subscribers", None),
    ("/api/docs/assets/", None),
])
def test_climbing_out_of_the_assets_reaches_nothing(gazette: Gazette, path: str, raw: bytes | None) -> None:
    gazette.services.subscribers.add("secret@example.com", categories=["politics"], editions=["daily"],
                                     now=gazette.clock(), confirmed=True, method="admin")
    status, body = raw_get(gazette.client._app, path, raw)
    assert status in (401, 404), (status, body[:200])
    assert b"secret@example.com" not in body and b"[project]" not in body


@pytest.mark.parametrize("name", [
    "swagger-ui-bundle.js",  # the plain name: only the hashed one is served
    "docs.js", "favicon-32x32.png", "__init__.py", "main.py", "RECORD", "docs.py",
    "swagger-ui-bundle.0000000000000000.js", "%00", "x" * 5000,
])
def test_only_the_named_assets_are_served(gazette: Gazette, name: str) -> None:
    answer = gazette.client.get(f"/api/docs/assets/{name}")
    assert answer.status_code in (400, 404, 431) and answer.headers["content-type"] == "application/problem+json"


def test_a_hostile_site_name_stays_text(gazette: Gazette) -> None:
    from feeds.http.docs import DocsPages

    hostile = DocsPages('</title><script>alert(1)</script>"><img src=x onerror=alert(2)>')
    [page_route] = [r for r in hostile.routes() if r.path == "/api/docs"]

    class FakeRequest:
        scope = {"root_path": '"><script>alert(3)</script>'}
        cookies: dict[str, str] = {}

    html = page_route.endpoint(FakeRequest()).body.decode()  # type: ignore[arg-type]
    assert "<script>alert" not in html and "<img" not in html and "&lt;/title&gt;&lt;script&gt;" in html
    assert html.count("<script") == 2  # the bundle and docs.js, nothing else
