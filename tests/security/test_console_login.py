"""Attacks on the console's door: open redirects after login, session fixation, a forged or stolen cookie, headers
through the login form, unbounded work from a password, framing."""

from __future__ import annotations

import pytest

from feeds.core.accounts import session_key
from tests.console.conftest import ACCOUNTS, PASSWORD, Console, login_form_fields


@pytest.mark.parametrize("next_path", [
    "//evil.example/admin", "https://evil.example/admin", "/admin/../../evil", "\\\\evil.example", "/\\evil.example",
    "/admin\r\nSet-Cookie: x=1", "javascript:alert(1)", "/public-page", "/administrator", "/admin/./../x",
])
def test_the_page_after_login_is_always_the_consoles(console: Console, next_path: str) -> None:
    client = console.client()
    page = client.get("/admin/login", params={"next": next_path})
    fields = {**login_form_fields(page.text), "next": next_path}
    answer = client.post("/admin/login", data={**fields, "email": ACCOUNTS["viewer"], "password": PASSWORD})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin"


def test_a_session_cookie_set_before_login_is_not_kept(console: Console) -> None:
    client = console.client()
    client.client.cookies.set("gazette_session", "planted", domain="news.example.com")
    console.log_in(client, ACCOUNTS["viewer"])
    assert client.client.cookies.get("gazette_session") != "planted"
    assert client.get("/admin").status_code == 200


def test_the_database_holds_no_usable_session(console: Console) -> None:
    from sqlalchemy import select

    from feeds.core.accounts import console_sessions

    session = console.login("viewer")
    cookie = session.client.client.cookies.get("gazette_session")
    secret = console.services.access.secret_of(cookie)
    with console.services.engine.connect() as db:
        stored = db.execute(select(console_sessions.c.id)).scalars().all()
    assert session_key(secret) in stored and secret not in stored and cookie not in stored


def test_a_cookie_signed_with_another_key_opens_nothing(console: Console) -> None:
    from feeds.core.http import Access

    other = Access(None, console.services.accounts, "some-other-signing-key-0123")
    session = console.login("viewer")
    secret = console.services.access.secret_of(session.client.client.cookies.get("gazette_session"))
    forged = console.client()
    forged.client.cookies.set("gazette_session", other.cookie_value(secret), domain="news.example.com")
    assert forged.get("/admin").status_code == 303
    assert forged.get("/api/subscribers").status_code == 401


@pytest.mark.parametrize("email", ["viewer@news.example.com\r\nBcc: x@evil.example", "a" * 100_000, "\x00@x"])
def test_hostile_addresses_are_refused_plainly(console: Console, email: str) -> None:
    answer = console.log_in(console.client(), email)
    assert answer.status_code == 401 and "\r\nBcc" not in answer.headers.get("set-cookie", "")


def test_a_huge_password_costs_no_more_than_a_wrong_one(console: Console) -> None:
    answer = console.log_in(console.client(), ACCOUNTS["viewer"], "x" * 500_000)
    assert answer.status_code == 401


def test_console_pages_may_only_be_framed_by_the_console(console: Console) -> None:
    page = console.client().get("/admin/login")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in policy and "script-src" not in policy and "default-src 'none'" in policy
    assert page.headers["x-frame-options"] == "SAMEORIGIN"
    public = console.client().get("/subscribe")
    assert "frame-ancestors 'none'" in public.headers["content-security-policy"]
