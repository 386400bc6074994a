"""The HTTP kit (`feeds.core.http`) on its own: admin auth, conditional GET, gzip negotiation, the rate limiter and
the one error mapping, each against a tiny app in-process (no database, no server)."""

from __future__ import annotations

import gzip
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from fastapi import FastAPI, Query
from starlette.requests import Request
from starlette.responses import Response

from feeds.core import http as kit
from feeds.core.errors import GazetteError
from feeds.core.http import (
    Access,
    accepts_gzip,
    admin_router,
    check_admin_token,
    install_error_handlers,
    is_not_modified,
    representation_response,
)
from feeds.core.limits import RateLimiter
from tests.conftest import Clock, InProcessClient

TOKEN = "admin-token-0123456789"


# --- admin auth -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("expected, authorization, status", [
    pytest.param(TOKEN, None, 401, id="missing"),
    pytest.param(TOKEN, "", 401, id="empty"),
    pytest.param(TOKEN, "Bearer nope", 401, id="wrong"),
    pytest.param(TOKEN, f"Basic {TOKEN}", 401, id="not-bearer"),
    pytest.param(TOKEN, f"Bearer {TOKEN}x", 401, id="longer"),
    pytest.param(TOKEN, f"Bearer {TOKEN}", None, id="right"),
    pytest.param(TOKEN, f"bearer  {TOKEN} ", None, id="scheme-case-and-spaces"),
    pytest.param(None, f"Bearer {TOKEN}", 403, id="api-off"),
])
def test_check_admin_token(expected: str | None, authorization: str | None, status: int | None) -> None:
    refusal = check_admin_token(expected, authorization)
    assert (refusal.status if refusal else None) == status
    if status == 401:
        assert refusal is not None and refusal.headers == {"WWW-Authenticate": 'Bearer realm="gazette-admin"'}


