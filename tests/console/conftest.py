"""The console's fixtures: the whole app in-process (`console`) with one account per role, and logging in.

`Console.login(role)` logs a fresh client in through the login form, as a browser does, and returns it with the
session's CSRF token (read off a page's form). The browser tests (`test_*_browser.py`) use `browser_console`
instead: the app served on loopback for Chromium (see `tests/console/browser.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from feeds.core.accounts import Accounts
from newsletter.settings import load_settings
from tests.conftest import (
    NOW,
    Clock,
    InProcessClient,
    SmtpRecorder,
    sqlite_copy,
    write_config,
)

PASSWORD = "correct horse battery"
ACCOUNTS = {"admin": "admin@news.example.com", "editor": "editor@news.example.com",
            "viewer": "viewer@news.example.com"}


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


def login_form_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))


class Visitor:
    """One browser's cookies against the app an `InProcessClient` runs (its lifespan runs once, in `console`)."""

    def __init__(self, base: InProcessClient) -> None:
        import httpx

        self._base = base
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=base._app), base_url="https://news.example.com")

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        return self._base._run(self.client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        self._base._run(self.client.aclose())


@dataclass
class LoggedIn:
    client: Visitor
    csrf: str

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.client.post(path, data={"csrf": self.csrf, **(data or {})}, **kwargs)


@dataclass
class Console:
    base: InProcessClient
    services: Any
    clock: Clock
    smtp: SmtpRecorder
    clients: list[Visitor] = field(default_factory=list)

    def client(self) -> Visitor:
        client = Visitor(self.base)
        self.clients.append(client)
        return client

    def log_in(self, client: Visitor, email: str, password: str = PASSWORD) -> Any:
        page = client.get("/admin/login")
        assert page.status_code == 200, page.text
        return client.post("/admin/login", data={**login_form_fields(page.text), "email": email, "password": password})

    def login(self, role: str) -> LoggedIn:
        client = self.client()
        answer = self.log_in(client, ACCOUNTS[role])
        assert answer.status_code == 303, answer.text
        return LoggedIn(client, csrf_of(client.get("/admin/account").text))


def cheap_accounts(services: Any) -> Accounts:
    """The accounts with argon2 at its lowest cost: the rules are the same, a login takes microseconds."""
    console = services.settings.console
    return Accounts(services.engine, services.clock, idle=console.session_idle, lifetime=console.session_lifetime,
                    hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@contextmanager
def console_over(tmp_path: Path, smtp: SmtpRecorder, clock: Clock, template: Path, *, mail_url: str, extra: str = "",
                 prepare: Callable[[Any], None] = lambda services: None) -> Iterator[Console]:
    """The app in-process over a copy of the migrated `template`, with one account per role; `prepare(services)`
    runs after the migration (articles, history, a fetcher of the test's own)."""
    import service
    from tests.security.conftest import EXTRA

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=sqlite_copy(template, tmp_path),
                                          mail_url=mail_url, extra=EXTRA + extra), {})
    services = service.Components(settings, clock=clock)
    services.accounts = cheap_accounts(services)
    services.prepare_database(migrate=True)
    prepare(services)
    for role, email in ACCOUNTS.items():
        services.accounts.add(email, role, PASSWORD)
    with InProcessClient(service.create_app(services)) as base:
        site = Console(base, services, clock, smtp)
        yield site
        for client in site.clients:
            client.close()
    services.close()


@pytest.fixture
def console(tmp_path: Path, smtp_server: tuple[SmtpRecorder, str], clock: Clock,
            migrated_sqlite: Path) -> Iterator[Console]:
    from tests.security.conftest import stored_article

    smtp, smtp_url = smtp_server
    with console_over(tmp_path, smtp, clock, migrated_sqlite, mail_url=smtp_url, prepare=lambda services:
                      services.store.upsert_articles([stored_article(n) for n in (1, 2, 3)], source_id=None, now=NOW)) \
            as site:
        yield site


# --- the browser --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def console_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The demo (`make run`'s configuration and data) served on loopback, with one console account per role."""

    import service
    from feeds.fetch import HttpFetcher
    from feeds.ingest import ingest_all
    from tests.conftest import ROOT, ServerThread, demo_config

    folder = tmp_path_factory.mktemp("console")
    demo_config(folder)
    services = service.Components(load_settings(folder / "gazette.toml", {}))
    services.accounts = cheap_accounts(services)
    services.prepare_database(migrate=True)
    fetcher = HttpFetcher()
    ingest_all(services.settings.sources, store=services.store, fetcher=fetcher, clock=services.clock)
    fetcher.close()
    services.subscribers.import_csv((ROOT / "examples" / "subscribers.csv").read_text(encoding="utf-8"),
                                    known_categories=[c.slug for c in services.settings.categories],
                                    now=services.clock(), confirmed=True)
    for role, email in ACCOUNTS.items():
        services.accounts.add(email, role, PASSWORD)
    with ServerThread(service.create_app(services)) as server:
        server.services = services  # type: ignore[attr-defined]
        server.folder = folder  # type: ignore[attr-defined]
        server.sessions = {}  # type: ignore[attr-defined]
        yield server
    services.engine.dispose()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from tests.console.browser import launched_chromium

    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def console_browser(console_site: Any, chromium: Any) -> Iterator[Any]:
    from tests.console.browser import ConsoleBrowser

    opened = ConsoleBrowser(chromium, console_site.url, ACCOUNTS, PASSWORD, console_site.sessions)
    yield opened
    for context in chromium.contexts:
        context.close()
