"""The admin API as a whole: what `/api/openapi.json` declares for every operation (both ways to authenticate, one
page shape for every list, problem+json for every error), what it answers (the same shapes, pages that walk a list
with no item twice and none missed), and `/api/docs`, served from the package with nothing from elsewhere.

The browser half (`/api/docs` in Chromium with every request off loopback refused) is
tests/console/test_api_docs_browser.py.
"""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from feeds import db as feeds_db
from feeds.core.paging import (
    MAX_ID,
    BadCursor,
    decode_cursor,
    encode_cursor,
    page_in_memory,
    page_of,
)
from newsletter import db as newsletter_db
from newsletter.settings import load_settings
from tests.conftest import NOW, Clock, InProcessClient, write_config
from tests.security.conftest import ADMIN, EXTRA, stored_article

SOURCES = "".join(f'\n[[sources]]\nname = "source-{n:02d}"\nkind = "feed"\npath = "/nonexistent/{n}.xml"\n'
                  'category = "politics"\n' for n in range(7))
# Rankings answer the page shape with next_cursor always null; their `limit` is how many to rank (see api.py).
RANKINGS = {("get", "/api/popular")}
# One thing each, whose arrays are its own few parts, not lists to page through.
WHOLE = {("get", "/api/partners/{slug}"): "a partner: its categories and keys",
         ("get", "/api/partners/{slug}/usage"): "a partner's usage: one row a day, `days` at most 366",
         ("get", "/api/alerts/{alert_id}"): "an alert's report: its first 100 failures, the rest in its deliveries",
         ("get", "/api/dashboard"): "the dashboard's figures: fixed windows, a few rows each",
         ("get", "/api/articles/{article_id}"): "an article's life: its corrections, the partners that have it and "
                                                "its last 100 events",
         ("get", "/api/webhooks/{endpoint_id}"): "a webhook endpoint: the few event types it wants"}


@pytest.fixture
def api(tmp_path: Path, database_url: str) -> Iterator[tuple[InProcessClient, Any]]:
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url,
                                          mail_url=f"maildir://{tmp_path / 'outbox'}", extra=EXTRA + SOURCES), {})
    services = service.Components(settings, clock=Clock())
    services.prepare_database(migrate=False)
    services.store.upsert_articles([stored_article(n) for n in range(1, 13)], source_id=None, now=NOW)
    with InProcessClient(service.create_app(services)) as client:
        yield client, services
    services.close()


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import service

    folder = tmp_path_factory.mktemp("spec")
    settings = load_settings(write_config(folder / "gazette.toml", database_url=f"sqlite:///{folder / 'g.db'}",
                                          extra=EXTRA), {})
    services = service.Components(settings, clock=Clock())
    document = service.create_app(services).openapi()
    services.engine.dispose()
    return document


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = [(method, path, op) for path, ops in spec["paths"].items() for method, op in ops.items()]
    assert len(found) >= 18 and all(path.startswith("/api/") for _, path, _ in found)
    return found


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


# --- the document ---------------------------------------------------------------------------------------------------

