"""Who may use the console and the API: logging in, sessions and their ends, lockout, CSRF, roles, the audit log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from feeds.core.accounts import LOCK_FOR, MAX_FAILURES
from tests.console.conftest import ACCOUNTS, PASSWORD, Console, csrf_of, login_form_fields
from tests.security.conftest import ADMIN


def test_a_page_without_a_session_sends_to_the_login_page(console: Console) -> None:
    answer = console.client().get("/admin/account?x=1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/login?next=%2Fadmin%2Faccount%3Fx%3D1"


def test_logging_in_opens_the_console_with_a_strict_cookie(console: Console) -> None:
    client = console.client()
    answer = console.log_in(client, ACCOUNTS["editor"])
    assert answer.status_code == 303 and answer.headers["location"] == "/admin"
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith("gazette_session="))
    assert all(flag in cookie.lower() for flag in ("httponly", "samesite=strict", "secure", "path=/"))
    page = client.get("/admin")
    assert page.status_code == 200 and ACCOUNTS["editor"] in page.text
    assert page.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("email, password", [
    pytest.param(ACCOUNTS["editor"], "wrong password!", id="wrong-password"),
    pytest.param("nobody@news.example.com", PASSWORD, id="unknown-address"),
    pytest.param("not an address", PASSWORD, id="not-an-address"),
])
def test_a_failed_login_says_the_same_whatever_was_wrong(console: Console, email: str, password: str) -> None:
    answer = console.log_in(console.client(), email, password)
    assert answer.status_code == 401
    assert "이메일 또는 비밀번호가 맞지 않습니다" in answer.text
    assert "gazette_session" not in answer.headers.get("set-cookie", "")


def test_the_login_form_needs_its_own_token(console: Console) -> None:
    client = console.client()
    page = client.get("/admin/login")
    fields = login_form_fields(page.text)
    answer = client.post("/admin/login", data={"email": ACCOUNTS["admin"], "password": PASSWORD,
                                                "next": fields["next"]})  # no login_token: a page elsewhere
    assert answer.status_code == 403
    stranger = console.client()  # the token, but not the cookie that goes with it
    assert stranger.post("/admin/login", data={**fields, "email": ACCOUNTS["admin"],
                                               "password": PASSWORD}).status_code == 403


def test_repeated_failures_lock_the_account_for_a_while(console: Console) -> None:
    client = console.client()
    for _ in range(MAX_FAILURES):
        assert console.log_in(client, ACCOUNTS["viewer"], "wrong password!").status_code == 401
    locked = console.log_in(client, ACCOUNTS["viewer"])  # the right password, but locked
    assert locked.status_code == 401 and "잠겼습니다" in locked.text
    assert [e.action for e in console.services.audit.entries(action="user.locked")] == ["user.locked"]
    console.clock.now += LOCK_FOR
    assert console.log_in(client, ACCOUNTS["viewer"]).status_code == 303


def test_login_attempts_are_limited_per_client(console: Console) -> None:
    client = console.client()
    answers = [console.log_in(client, f"guess{n}@news.example.com", "wrong password!").status_code for n in range(11)]
    assert answers[:10] == [401] * 10 and answers[10] == 429


def test_a_session_ends_when_idle_and_at_its_lifetime(console: Console) -> None:
    settings = console.services.settings.console
    session = console.login("viewer")
    console.clock.now += settings.session_idle - timedelta(minutes=1)
    assert session.client.get("/admin").status_code == 200  # in use: the idle time starts again
    console.clock.now += settings.session_idle - timedelta(minutes=1)
    assert session.client.get("/admin").status_code == 200
    console.clock.now += settings.session_idle
    assert session.client.get("/admin").status_code == 303  # idle too long
    busy, started = console.login("viewer"), console.clock.now
    while busy.client.get("/admin").status_code == 200:  # used every half idle time: never idle
        console.clock.now += settings.session_idle / 2
        assert console.clock.now - started <= settings.session_lifetime, "the session outlived its lifetime"
    assert console.clock.now - started == settings.session_lifetime  # it ended at its lifetime, not before


def test_logging_out_ends_that_session_and_everywhere_ends_all(console: Console) -> None:
    first, second, third = (console.login("editor") for _ in range(3))
    assert first.post("/admin/logout").status_code == 303
    assert first.client.get("/admin").status_code == 303
    assert second.client.get("/admin").status_code == 200
    assert second.post("/admin/logout-everywhere").status_code == 303
    assert second.client.get("/admin").status_code == 303 and third.client.get("/admin").status_code == 303


def test_a_form_without_the_sessions_csrf_token_changes_nothing(console: Console) -> None:
    session = console.login("editor")
    assert session.client.post("/admin/logout", data={}).status_code == 403
    assert session.client.post("/admin/logout", data={"csrf": "forged"}).status_code == 403
    assert session.client.get("/admin").status_code == 200  # still logged in


def test_a_new_password_ends_every_session(console: Console) -> None:
    session = console.login("editor")
    wrong = session.post("/admin/account/password", data={"current": "nope nope nope", "new": "a new password 1"})
    assert wrong.status_code == 422
    assert session.post("/admin/account/password",
                        data={"current": PASSWORD, "new": "a new password 1"}).status_code == 303
    assert session.client.get("/admin").status_code == 303
    assert console.log_in(console.client(), ACCOUNTS["editor"], "a new password 1").status_code == 303


# --- the API with a session ---------------------------------------------------------------------------------

def test_the_api_accepts_a_session_and_wants_its_csrf_header_to_change(console: Console) -> None:
    session = console.login("editor")
    assert session.client.get("/api/subscribers").status_code == 200
    body = {"email": "reader@example.org", "confirmed": True, "categories": ["politics"]}
    assert session.client.post("/api/subscribers", json=body).status_code == 403
    assert console.services.subscribers.find("reader@example.org") is None
    added = session.client.post("/api/subscribers", json=body, headers={"X-CSRF-Token": session.csrf})
    assert added.status_code == 201, added.text
    entry = console.services.audit.entries(action="subscriber.add")[0]
    assert entry.actor == ACCOUNTS["editor"] and entry.actor_kind == "user"


def test_a_viewer_reads_the_api_but_changes_nothing(console: Console) -> None:
    session = console.login("viewer")
    headers = {"X-CSRF-Token": session.csrf}
    assert session.client.get("/api/partners").status_code == 200
    refused = session.client.post("/api/subscribers", json={"email": "x@example.org", "confirmed": True},
                                  headers=headers)
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    assert console.services.subscribers.find("x@example.org") is None
    assert session.client.post("/api/partners/portal/keys", json={}, headers=headers).status_code == 403
    assert len(console.services.partners.keys("portal")) == 1


def test_an_editor_cannot_manage_partner_keys(console: Console) -> None:
    session = console.login("editor")
    answer = session.client.post("/api/partners/portal/keys", json={}, headers={"X-CSRF-Token": session.csrf})
    assert answer.status_code == 403
    admin = console.login("admin")
    assert admin.client.post("/api/partners/portal/keys", json={"label": "rotation"},
                             headers={"X-CSRF-Token": admin.csrf}).status_code == 201
    entry = console.services.audit.entries(action="partner.key_create")[0]
    assert entry.actor == ACCOUNTS["admin"] and entry.target == "partner:portal" and entry.after["label"] == "rotation"


def test_the_admin_token_still_works_and_is_audited_as_the_token(console: Console) -> None:
    client = console.client()
    assert client.post("/api/partners/portal/keys", json={}, headers=ADMIN).status_code == 201
    assert console.services.audit.entries(action="partner.key_create")[0].actor_kind == "token"


def test_a_forged_session_cookie_is_refused_before_the_body(console: Console) -> None:
    client = console.client()
    client.client.cookies.set("gazette_session", "made-up.value", domain="news.example.com")
    answer = client.post("/api/bounces", content=b"{" * 10, headers={"content-type": "application/json"})
    assert answer.status_code == 401 and answer.headers["content-type"] == "application/problem+json"


def test_console_pages_refuse_a_role_too_small(console: Console) -> None:
    session = console.login("editor")
    answer = session.client.get("/admin/account")
    assert answer.status_code == 200
    assert csrf_of(answer.text) == session.csrf


def test_ended_sessions_are_deleted_by_the_hourly_job(console: Console) -> None:
    ended, live = console.login("viewer"), console.login("editor")
    ended.post("/admin/logout")
    console.clock.now += console.services.settings.console.session_idle  # every session idle too long now
    fresh = console.login("admin")
    job = next(s for s in console.services.task_specs() if s.key == "console:sessions")
    assert job.run(console.clock.now) == "1 ended sessions deleted"  # the editor's; the logout took the viewer's
    assert live.client.get("/admin").status_code == 303 and fresh.client.get("/admin").status_code == 200
