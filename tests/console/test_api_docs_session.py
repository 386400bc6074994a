"""What `/api/openapi.json` says about the console session is how `Access` takes it: the cookie it names is the one
logging in sets, the CSRF header it names is the one a change needs, and `/api/docs` hands its own page the token
that "Try it out" adds (docs.js), so the reference works for a logged-in editor without pasting the admin token.
"""

from __future__ import annotations

import re

from tests.console.conftest import Console

TOKEN = re.compile(r'data-csrf-header="([^"]+)" data-csrf-token="([^"]+)"')


def test_the_declared_session_scheme_is_the_one_access_takes(console: Console) -> None:
    spec = console.base.get("/api/openapi.json").json()
    scheme = spec["components"]["securitySchemes"]["consoleSession"]
    session = console.login("editor")
    cookies = dict(session.client.client.cookies.items())
    assert scheme["in"] == "cookie" and scheme["name"] in cookies  # the cookie logging in set

    page = session.client.get("/api/docs")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"  # a session's token is in it
    header, token = TOKEN.search(page.text).groups()  # type: ignore[union-attr]
    assert token == session.csrf and header in scheme["description"]

    # Only the cookie, as the documented scheme says: reads need nothing more, a change its header as well.
    listed = session.client.get("/api/subscribers", params={"limit": 1})
    assert listed.status_code == 200 and set(listed.json()) == {"items", "next_cursor", "total"}
    body = {"email": "docs@example.org", "confirmed": True, "categories": ["politics"]}
    refused = session.client.post("/api/subscribers", json=body)
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    assert session.client.post("/api/subscribers", json=body, headers={header: token}).status_code == 201


def test_a_page_for_nobody_carries_no_token(console: Console) -> None:
    anonymous = console.client()
    page = anonymous.get("/api/docs")
    assert page.status_code == 200 and "data-csrf" not in page.text and page.headers["cache-control"] == "no-cache"
    forged = console.client()
    forged.client.cookies.set("gazette_session", "forged.value")
    assert "data-csrf" not in forged.get("/api/docs").text
    answer = forged.get("/api/subscribers")
    assert answer.status_code == 401 and answer.headers["content-type"] == "application/problem+json"
