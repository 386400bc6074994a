"""Attacks on webhooks: who may manage them (admins only, CSRF needed), what URL an endpoint may have (no userinfo,
no ftp/file/javascript, no private address unless the operator allows it, checked again on connection), oversized
and malformed input (4xx with a message, never 500), a receiver that redirects (not followed) or answers a huge body
(not read), and the secret (never in a list, a page after the one that shows it, or the audit log)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Clock, SmtpRecorder
from tests.console.conftest import Console, console_over
from tests.console.test_roles import (
    attempt,
    changing_routes,
    every_route,
    fill,
    snapshot,
)
from tests.security.conftest import ADMIN
from tests.test_webhooks import Receiver

HOOKS = ("/api/webhooks", "/admin/webhooks")
PRIVATE = """
[webhooks]
allow_private_network = true
"""
GOOD = {"name": "CRM", "url": "https://crm.example.com/hooks", "events": ["edition.sent"]}


def webhook_routes(app: object) -> list[tuple[str, str]]:
    found = set()
    for route in every_route(app.routes):  # type: ignore[attr-defined]
        path = getattr(route, "path", "")
        if path.startswith(HOOKS):
            found |= {(m, path) for m in getattr(route, "methods", set()) - {"HEAD"}}
    return sorted(found)


@pytest.fixture
def hooked(tmp_path: Path, smtp_server: tuple[SmtpRecorder, str], clock: Clock,
           migrated_sqlite: Path) -> Iterator[Console]:
    smtp, smtp_url = smtp_server
    with console_over(tmp_path, smtp, clock, migrated_sqlite, mail_url=smtp_url, extra=PRIVATE) as site:
        yield site


# --- who ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_a_viewer_or_editor_can_neither_read_nor_manage_webhooks(console: Console, role: str) -> None:
    made = console.base.post("/api/webhooks", headers=ADMIN, json=GOOD)
    assert made.status_code == 201
    secret = made.json()["secret"]
    session = console.login(role)
    routes = webhook_routes(console.base._app)
    assert len(routes) >= 14 and all((m, p) in routes or m == "GET" for m, p in changing_routes(console.base._app)
                                     if p.startswith(HOOKS))
    before = snapshot(console)
    for method, path in routes:
        answer = attempt(session, method, path) if method != "GET" else session.client.get(fill(path))
        assert answer.status_code == 403, (method, path, answer.status_code)
        assert secret not in answer.text
    assert snapshot(console) == before
    nav = session.client.get("/admin").text
    assert 'href="/admin/webhooks"' not in nav  # not in the navigation of those who may not use it


def test_an_admin_session_needs_its_csrf_token(console: Console) -> None:
    admin = console.login("admin")
    before = snapshot(console)
    assert admin.client.post("/admin/webhooks", data={**GOOD, "csrf": "wrong"}).status_code == 403
    assert admin.client.post("/admin/webhooks", data=GOOD).status_code == 403
    assert admin.client.request("POST", "/api/webhooks", json=GOOD).status_code == 403  # no X-CSRF-Token
    assert admin.client.request("POST", "/api/webhooks", json=GOOD,
                                headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert snapshot(console) == before
    ok = admin.client.request("POST", "/api/webhooks", json=GOOD, headers={"X-CSRF-Token": admin.csrf})
    assert ok.status_code == 201


# --- what URL -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("case", "url", "says"), [
    ("userinfo", "https://admin:hunter2@crm.example.com/x", "no user name"),
    ("ftp", "ftp://crm.example.com/x", "only http"),
    ("file", "file:///etc/passwd", "only http"),
    ("javascript", "javascript:alert(document.cookie)", "only http"),
    ("data", "data:text/html,<script>alert(1)</script>", "only http"),
    ("loopback", "http://127.0.0.1:5432/", "not public"),
    ("metadata", "http://169.254.169.254/latest/meta-data/", "not public"),
    ("private v6", "http://[fd00::1]/x", "not public"),
    ("header injection", "https://crm.example.com/\r\nX-Evil: 1", "without spaces"),
    ("too long", "https://crm.example.com/" + "a" * 3000, "2000"),
])
def test_a_bad_url_is_refused_by_the_api_and_the_console(console: Console, case: str, url: str, says: str) -> None:
    answer = console.base.post("/api/webhooks", headers=ADMIN, json={**GOOD, "url": url})
    assert answer.status_code == 422 and says in answer.text, answer.text
    admin = console.login("admin")
    page = admin.post("/admin/webhooks", {**GOOD, "url": url})
    assert page.status_code == 422 and says in page.text
    assert console.services.webhooks.endpoints() == []


def test_a_name_that_resolves_to_loopback_is_refused_on_connection(console: Console) -> None:
    """The operator did not allow private addresses: `localhost` passes the form, not the connection."""
    with Receiver() as target:
        port = target.url.split(":")[2].split("/")[0]
        made = console.base.post("/api/webhooks", headers=ADMIN, json={**GOOD, "url": f"http://localhost:{port}/x"})
        assert made.status_code == 201
        test = console.base.post(f"/api/webhooks/{made.json()['endpoint']['id']}/test", headers=ADMIN)
        assert test.status_code == 200 and test.json()["status"] == "parked"
        assert "loopback" in test.json()["last_error"] and "[webhooks] allow_private_network" in test.json()["last_error"]
        assert target.calls == []


# --- oversized and malformed input ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("case", "body", "status"), [
    ("a body over the cap", {**GOOD, "name": "x" * (2 * 1024 * 1024)}, 413),
    ("a long name", {**GOOD, "name": "가" * 5000}, 422),
    ("many events", {**GOOD, "events": ["edition.sent"] * 10000}, 422),
    ("an unknown event", {**GOOD, "events": ["webhook.test"]}, 422),
    ("no events", {**GOOD, "events": []}, 422),
    ("events not a list", {**GOOD, "events": "edition.sent"}, 422),
    ("an unknown field", {**GOOD, "secret": "mine"}, 422),
    ("not an object", ["x"], 422),
])
def test_bad_bodies_answer_4xx_with_a_message(console: Console, case: str, body: object, status: int) -> None:
    answer = console.base.post("/api/webhooks", headers=ADMIN, json=body)
    assert answer.status_code == status and answer.json()["detail"], answer.text
    assert console.services.webhooks.endpoints() == []


@pytest.mark.parametrize("path", [
    "/api/webhooks/99999999999999999999999", "/api/webhooks/-1", "/api/webhooks/abc",
    "/api/webhooks/1/deliveries?cursor=bm9wZQ", "/api/webhooks/1/deliveries?status=gone",
    "/api/webhooks/1/deliveries?limit=100000", "/api/webhooks/1", "/api/webhooks/1/deliveries",
])
def test_bad_ids_and_cursors_are_4xx(console: Console, path: str) -> None:
    answer = console.base.get(path, headers=ADMIN)
    assert 400 <= answer.status_code < 500 and answer.json()["detail"]


def test_a_long_delivery_id_and_an_unknown_one_are_4xx(console: Console) -> None:
    made = console.base.post("/api/webhooks", headers=ADMIN, json=GOOD).json()["endpoint"]["id"]
    assert console.base.post(f"/api/webhooks/{made}/deliveries/{'a' * 500}/retry", headers=ADMIN).status_code == 422
    assert console.base.post(f"/api/webhooks/{made}/deliveries/nope/retry", headers=ADMIN).status_code == 404
    admin = console.login("admin")
    assert admin.post(f"/admin/webhooks/{made}/deliveries/{'a' * 500}/retry").status_code == 404


def test_a_name_with_markup_and_line_breaks_is_escaped_and_flattened(console: Console) -> None:
    made = console.base.post("/api/webhooks", headers=ADMIN,
                             json={**GOOD, "name": "<script>alert(1)</script>\r\nX-Evil: 1"})
    assert made.status_code == 201 and made.json()["endpoint"]["name"] == "<script>alert(1)</script> X-Evil: 1"
    admin = console.login("admin")
    for page in (admin.client.get("/admin/webhooks").text,
                 admin.client.get(f"/admin/webhooks/{made.json()['endpoint']['id']}").text):
        assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- what a receiver answers -----------------------------------------------------------------------------------------

def test_a_redirect_is_not_followed(hooked: Console) -> None:
    with Receiver() as inside, Receiver(lambda n: (302, {"Location": inside.url})) as outside:
        made = hooked.base.post("/api/webhooks", headers=ADMIN, json={**GOOD, "url": outside.url}).json()
        outside.secret = inside.secret = made["secret"]
        test = hooked.base.post(f"/api/webhooks/{made['endpoint']['id']}/test", headers=ADMIN).json()
        assert (test["status"], test["response_status"]) == ("parked", 302)
        assert "not followed" in test["last_error"] and len(outside.calls) == 1 and inside.calls == []


def test_a_huge_answer_is_not_read(hooked: Console) -> None:
    with Receiver(lambda n: 500, body=b"x" * (20 * 1024 * 1024)) as crm:
        made = hooked.base.post("/api/webhooks", headers=ADMIN, json={**GOOD, "url": crm.url}).json()
        crm.secret = made["secret"]
        started = time.monotonic()
        test = hooked.base.post(f"/api/webhooks/{made['endpoint']['id']}/test", headers=ADMIN).json()
        assert test["status"] == "parked" and len(test["last_error"]) < 400
        assert time.monotonic() - started < 10


# --- the secret -----------------------------------------------------------------------------------------------------

def test_the_secret_is_never_listed_nor_audited(console: Console) -> None:
    made = console.base.post("/api/webhooks", headers=ADMIN, json=GOOD).json()
    endpoint_id, first = made["endpoint"]["id"], made["secret"]
    second = console.base.post(f"/api/webhooks/{endpoint_id}/secret", headers=ADMIN).json()["secret"]
    assert first != second and len(second) > 40
    console.base.request("PATCH", f"/api/webhooks/{endpoint_id}", headers=ADMIN, json={"is_active": False})
    admin = console.login("admin")
    seen = [console.base.get("/api/webhooks", headers=ADMIN).text,
            console.base.get(f"/api/webhooks/{endpoint_id}", headers=ADMIN).text,
            console.base.get("/api/audit?action=webhook.", headers=ADMIN).text,
            console.base.get("/api/openapi.json").text,
            admin.client.get("/admin/webhooks").text, admin.client.get(f"/admin/webhooks/{endpoint_id}").text,
            admin.client.get("/admin/audit").text]
    for text in seen:
        assert first not in text and second not in text
    audit = json.loads(seen[2])["items"]
    assert [e["action"] for e in audit] == ["webhook.update", "webhook.secret_rotate", "webhook.create"]
    assert audit[0]["after"]["secret"] == audit[1]["after"]["secret"] != audit[2]["after"]["secret"]
    assert len(audit[0]["after"]["secret"]) == 8  # a fingerprint
