"""`gazette users`: console accounts from the command line, as the demo and an operator's first login need."""

from __future__ import annotations

from pathlib import Path

from feeds.core.audit import AuditLog
from newsletter.settings import load_settings
from tests.conftest import NOW, migrated_sqlite_url, run_gazette, write_config


def configured(tmp_path: Path) -> Path:
    return write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path))


def test_add_list_reset_and_remove(tmp_path: Path) -> None:
    config = str(configured(tmp_path))
    added = run_gazette(["users", "add", "Desk@Example.COM", "--role", "editor", "--password-stdin", "--config", config],
                        input="a long password\n", expect=0)
    assert "added desk@example.com (editor)" in added.stdout and "/admin" in added.stdout
    listed = run_gazette(["users", "list", "--config", config], expect=0)
    assert "desk@example.com\teditor\tlast login never" in listed.stdout
    again = run_gazette(["users", "add", "desk@example.com", "--role", "admin", "--password-stdin", "--config", config],
                        input="a long password\n")
    assert again.returncode == 1 and "already has an account" in again.stderr
    kept = run_gazette(["users", "add", "desk@example.com", "--role", "admin", "--password-stdin", "--if-missing",
                        "--config", config], input="a long password\n", expect=0)
    assert "unchanged" in kept.stdout
    run_gazette(["users", "reset-password", "desk@example.com", "--password-stdin", "--config", config],
                input="another long one\n", expect=0)
    run_gazette(["users", "remove", "desk@example.com", "--config", config], expect=0)
    assert "no console accounts" in run_gazette(["users", "list", "--config", config], expect=0).stdout
    settings = load_settings(Path(config), {})
    from sqlalchemy import create_engine

    engine = create_engine(settings.database_url)
    log = AuditLog(engine, lambda: NOW)
    assert [e.action for e in reversed(log.entries())] == ["user.create", "user.reset_password", "user.remove"]
    assert {e.actor_kind for e in log.entries()} == {"cli"}
    engine.dispose()


def test_the_password_is_asked_twice_and_checked(tmp_path: Path) -> None:
    config = str(configured(tmp_path))
    typed = run_gazette(["users", "add", "a@example.com", "--role", "viewer", "--config", config],
                        input="a long password\na long password\n", expect=0)
    assert "added a@example.com (viewer)" in typed.stdout
    short = run_gazette(["users", "add", "b@example.com", "--role", "viewer", "--password-stdin", "--config", config],
                        input="short\n")
    assert short.returncode == 1 and "10 to 1024 characters" in short.stderr
    bad_role = run_gazette(["users", "add", "c@example.com", "--role", "owner", "--config", config])
    assert bad_role.returncode == 2
    bad_address = run_gazette(["users", "add", "not-an-address", "--role", "viewer", "--password-stdin",
                               "--config", config], input="a long password\n")
    assert bad_address.returncode == 1 and "not an e-mail address" in bad_address.stderr