def test_admin_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    compare_digest = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(kit.hmac, "compare_digest", spy)
    assert check_admin_token(TOKEN, "Bearer guess") is not None
    assert check_admin_token(TOKEN, f"Bearer {TOKEN}") is None
    assert compared == [(b"guess", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


def api_app(token: str | None) -> FastAPI:
    app = FastAPI()
    api = admin_router(Access(token, None, "signing-key-0123456789"), "/api/things", "things")

    def things(limit: int = Query(10, ge=1, le=5)) -> list[int]:
        return list(range(limit))

    api.add_api_route("", things, methods=["GET"])
    app.include_router(api)
    install_error_handlers(app, lambda status, message: f"<p>{status}: {message}</p>")
    return app


def test_admin_router_answers_401_403_and_lets_the_right_token_in() -> None:
    with InProcessClient(api_app(TOKEN)) as client:
        missing = client.get("/api/things?limit=2")
        wrong = client.get("/api/things?limit=2", headers={"Authorization": "Bearer nope"})
        right = client.get("/api/things?limit=2", headers={"Authorization": f"Bearer {TOKEN}"})
    assert missing.status_code == wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == 'Bearer realm="gazette-admin"'
    assert wrong.headers["content-type"] == "application/problem+json"
    assert right.status_code == 200 and right.json() == [0, 1]
    with InProcessClient(api_app(None)) as client:
        off = client.get("/api/things", headers={"Authorization": f"Bearer {TOKEN}"})
    assert off.status_code == 403 and "admin API is off" in off.json()["detail"]


# --- conditional GET --------------------------------------------------------------------------------------------

MODIFIED = datetime(2026, 11, 24, 23, 30, 0, 500_000, tzinfo=timezone.utc)  # microseconds: HTTP dates have none
HTTP_DATE = format_datetime(MODIFIED.replace(microsecond=0), usegmt=True)
EARLIER = format_datetime(MODIFIED - timedelta(days=1), usegmt=True)
LATER = format_datetime(MODIFIED + timedelta(days=1), usegmt=True)
ETAG = '"abc123"'


@pytest.mark.parametrize("if_none_match, if_modified_since, expected", [
    pytest.param(None, None, False, id="no-validators"),
    pytest.param(ETAG, None, True, id="etag-matches"),
    pytest.param('"other"', None, False, id="etag-differs"),
    pytest.param(f'"other", {ETAG}', None, True, id="etag-in-list"),
    pytest.param(f"W/{ETAG}", None, True, id="weak-etag-matches"),
    pytest.param("*", None, True, id="star"),
    pytest.param(None, HTTP_DATE, True, id="same-second"),
    pytest.param(None, LATER, True, id="since-later"),
    pytest.param(None, EARLIER, False, id="since-earlier"),
    pytest.param(None, "garbage", False, id="bad-date"),
    pytest.param(None, "Tue, 24 Nov 2026 23:30:00", False, id="date-without-zone"),
    pytest.param(None, "", False, id="empty-date"),
    pytest.param('"other"', HTTP_DATE, False, id="if-none-match-wins-over-a-matching-date"),
    pytest.param(ETAG, EARLIER, True, id="if-none-match-wins-over-an-old-date"),
])
def test_is_not_modified(if_none_match: str | None, if_modified_since: str | None, expected: bool) -> None:
    assert is_not_modified(if_none_match, if_modified_since, etag=ETAG, last_modified=MODIFIED) is expected


@dataclass(frozen=True)
class Bytes:
    body: bytes = b"<feed/>" * 50
    gzipped: bytes = gzip.compress(b"<feed/>" * 50, mtime=0)
    etag: str = ETAG
    last_modified: datetime = MODIFIED
    last_modified_http: str = HTTP_DATE
    content_type: str = "application/atom+xml; charset=utf-8"


def feed_app() -> FastAPI:
    app = FastAPI()

    async def feed(request: Request) -> Response:
        return representation_response(request, Bytes(), "public, max-age=300", {"Link": '<x>; rel="self"'})

    app.add_route("/feed", feed, methods=["GET", "HEAD"])
    return app


def test_representation_response_304_gzip_and_head() -> None:
    with InProcessClient(feed_app()) as client:
        plain = client.get("/feed", headers={"Accept-Encoding": "identity"})
        fresh = client.get("/feed", headers={"If-None-Match": ETAG})
        head = client.head("/feed", headers={"Accept-Encoding": "identity"})
        zipped = client.get("/feed", headers={"Accept-Encoding": "gzip"})
    assert plain.status_code == 200 and plain.content == Bytes().body
    assert {k: plain.headers[k] for k in ("etag", "last-modified", "cache-control", "vary", "link", "content-length")} \
        == {"etag": ETAG, "last-modified": HTTP_DATE, "cache-control": "public, max-age=300",
            "vary": "Accept-Encoding", "link": '<x>; rel="self"', "content-length": str(len(Bytes().body))}
    assert fresh.status_code == 304 and fresh.content == b"" and fresh.headers["etag"] == ETAG
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(len(Bytes().body))
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == Bytes().body  # httpx unzips
    assert zipped.headers["content-length"] == str(len(Bytes().gzipped))


# --- gzip negotiation -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("accept_encoding, expected", [
    pytest.param(None, False, id="absent"),
    pytest.param("", False, id="empty"),
    pytest.param("gzip", True, id="gzip"),
    pytest.param("GZIP", True, id="case"),
    pytest.param("x-gzip", True, id="x-gzip-alias"),
    pytest.param("gzip, deflate, br", True, id="browser"),
    pytest.param("br, gzip;q=0.8", True, id="with-q"),
    pytest.param("gzip;q=0", False, id="gzip-refused"),
    pytest.param("gzip; q=0.000", False, id="gzip-refused-spaced"),
    pytest.param("gzip;q=0.001", True, id="smallest-q"),
    pytest.param("gzip;q=nonsense", False, id="bad-q"),
    pytest.param("*", True, id="star"),
    pytest.param("*;q=0", False, id="star-refused"),
    pytest.param("*;q=0, gzip", True, id="explicit-gzip-beats-star"),
    pytest.param("gzip;q=0, *", False, id="explicit-refusal-beats-star"),
    pytest.param("identity", False, id="identity-only"),
    pytest.param("deflate, br", False, id="gzip-not-named"),
    pytest.param("identity;q=0", True, id="identity-refused"),
    pytest.param("identity;q=0, gzip;q=0", False, id="both-refused"),
    pytest.param("gzip;q=0.5, identity", False, id="identity-preferred"),
    pytest.param("gzip, identity;q=0.5", True, id="gzip-preferred"),
])
def test_accepts_gzip(accept_encoding: str | None, expected: bool) -> None:
    assert accepts_gzip(accept_encoding) is expected


# --- rate limiting ----------------------------------------------------------------------------------------------

def test_window_limiter_never_allows_more_than_limit_in_any_window() -> None:
    clock = Clock()
    limiter = RateLimiter(2, timedelta(minutes=10), clock)
    assert [limiter.hit("a"), limiter.hit("a")] == [0, 0]
    clock.now += timedelta(minutes=5)
    assert limiter.hit("a") == 300  # the first token comes back ten minutes after it was taken
    assert limiter.hit("b") == 0  # keys are apart
    clock.now += timedelta(minutes=5)
    assert [limiter.hit("a") for _ in range(3)] == [0, 0, 600]  # both came back at once: a bucket, not a trickle