def test_every_operation_takes_the_admin_token_or_a_console_session(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert (schemes["adminToken"]["type"], schemes["adminToken"]["scheme"]) == ("http", "bearer")
    assert schemes["consoleSession"]["type"] == "apiKey"
    assert (schemes["consoleSession"]["in"], schemes["consoleSession"]["name"]) == ("cookie", "gazette_session")
    for method, path, op in operations(spec):
        # One requirement object per scheme: either one will do (OpenAPI 3.1 §4.8.30); both in one would mean both.
        assert sorted(op["security"], key=str) == [{"adminToken": []}, {"consoleSession": []}], (method, path)


def test_every_list_is_one_page_shape_with_the_paging_parameters(spec: dict[str, Any]) -> None:
    """A list is a GET that answers an array of things or takes `limit`: each answers `ListPage` and takes `limit`
    and `cursor`. An answer that is one thing with a short array of its own parts says so in `WHOLE`; a new GET
    with an array is neither until someone decides."""
    lists = set()
    for method, path, op in operations(spec):
        ok = op["responses"].get("200") or op["responses"].get("201") or op["responses"].get("202") or {}
        schema = resolve(spec, ok.get("content", {}).get("application/json", {}).get("schema", {}))
        assert schema.get("type") != "array", f"{method} {path} answers a bare list: answer a page"
        parameters = {p["name"]: p for p in op.get("parameters", ())}
        arrays = {name for name, p in schema.get("properties", {}).items() if resolve(spec, p).get("type") == "array"}
        if method != "get" or not (arrays or {"limit", "offset"} & set(parameters)) or (method, path) in WHOLE:
            continue
        lists.add((method, path))
        assert "items" in arrays and {"items", "next_cursor"} <= set(schema["required"]), (method, path)
        assert schema["properties"]["next_cursor"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
        assert "offset" not in parameters
        if (method, path) in RANKINGS:
            assert "cursor" not in parameters and parameters["limit"]["schema"]["maximum"] <= 100
            continue
        limit = parameters["limit"]["schema"]
        assert (limit["type"], limit["minimum"], limit["maximum"], limit["default"]) == ("integer", 1, 500, 50)
        assert parameters["cursor"]["schema"]["anyOf"][0]["maxLength"] == 512
        assert parameters["limit"]["in"] == parameters["cursor"]["in"] == "query"
    assert lists == {
        ("get", "/api/sources"), ("get", "/api/popular"), ("get", "/api/partners"),
        ("get", "/api/partners/{slug}/pushes"), ("get", "/api/subscribers"), ("get", "/api/editions"),
        ("get", "/api/editions/{edition_id}/deliveries"), ("get", "/api/alerts"), ("get", "/api/audit"),
        ("get", "/api/webhooks"), ("get", "/api/webhooks/{endpoint_id}/deliveries")}


def test_every_error_is_documented_as_problem_json(spec: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # FastAPI's own 422 shape: never answered
    for method, path, op in operations(spec):
        errors = {status: response for status, response in op["responses"].items() if int(status) >= 400}
        assert {"400", "401", "403", "422"} <= set(errors), (method, path)
        for status, response in errors.items():
            assert list(response["content"]) == ["application/problem+json"], (method, path, status)
            schema = resolve(spec, response["content"]["application/problem+json"]["schema"])
            assert set(schema["required"]) == {"type", "title", "status", "detail"}


# --- the answers ----------------------------------------------------------------------------------------------------

def assert_problem(answer: Any, status: int) -> dict[str, Any]:
    assert answer.status_code == status, (answer.status_code, answer.text[:300])
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"] == "about:blank"
    return body


@pytest.mark.parametrize(("method", "path", "headers", "status"), [
    pytest.param("GET", "/api/nothing-here", ADMIN, 404, id="unknown-path"),
    pytest.param("GET", "/api", ADMIN, 404, id="the-root"),
    pytest.param("PUT", "/api/sources", ADMIN, 405, id="wrong-method"),
    pytest.param("DELETE", "/api/editions", ADMIN, 405, id="wrong-method-on-a-list"),
    pytest.param("GET", "/api/subscribers?limit=0", ADMIN, 422, id="validation"),
    pytest.param("GET", "/api/subscribers?limit=501", ADMIN, 422, id="over-the-limit"),
    pytest.param("GET", "/api/subscribers?cursor=bad", ADMIN, 422, id="bad-cursor"),
    pytest.param("GET", "/api/subscribers?offset=50", ADMIN, 422, id="offset-is-gone"),
    pytest.param("GET", "/api/sources", {}, 401, id="no-token"),
    pytest.param("GET", "/api/nothing-here", {}, 401, id="unknown-path-no-token"),
    pytest.param("GET", "/api/sources", {"Authorization": "Bearer wrong"}, 401, id="wrong-token"),
    pytest.param("GET", "/api/sources", {"Cookie": "gazette_session=forged"}, 401, id="forged-session"),
    pytest.param("GET", "/api/editions/99", ADMIN, 404, id="no-such-row"),
    pytest.param("GET", "/api/docs/assets/swagger-ui-bundle.0000000000000000.js", {}, 404, id="no-such-asset"),
])
def test_every_error_answers_problem_json(api: tuple[InProcessClient, Any], method: str, path: str,
                                          headers: dict[str, str], status: int) -> None:
    client, _ = api
    assert_problem(client.request(method, path, headers=headers), status)


def walk(client: InProcessClient, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every item of a list, page by page, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        answer = client.get(path, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})},
                            headers=ADMIN)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert page["items"], "a page with a next one is never empty"
    raise AssertionError("the walk never ended")


def seed(services: Any, clock: Clock) -> None:
    now = clock()
    for n in range(23):
        services.subscribers.add(f"reader{n:02d}@example.com", categories=["politics"] if n % 3 else ["economy"],
                                 editions=["daily"], now=now, confirmed=n % 4 != 0, method="admin")
    ids = [s.id for s in services.subscribers.list(limit=100)[1]]
    with services.engine.begin() as conn:
        # Editions with equal scheduled times: the page boundary must fall between them, not skip one.
        for n in range(11):
            conn.execute(sa.insert(newsletter_db.editions).values(
                name=f"run{n % 3}", scheduled_at=NOW - timedelta(days=n // 3), period_start=NOW - timedelta(days=9),
                period_end=NOW, status="done", created_at=NOW))
        first = conn.execute(sa.select(sa.func.min(newsletter_db.editions.c.id))).scalar_one()
        # Alerts are editions too (named "alerts"), one a minute.
        for n in range(5):
            alert = conn.execute(sa.insert(newsletter_db.editions).values(
                name="alerts", scheduled_at=NOW - timedelta(minutes=n), period_start=NOW, period_end=NOW,
                status="done", created_at=NOW)).inserted_primary_key[0]
            conn.execute(sa.insert(newsletter_db.alerts).values(
                edition_id=alert, subject=f"속보 {n}", body="본문", categories=[], has_ads=False, created_at=NOW))
        conn.execute(sa.insert(newsletter_db.deliveries), [
            {"edition_id": first, "subscriber_id": i, "status": "sent" if i % 2 else "failed", "articles": 1,
             "attempts": 1} for i in ids])
        conn.execute(sa.insert(feeds_db.partner_pushes), [
            {"partner_slug": "portal", "article_id": f"art{n:09d}", "delivery_id": f"d{n}",
             "status": "parked" if n % 2 else "delivered", "attempts": 1, "created_at": NOW} for n in range(1, 13)])


@pytest.mark.parametrize("limit", [1, 4, 50])
def test_pages_walk_every_list_once(api: tuple[InProcessClient, Any], limit: int) -> None:
    client, services = api
    seed(services, Clock())
    for n in range(6):
        body = {"slug": f"p{n}", "name": f"파트너 {n}", "categories": ["politics"]}
        assert client.post("/api/partners", json=body, headers=ADMIN).status_code == 201

    def ids(path: str, key: str, **params: Any) -> list[Any]:
        found = [item[key] for item in walk(client, path, limit, **params)]
        assert len(found) == len(set(found)), f"{path}: an item twice"
        return found

    assert ids("/api/subscribers", "id") == sorted(s.id for s in services.subscribers.list(limit=100)[1])
    assert len(ids("/api/subscribers", "id")) == 23
    assert len(ids("/api/subscribers", "id", status="confirmed")) == 17
    assert len(ids("/api/subscribers", "id", category="economy")) == 8
    assert ids("/api/sources", "name") == [f"source-{n:02d}" for n in range(7)]
    assert ids("/api/partners", "slug") == ["p0", "p1", "p2", "p3", "p4", "p5", "portal"]
    pushes = ids("/api/partners/portal/pushes", "delivery_id")
    assert pushes == [f"d{n}" for n in range(12, 0, -1)]  # newest first
    assert ids("/api/partners/portal/pushes", "delivery_id", status="parked") == [f"d{n}" for n in (11, 9, 7, 5, 3, 1)]
    editions = walk(client, "/api/editions", limit)
    assert len(editions) == 16 and len({e["id"] for e in editions}) == 16  # 5 of them alerts
    order = [(e["scheduled_at"], e["id"]) for e in editions]
    assert order == sorted(order, reverse=True)  # newest first, ties by id
    first = min(e["id"] for e in editions)
    deliveries = ids(f"/api/editions/{first}/deliveries", "subscriber_id")
    assert deliveries == sorted(deliveries) and len(deliveries) == 23
    assert len(ids(f"/api/editions/{first}/deliveries", "subscriber_id", status="failed")) == 11  # the even ids
    alerts = walk(client, "/api/alerts", limit)
    assert [a["subject"] for a in alerts] == [f"속보 {n}" for n in range(5)]  # newest first


def test_rows_added_during_a_walk_shift_nothing(api: tuple[InProcessClient, Any]) -> None:
    client, services = api
    seed(services, Clock())
    first = client.get("/api/subscribers", params={"limit": 10}, headers=ADMIN).json()
    assert first["total"] == 23 and len(first["items"]) == 10
    # An earlier reader leaves and a new one arrives between two pages: keyset paging neither repeats nor skips.
    assert client.delete(f"/api/subscribers/{first['items'][0]['id']}", headers=ADMIN).status_code == 204
    services.subscribers.add("late@example.com", categories=[], editions=["daily"], now=NOW, confirmed=True,
                             method="admin")
    rest = walk(client, "/api/subscribers", 10, cursor=first["next_cursor"])
    seen = [s["id"] for s in first["items"]] + [s["id"] for s in rest]
    # 10 on the first page (the one who left among them), the 13 after it, and the newcomer.
    assert len(seen) == len(set(seen)) == 24 and rest[-1]["email"] == "late@example.com"
    assert rest[0]["id"] > first["items"][-1]["id"]


def test_popular_is_one_ranked_page(api: tuple[InProcessClient, Any]) -> None:
    client, _ = api
    page = client.get("/api/popular", params={"limit": 3}, headers=ADMIN).json()
    assert page["next_cursor"] is None and len(page["items"]) <= 3


def test_a_cursor_of_one_list_is_refused_by_another(api: tuple[InProcessClient, Any]) -> None:
    client, _ = api
    cursor = client.get("/api/sources", params={"limit": 2}, headers=ADMIN).json()["next_cursor"]
    assert cursor is not None
    body = assert_problem(client.get("/api/partners", params={"cursor": cursor}, headers=ADMIN), 422)
    assert "cursor" in body["detail"]


# --- the cursor, pure -----------------------------------------------------------------------------------------------

def _raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(("kind", "shape", "key"), [
    pytest.param("subscribers", (int,), (1,), id="an-id"),
    pytest.param("subscribers", (int,), (MAX_ID,), id="the-largest-id"),
    pytest.param("partners", (str,), ("포털-ü",), id="unicode-slug"),
    pytest.param("editions", (type(NOW), int), (NOW, 7), id="a-time-and-an-id"),
])
def test_a_cursor_round_trips(kind: str, shape: tuple[type, ...], key: tuple[Any, ...]) -> None:
    cursor = encode_cursor(kind, key)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)  # safe in a URL as it is
    assert decode_cursor(cursor, kind, shape) == key
    assert decode_cursor(None, kind, shape) is None


@pytest.mark.parametrize("cursor", [
    pytest.param("", id="empty"),
    pytest.param("!!!", id="not-base64"),
    pytest.param("A" * 600, id="too-long"),
    pytest.param(_raw("not json"), id="not-json"),
    pytest.param(_raw("\udcff"[:0] + "\xff"), id="latin-1"),
    pytest.param(_raw('{"subscribers": 1}'), id="an-object"),
    pytest.param(_raw('["subscribers"]'), id="no-key"),
    pytest.param(_raw('["subscribers", 1, 2]'), id="a-key-too-long"),
    pytest.param(_raw('["partners", 1]'), id="another-list"),
    pytest.param(_raw('["subscribers", "1"]'), id="text-for-a-number"),
    pytest.param(_raw('["subscribers", true]'), id="a-boolean"),
    pytest.param(_raw('["subscribers", 1.0]'), id="a-float"),
    pytest.param(_raw(f'["subscribers", {2**63}]'), id="past-bigint"),
    pytest.param(_raw('["subscribers", null]'), id="null"),
    pytest.param(_raw("[" * 200), id="nested"),
])
def test_a_bad_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(BadCursor) as refused:
        decode_cursor(cursor, "subscribers", (int,))
    assert refused.value.status == 422


@pytest.mark.parametrize("key", [
    pytest.param('["editions", "2026-11-25", 1]', id="no-zone"),
    pytest.param('["editions", "yesterday", 1]', id="not-a-time"),
    pytest.param('["editions", "0001-01-01T00:00:00+14:00", 1]', id="before-year-one-in-utc"),
    pytest.param('["editions", 1, 1]', id="a-number-for-a-time"),
])
def test_a_bad_time_in_a_cursor_is_refused(key: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(_raw(key), "editions", (type(NOW), int))


@pytest.mark.parametrize(("total", "limit"), [(0, 3), (1, 3), (3, 3), (4, 3), (10, 1), (10, 500)])
def test_pages_in_memory_cover_the_list_once(total: int, limit: int) -> None:
    rows = [f"slug-{n:03d}" for n in range(total)]
    seen: list[str] = []
    after = None
    while True:
        page = page_in_memory(list(reversed(rows)), limit, "x", lambda r: (r,), after)
        seen += page.items
        if page.next_cursor is None:
            break
        after = decode_cursor(page.next_cursor, "x", (str,))
    assert seen == rows


def test_a_full_last_page_says_so() -> None:
    assert page_of([1, 2, 3], 3, "x", lambda r: (r,)).next_cursor is None  # no extra row fetched: nothing follows
    assert page_of([1, 2, 3, 4], 3, "x", lambda r: (r,)).next_cursor == encode_cursor("x", (3,))


# --- /api/docs ------------------------------------------------------------------------------------------------------

ASSET = re.compile(r'(?:href|src)="(/api/docs/assets/[^"]+)"')


def test_the_reference_page_and_its_assets_come_from_here(api: tuple[InProcessClient, Any]) -> None:
    client, _ = api
    assert client.get("/docs").headers["location"] == "/api/docs"
    page = client.get("/api/docs")  # no token: it shows what /api/openapi.json says, nothing more
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe" not in policy and "http" not in policy
    assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert len(page.headers.get_list("content-security-policy")) == 1  # the guard's "no scripts" would block it
    assert "<script>" not in page.text and "<style" not in page.text  # nothing inline: the policy allows none
    assert not re.search(r"\s(?:style|on\w+)=", page.text)
    assert not re.search(r"(?:https?:)?//", page.text), "the page names no other host"
    assets = ASSET.findall(page.text)
    assert len(assets) == 4
    for path in assets:
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert answer.headers["x-content-type-options"] == "nosniff"
        again = client.get(path, headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304
        if path.endswith((".js", ".css")):
            assert client.get(path, headers={"Accept-Encoding": "gzip"}).headers["content-encoding"] == "gzip"
    [ours] = [path for path in assets if "/docs." in path]
    script = client.get(ours).text
    assert not re.search(r"https?://", script) and "validatorUrl: null" in script


def test_the_bundle_is_the_swagger_ui_pyproject_names() -> None:
    from feeds.http.docs import swagger_ui_files

    bundle = swagger_ui_files()["swagger-ui-bundle.js"].read_text(encoding="utf-8")
    [version] = set(re.findall(r'PACKAGE_VERSION:"([0-9.]+)"', bundle))
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert f"Swagger UI {version} " in pyproject, (
        f"pyproject.toml's comment on fastapi-swagger must name the Swagger UI it carries ({version})")
