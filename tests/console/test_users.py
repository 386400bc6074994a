"""`/admin/users` and the accounts' rule behind it: the last admin can be neither removed nor demoted."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from feeds.core.accounts import MAX_FAILURES, Accounts, LastAdmin
from tests.console.conftest import ACCOUNTS, PASSWORD, Console

NEW_PASSWORD = "another good password"


def user_id(console: Console, email: str) -> int:
    return console.services.accounts.user(email).id


def test_the_users_page_lists_roles_logins_and_locks(console: Console) -> None:
    for _ in range(MAX_FAILURES):
        console.log_in(console.client(), ACCOUNTS["viewer"], "wrong password!")
    page = console.login("admin").client.get("/admin/users")
    assert page.status_code == 200
    for email in ACCOUNTS.values():
        assert email in page.text
    assert page.text.count("잠김") == 1 and f"/admin/users/{user_id(console, ACCOUNTS['viewer'])}/unlock" in page.text


def test_an_admin_adds_a_user_who_then_logs_in(console: Console) -> None:
    admin = console.login("admin")
    answer = admin.post("/admin/users", {"email": "New.Desk@News.Example.com", "role": "editor", "password": NEW_PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/users?flash=console_flash_user_added"
    assert console.services.accounts.user("new.desk@news.example.com").role == "editor"
    assert console.log_in(console.client(), "new.desk@news.example.com", NEW_PASSWORD).status_code == 303
    [entry] = console.services.audit.entries(action="user.create")
    assert entry.target == "user:new.desk@news.example.com" and entry.after == {"role": "editor"}
    assert NEW_PASSWORD not in str(entry.after)


@pytest.mark.parametrize("form, status, words", [
    pytest.param({"email": "not an address", "role": "viewer", "password": NEW_PASSWORD}, 422, "e-mail", id="address"),
    pytest.param({"email": "x@news.example.com", "role": "owner", "password": NEW_PASSWORD}, 422, "role", id="role"),
    pytest.param({"email": "x@news.example.com", "role": "viewer", "password": "short"}, 422, "10", id="password"),
    pytest.param({"email": ACCOUNTS["editor"], "role": "viewer", "password": NEW_PASSWORD}, 409, "already", id="taken"),
])
def test_a_user_that_cannot_be_added(console: Console, form: dict, status: int, words: str) -> None:
    admin = console.login("admin")
    answer = admin.post("/admin/users", form)
    assert answer.status_code == status and words in answer.text
    assert len(console.services.accounts.users()) == 3 and console.services.audit.entries(action="user.create") == []


def test_a_role_changes_and_the_change_is_audited(console: Console) -> None:
    admin = console.login("admin")
    viewer = user_id(console, ACCOUNTS["viewer"])
    assert admin.post(f"/admin/users/{viewer}/role", {"role": "editor"}).status_code == 303
    assert console.services.accounts.user(ACCOUNTS["viewer"]).role == "editor"
    [entry] = console.services.audit.entries(action="user.role")
    assert entry.before == {"role": "viewer"} and entry.after == {"role": "editor"}


def test_a_password_reset_ends_the_users_sessions(console: Console) -> None:
    editor = console.login("editor")
    admin = console.login("admin")
    answer = admin.post(f"/admin/users/{user_id(console, ACCOUNTS['editor'])}/password", {"password": NEW_PASSWORD})
    assert answer.status_code == 303
    assert editor.client.get("/admin").status_code == 303  # logged out
    assert console.log_in(console.client(), ACCOUNTS["editor"], NEW_PASSWORD).status_code == 303
    [entry] = console.services.audit.entries(action="user.reset_password")
    assert entry.target == f"user:{ACCOUNTS['editor']}" and NEW_PASSWORD not in str(entry.before) + str(entry.after)


def test_an_admin_unlocks_a_locked_account(console: Console) -> None:
    for _ in range(MAX_FAILURES):
        console.log_in(console.client(), ACCOUNTS["viewer"], "wrong password!")
    assert console.log_in(console.client(), ACCOUNTS["viewer"]).status_code == 401
    admin = console.login("admin")
    assert admin.post(f"/admin/users/{user_id(console, ACCOUNTS['viewer'])}/unlock").status_code == 303
    assert console.log_in(console.client(), ACCOUNTS["viewer"]).status_code == 303
    assert [e.action for e in console.services.audit.entries(action="user.unlock")] == ["user.unlock"]


def test_removing_a_user_asks_first(console: Console) -> None:
    admin = console.login("admin")
    viewer = user_id(console, ACCOUNTS["viewer"])
    confirm = admin.client.get(f"/admin/users/{viewer}/remove")
    assert confirm.status_code == 200 and ACCOUNTS["viewer"] in confirm.text
    assert len(console.services.accounts.users()) == 3  # the GET asks, it does not remove
    assert admin.post(f"/admin/users/{viewer}/remove").status_code == 303
    assert ACCOUNTS["viewer"] not in [u.email for u in console.services.accounts.users()]
    [entry] = console.services.audit.entries(action="user.remove")
    assert entry.before == {"role": "viewer"}
    assert admin.post(f"/admin/users/{viewer}/remove").status_code == 404


def test_the_last_admin_can_neither_leave_nor_step_down(console: Console) -> None:
    admin = console.login("admin")
    me = user_id(console, ACCOUNTS["admin"])
    demoted = admin.post(f"/admin/users/{me}/role", {"role": "editor"})
    assert demoted.status_code == 409 and "last admin" in demoted.text
    removed = admin.post(f"/admin/users/{me}/remove")
    assert removed.status_code == 409
    assert console.services.accounts.user(ACCOUNTS["admin"]).role == "admin"
    assert console.services.audit.entries(action="user.role") == console.services.audit.entries(action="user.remove") == []
    # With a second admin, the first may step down.
    assert admin.post(f"/admin/users/{user_id(console, ACCOUNTS['editor'])}/role", {"role": "admin"}).status_code == 303
    assert admin.post(f"/admin/users/{me}/role", {"role": "viewer"}).status_code == 303
    assert admin.client.get("/admin/users").status_code == 403  # a viewer now


def test_removing_oneself_ends_the_session(console: Console) -> None:
    console.services.accounts.set_role(ACCOUNTS["editor"], "admin")
    admin = console.login("admin")
    answer = admin.post(f"/admin/users/{user_id(console, ACCOUNTS['admin'])}/remove")
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/login"
    assert admin.client.get("/admin").status_code == 303


def test_an_editor_and_a_viewer_cannot_see_or_change_users(console: Console) -> None:
    viewer = user_id(console, ACCOUNTS["viewer"])
    before = [(u.email, u.role) for u in console.services.accounts.users()]
    for role in ("editor", "viewer"):
        session = console.login(role)
        assert session.client.get("/admin/users").status_code == 403
        assert session.client.get(f"/admin/users/{viewer}/remove").status_code == 403
        for path, data in (("/admin/users", {"email": "x@news.example.com", "role": "admin", "password": NEW_PASSWORD}),
                           (f"/admin/users/{viewer}/role", {"role": "admin"}),
                           (f"/admin/users/{viewer}/password", {"password": NEW_PASSWORD}),
                           (f"/admin/users/{viewer}/unlock", {}), (f"/admin/users/{viewer}/remove", {})):
            assert session.post(path, data).status_code == 403, (role, path)
    assert [(u.email, u.role) for u in console.services.accounts.users()] == before
    assert console.log_in(console.client(), ACCOUNTS["viewer"]).status_code == 303  # the password unchanged
    assert [e.action for e in console.services.audit.entries(action="user.") if e.action != "user.login"] == []


# --- the rule in Accounts, whoever asks (the CLI too) -------------------------------------------------------------

@pytest.fixture
def accounts(console: Console) -> Accounts:
    return Accounts(console.services.engine, console.services.clock,
                    hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def test_accounts_keep_the_last_admin(accounts: Accounts) -> None:
    with pytest.raises(LastAdmin) as refused:
        accounts.remove(ACCOUNTS["admin"])
    assert refused.value.status == 409
    with pytest.raises(LastAdmin):
        accounts.set_role(ACCOUNTS["admin"], "viewer")
    assert accounts.user(ACCOUNTS["admin"]).role == "admin"  # rolled back
    accounts.set_role(ACCOUNTS["admin"], "admin")  # staying admin is no demotion
    accounts.remove(ACCOUNTS["viewer"])  # others go as before
    accounts.add("second@news.example.com", "admin", PASSWORD)
    accounts.remove(ACCOUNTS["admin"])
    with pytest.raises(LastAdmin):
        accounts.set_role("second@news.example.com", "editor")


def test_two_admins_stepping_down_at_once_leave_one_admin(engine) -> None:  # type: ignore[no-untyped-def]
    """The rule holds under concurrency: each change counts the admins inside its own transaction, after locking them
    (PostgreSQL) or behind the write lock (SQLite), so of two admins demoting themselves at once one stays."""
    import threading

    from tests.conftest import NOW

    accounts = Accounts(engine, lambda: NOW, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    for email in ("one@news.example.com", "two@news.example.com"):
        accounts.add(email, "admin", PASSWORD)
    start, outcomes = threading.Barrier(2), []

    def step_down(email: str) -> None:
        start.wait()
        try:
            accounts.set_role(email, "editor")
            outcomes.append("demoted")
        except LastAdmin:
            outcomes.append("refused")

    threads = [threading.Thread(target=step_down, args=(e,)) for e in ("one@news.example.com", "two@news.example.com")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["demoted", "refused"]
    assert [u.role for u in accounts.users()].count("admin") == 1