def test_steady_limiter_allows_bursts_then_an_average() -> None:
    clock = Clock()
    limiter = RateLimiter(1, timedelta(seconds=8), clock, refill="steady")
    assert [limiter.hit("p", 4) for _ in range(5)] == [0, 0, 0, 0, 2]  # a burst of 4, then one every 2 s
    clock.now += timedelta(seconds=1)
    assert limiter.hit("p", 4) == 1
    clock.now += timedelta(seconds=1)
    assert limiter.hit("p", 4) == 0
    assert [limiter.hit("q"), limiter.hit("q")] == [0, 8]  # its own limit (1 per 8 s) when none is given


def test_limit_zero_is_no_limit_and_waits_are_whole_seconds() -> None:
    clock = Clock()
    window = RateLimiter(1, timedelta(seconds=10), clock)
    assert all(window.hit("k", 0) == 0 for _ in range(50))
    assert window.hit("k") == 0
    clock.now += timedelta(seconds=9, milliseconds=500)
    assert window.hit("k") == 1  # half a second left: rounded up, never 0


def test_idle_keys_are_forgotten_past_max_keys() -> None:
    clock = Clock()
    for refill in ("window", "steady"):
        limiter = RateLimiter(1, timedelta(seconds=8), clock, refill=refill, max_keys=3)  # type: ignore[arg-type]
        for key in "abc":
            limiter.hit(key)
        clock.now += timedelta(seconds=8)
        limiter.hit("d")  # four keys: the idle ones go
        assert len(limiter._taken) + len(limiter._buckets) == 1, refill
        assert limiter.hit("d") == 8, refill  # the live one is kept


# --- the error mapping ------------------------------------------------------------------------------------------

class Taken(GazetteError):
    status = 409


class Slow(GazetteError):
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Broken(GazetteError):
    pass  # 500


def error_app() -> FastAPI:
    app = FastAPI()

    def taken() -> None:
        raise Taken("slug 'x' is taken")

    def slow() -> None:
        raise Slow("too many", retry_after=42)

    def broken() -> None:
        raise Broken("secret internals")

    def numbers(n: int = Query(..., ge=1)) -> int:
        return n

    for prefix in ("/api", "/partners/p", ""):
        app.add_api_route(f"{prefix}/taken", taken)
        app.add_api_route(f"{prefix}/slow", slow)
        app.add_api_route(f"{prefix}/broken", broken)
        app.add_api_route(f"{prefix}/numbers", numbers)
    install_error_handlers(app, lambda status, message: f"<h1>{status}</h1><p>{message}</p>")
    return app


def test_errors_are_problem_json_under_the_apis_and_pages_elsewhere() -> None:
    with InProcessClient(error_app()) as client:
        api = client.get("/api/taken")
        partners = client.get("/partners/p/taken")
        page = client.get("/taken")
        slow = client.get("/api/slow")
        broken_api, broken_page = client.get("/api/broken"), client.get("/broken")
        missing = client.get("/nowhere")
    assert api.status_code == 409 and api.headers["content-type"] == "application/problem+json"
    assert api.json() == {"type": "about:blank", "title": "Conflict", "status": 409, "detail": "slug 'x' is taken",
                          "error": "slug 'x' is taken"}
    assert partners.status_code == 409 and partners.headers["content-type"] == "application/problem+json"
    assert page.status_code == 409 and page.headers["content-type"].startswith("text/html")
    assert page.text == "<h1>409</h1><p>slug 'x' is taken</p>"
    assert slow.status_code == 429 and slow.headers["retry-after"] == "42"
    assert broken_api.status_code == broken_page.status_code == 500
    assert "secret" not in broken_api.text + broken_page.text and broken_api.json()["detail"] == "Internal Server Error"
    assert missing.status_code == 404 and missing.text == "<h1>404</h1><p>Not Found</p>"  # HTTPException


def test_validation_errors_are_422_with_the_problems_listed() -> None:
    with InProcessClient(error_app()) as client:
        api = client.get("/api/numbers?n=0")
        page = client.get("/numbers")
    assert api.status_code == 422 and api.headers["content-type"] == "application/problem+json"
    body = api.json()
    assert body["errors"] == [{"where": "query.n", "problem": "Input should be greater than or equal to 1"}]
    assert body["detail"] == "query.n: Input should be greater than or equal to 1"
    assert page.status_code == 422 and page.text.startswith("<h1>422</h1><p>query.n: Field required")


@pytest.mark.parametrize("path, expected", [("/api", True), ("/api/x", True), ("/apis", False),
                                            ("/partners/p/feeds/all.rss", True), ("/partners", False), ("/", False)])
def test_is_json_path(path: str, expected: bool) -> None:
    assert kit.is_json_path(path) is expected
