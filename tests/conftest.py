"""Shared fixtures: settings written as real TOML, a store on SQLite and on PostgreSQL, a fixed clock.

PostgreSQL: $GAZETTE_TEST_POSTGRES_URL, else the server on 127.0.0.1:5432 (database `test`, trust auth).
Each test gets its own schema, dropped afterwards. Where no server answers, those tests skip and say so.
"""

from __future__ import annotations

import re

import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

from feeds import db
from newsletter.settings import Settings, load_settings
from feeds.store import ArticleStore
from newsletter import db as newsletter_db

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
PG_URL = os.environ.get("GAZETTE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 11, 25, 0, 0, tzinfo=timezone.utc)  # 09:00 KST
MIGRATIONS = (db.MIGRATIONS, newsletter_db.MIGRATIONS)  # both sides' branches: the whole schema, as service.py has it

BASE_CONFIG = """
[site]
name = "한빛일보"
base_url = "https://news.example.com"

[database]
url = "{database_url}"

[mail]
url = "{mail_url}"
from = "한빛일보 <news@example.com>"
postal_address = "한빛시 중앙로 1"

[secrets]
signing_key = "test-signing-key-0123456789"

[scheduler]
lease_ttl = "{lease_ttl}"

[[categories]]
slug = "politics"
name = "정치"

[[categories]]
slug = "economy"
name = "경제"
"""


def migrate(engine: sa.Engine) -> None:
    """Bring the database to the whole schema (every side's head), as `gazette db upgrade` does."""
    db.migrate(engine, MIGRATIONS)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def write_config(path: Path, *, database_url: str, mail_url: str = "maildir://var/outbox", extra: str = "",
                 lease_ttl: str = "30s") -> Path:
    path.write_text(BASE_CONFIG.format(database_url=database_url, mail_url=mail_url, lease_ttl=lease_ttl)
                    + textwrap.dedent(extra), encoding="utf-8")
    return path


def postgres_reachable() -> str | None:
    """None if reachable, else the reason."""
    try:
        engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                                  connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure means: not reachable here
        return f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}"
    return None


_POSTGRES_UNREACHABLE = postgres_reachable()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if _POSTGRES_UNREACHABLE:
        pytest.skip(_POSTGRES_UNREACHABLE)
    schema = f"gz_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to head once per session: tests start from a copy instead of replaying history."""
    path = tmp_path_factory.mktemp("template") / "gazette.db"
    engine = db.make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def sqlite_copy(template: Path, folder: Path) -> str:
    """A fresh, migrated SQLite database in `folder`; its URL."""
    target = folder / "gazette.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_copy(request.getfixturevalue("migrated_sqlite"), tmp_path)
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no schema yet, for migration tests (`database_url`'s SQLite copy is migrated already)."""
    return f"sqlite:///{tmp_path / 'empty.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = db.make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url,
                                      mail_url=f"maildir://{tmp_path / 'outbox'}"), environ={})


@pytest.fixture
def store(engine: sa.Engine, settings: Settings, clock: Clock) -> ArticleStore:
    store = ArticleStore(engine)
    store.sync_config(settings.categories, settings.sources, settings.partners, clock())
    return store


def gazette_command() -> list[str]:
    """The installed console script, as a user runs it."""
    script = shutil.which("gazette", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "service"]


def wait_healthy(port: int, process: "subprocess.Popen[bytes]", seconds: float = 30) -> None:
    """Wait until a `gazette serve` child answers /healthz; fail if it exits or never answers."""
    import time

    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "gazette serve exited early"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("gazette serve did not become healthy")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """An ASGI app served by uvicorn on a free loopback port, in a thread, for real HTTP in tests."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        import threading

        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ServerThread":
        import time

        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class SmtpRecorder:
    """An aiosmtpd handler that keeps every message, and answers with an error code when told to.

    `fail_rcpt` maps an address to the reply its RCPT gets ("450 4.2.0 mailbox busy", "550 5.1.1 no such user");
    `fail_times` limits how many times that happens per address (None: always).
    """

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.sessions = 0
        self.fail_rcpt: dict[str, str] = {}
        self.fail_times: dict[str, int] = {}
        self.is_pipelining = False  # advertise PIPELINING (aiosmtpd reads commands in order either way)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]
        self.sessions += 1
        session.host_name = hostname
        if self.is_pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        reply = self.fail_rcpt.get(address)
        if reply is not None and self.fail_times.get(address, 1) > 0:
            if address in self.fail_times:
                self.fail_times[address] -= 1
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"

    def to(self, address: str) -> list[bytes]:
        return [content for _, rcpts, content in self.messages if address in rcpts]


@pytest.fixture
def smtp_server() -> Iterator[tuple[SmtpRecorder, str]]:
    """A real SMTP server on 127.0.0.1 and the smtp:// URL that reaches it."""
    from aiosmtpd.controller import Controller

    recorder = SmtpRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield recorder, f"smtp://127.0.0.1:{controller.port}"
    controller.stop()


class InProcessClient:
    """The ASGI app in this process, over `httpx.ASGITransport`, with its lifespan (startup and shutdown) run, behind
    a synchronous face: `client.get(...)` as with `httpx.Client`. No port, no server; cookies are kept."""

    def __init__(self, app, base_url: str = "https://news.example.com") -> None:  # type: ignore[no-untyped-def]
        import asyncio
        import threading

        import httpx

        self._app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="in-process-app", daemon=True)
        self._thread.start()
        self._lifespan: dict[str, object] = {}
        self._run(self._startup())
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)

    def _run(self, coroutine):  # type: ignore[no-untyped-def]
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=60)

    async def _startup(self) -> None:
        import asyncio

        inbox: asyncio.Queue = asyncio.Queue()
        outbox: asyncio.Queue = asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        task = asyncio.ensure_future(self._app(scope, inbox.get, outbox.put))
        await inbox.put({"type": "lifespan.startup"})
        message = await outbox.get()
        assert message["type"] == "lifespan.startup.complete", message
        self._lifespan = {"inbox": inbox, "outbox": outbox, "task": task}

    async def _shutdown(self) -> None:
        await self._lifespan["inbox"].put({"type": "lifespan.shutdown"})  # type: ignore[attr-defined]
        await self._lifespan["outbox"].get()  # type: ignore[attr-defined]
        await self.client.aclose()

    def request(self, method: str, url: str, **kwargs):  # type: ignore[no-untyped-def]
        return self._run(self.client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs):  # type: ignore[no-untyped-def]
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs):  # type: ignore[no-untyped-def]
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, **kwargs):  # type: ignore[no-untyped-def]
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs):  # type: ignore[no-untyped-def]
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> "InProcessClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def filled(page_text: str) -> dict[str, object]:
    """What a browser sends from the page's form as it comes (hidden fields, boxes ticked by default), with the
    required consent ticked as a reader who subscribes must."""
    fields: dict[str, object] = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page_text))
    for name, value in re.findall(r'<input type="checkbox" name="([^"]+)" value="([^"]*)"[^>]*\bchecked', page_text):
        fields.setdefault(name, [])
        fields[name].append(value)  # type: ignore[union-attr]
    if 'name="privacy"' in page_text:
        fields["privacy"] = "1"
    return fields
