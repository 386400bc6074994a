"""The role rules over every route that changes something, found from the app itself (so a new route is covered
the day it is added): a viewer's request answers 403 and changes nothing; an editor's does the same on what only
an admin manages (users, partners and their keys)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from sqlalchemy import MetaData, select

from tests.console.conftest import Console, LoggedIn

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Anyone logged in may end their own session or change their own password.
ONES_OWN = {"/admin/login", "/admin/logout", "/admin/logout-everywhere", "/admin/account/password"}
ADMIN_ONLY = ("/api/partners", "/admin/partners", "/admin/users", "/api/users", "/api/webhooks", "/admin/webhooks")


def every_route(routes: list[Any]) -> list[Any]:
    """The app's routes, those of included routers too (FastAPI keeps an included router as one entry whose
    routes carry their full paths: every router here declares its prefix itself)."""
    flat = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        flat += every_route(inner.routes) if inner is not None else [route]
    return flat


def changing_routes(app: Any) -> list[tuple[str, str]]:
    found = set()
    for route in every_route(app.routes):
        path = getattr(route, "path", "")
        if not (path.startswith("/api/") or path.startswith("/admin")) or path in ONES_OWN:
            continue
        for method in (getattr(route, "methods", None) or set()) & UNSAFE:
            found.add((method, path))
    return sorted(found)


def fill(path: str) -> str:
    """A concrete path for a route's pattern: every parameter an existing-looking value."""
    return re.sub(r"\{[^}]+\}", "1", path)


def snapshot(console: Console) -> str:
    """Every row of every table, hashed: equal snapshots mean nothing changed."""
    metadata = MetaData()
    metadata.reflect(console.services.engine)
    digest = hashlib.sha256()
    with console.services.engine.connect() as db:
        for name in sorted(metadata.tables):
            if name in ("console_sessions", "apscheduler_jobs"):  # a request's own session is touched as it is used
                continue
            for row in db.execute(select(metadata.tables[name])).all():
                digest.update(repr(sorted(row._mapping.items(), key=lambda kv: str(kv[0]))).encode())
    return digest.hexdigest()


def attempt(session: LoggedIn, method: str, path: str) -> Any:
    headers = {"X-CSRF-Token": session.csrf}
    if path.startswith("/admin"):
        return session.client.request(method, fill(path), data={"csrf": session.csrf}, headers=headers)
    return session.client.request(method, fill(path), json={}, headers=headers)


def test_there_are_routes_to_check(console: Console) -> None:
    routes = changing_routes(console.base._app)
    assert ("POST", "/api/subscribers") in routes and ("POST", "/api/partners/{slug}/keys") in routes


def test_a_viewer_changes_nothing_anywhere(console: Console) -> None:
    session = console.login("viewer")
    before = snapshot(console)
    answers = {(method, path): attempt(session, method, path).status_code
               for method, path in changing_routes(console.base._app)}
    assert {route: status for route, status in answers.items() if status != 403} == {}
    assert snapshot(console) == before


def test_an_editor_cannot_manage_users_partners_or_keys(console: Console) -> None:
    session = console.login("editor")
    before = snapshot(console)
    admin_routes = [(m, p) for m, p in changing_routes(console.base._app) if p.startswith(ADMIN_ONLY)]
    assert admin_routes, "no admin-only route found"
    answers = {(method, path): attempt(session, method, path).status_code for method, path in admin_routes}
    assert {route: status for route, status in answers.items() if status != 403} == {}
    assert snapshot(console) == before


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_a_session_without_its_csrf_token_changes_nothing(console: Console, role: str) -> None:
    session = console.login(role)
    before = snapshot(console)
    for method, path in changing_routes(console.base._app):
        answer = session.client.request(method, fill(path), data={"csrf": "wrong"}, headers={"X-CSRF-Token": "wrong"})
        assert answer.status_code == 403, (method, path, answer.status_code)
    assert snapshot(console) == before
