"""Shared fixtures: settings written as real TOML, a store on SQLite and on PostgreSQL, a fixed clock, the app and
the command line in-process, a recording SMTP server, and `wait_until` (tests wait on a condition, never a fixed time).

Databases are migrated once per test process (each pytest-xdist worker is one) and copied per test: SQLite copies
a migrated file; PostgreSQL creates each test's database from a migrated template database (`CREATE DATABASE ...
TEMPLATE`), dropped afterwards. PostgreSQL is $GAZETTE_TEST_POSTGRES_URL, else the server on 127.0.0.1:5432 (database
`test`, trust auth); where no server answers, those tests skip and say so. A user who may not create databases
gets a fresh schema per test instead, migrated each time (slower, same meaning).

Tests marked `alone` measure time: under pytest-xdist they run while no other test runs (`_share_the_machine`).
"""

from __future__ import annotations

import atexit
import fcntl
import functools
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import pytest
import sqlalchemy as sa

from feeds import db
from feeds.core import database
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


def demo_config(folder: Path) -> Path:
    """`make run`'s demo in `folder`: its files built (examples/build_demo.py) and examples/demo.toml written there
    with its database, files and outbox in `folder`."""
    import subprocess
    import sys

    subprocess.run([sys.executable, str(ROOT / "examples" / "build_demo.py"), str(folder / "var" / "demo")], check=True,
                   capture_output=True)
    text = (ROOT / "examples" / "demo.toml").read_text(encoding="utf-8")
    text = text.replace('"sqlite:///var/gazette.db"', f'"sqlite:///{folder}/gazette.db"')
    text = text.replace('path = "var/demo/', f'path = "{folder}/var/demo/')
    text = text.replace('"maildir://var/outbox"', f'"maildir://{folder}/outbox"')
    (folder / "gazette.toml").write_text(text, encoding="utf-8")
    return folder / "gazette.toml"


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, *, interval: float = 0.02,
               message: str = "the condition did not come true in time") -> Any:
    """Poll `condition` until it returns something truthy, and return that; fail once `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, message
        time.sleep(interval)
    return found


# --- PostgreSQL ----------------------------------------------------------------------------------------------

def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def postgres_reachable() -> str | None:
    """None if reachable, else the reason."""
    try:
        engine = sa.create_engine(_psycopg(PG_URL), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure means: not reachable here
        return f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}"
    return None


_POSTGRES_UNREACHABLE = postgres_reachable()


def _with_database(name: str) -> str:
    """PG_URL naming another database on the same server (its user, host and query kept)."""
    return sa.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def _with_schema(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@functools.cache
def _postgres_admin() -> sa.Engine:
    """A connection to PG_URL's database that runs CREATE/DROP DATABASE (they cannot run in a transaction)."""
    return sa.create_engine(_psycopg(PG_URL), isolation_level="AUTOCOMMIT")


def _unique(prefix: str) -> str:
    """A database or schema name no other test, worker or concurrent run of the suite uses."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{prefix}_{worker}_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def postgres_template(_postgres_dropper: ThreadPoolExecutor) -> Iterator[str | None]:
    """A database migrated once for this test process, to copy per test; None where this user may not create
    databases (then each test migrates a fresh schema)."""
    if _POSTGRES_UNREACHABLE:
        pytest.skip(_POSTGRES_UNREACHABLE)
    name = _unique("gz_template")
    try:
        with _postgres_admin().connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.ProgrammingError:  # no CREATEDB: fall back to a migrated schema per test
        yield None
        return
    engine = database.make_engine(_with_database(name))
    migrate(engine)
    engine.dispose()  # CREATE DATABASE ... TEMPLATE needs the template without connections
    yield name
    _postgres_dropper.submit(_drop_database, name)  # after every copy's drop: the dropper runs them in order


@pytest.fixture
def postgres_copies(request: pytest.FixtureRequest,
                    _postgres_dropper: ThreadPoolExecutor) -> Iterator[Callable[[], str]]:
    """A function returning the URL of a new, migrated PostgreSQL database on each call; all dropped after the test
    (WITH (FORCE): a server process a test started may still be connected)."""
    template = request.getfixturevalue("postgres_template")
    made: list[str] = []

    def copy() -> str:
        if template is None:
            url = _another_schema(request)
            engine = database.make_engine(url)
            migrate(engine)
            engine.dispose()
            return url
        name = _unique("gz")
        with _postgres_admin().connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        made.append(name)
        return _with_database(name)

    yield copy
    for name in made:
        _postgres_dropper.submit(_drop_database, name)


def _drop_database(name: str) -> None:
    with _postgres_admin().connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def _postgres_dropper() -> Iterator[ThreadPoolExecutor]:
    """Drops the tests' databases in the background (a drop takes the server a few hundred milliseconds that no
    test needs to wait for); the session waits for the last drop before it ends."""
    with ThreadPoolExecutor(1, thread_name_prefix="drop-database") as dropper:
        yield dropper


def _another_schema(request: pytest.FixtureRequest) -> str:
    schema = _unique("gz")
    with _postgres_admin().connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with _postgres_admin().connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))

    request.addfinalizer(drop)
    return _with_schema(schema)


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> str:
    """An empty PostgreSQL database (a fresh schema, dropped afterwards), for tests that migrate it themselves."""
    if _POSTGRES_UNREACHABLE:
        pytest.skip(_POSTGRES_UNREACHABLE)
    return _another_schema(request)


# --- SQLite --------------------------------------------------------------------------------------------------

@functools.cache
def sqlite_template() -> Path:
    """A SQLite database migrated to head once per test process: tests start from a copy instead of replaying
    history. It lives in its own folder, removed when the process ends."""
    folder = Path(tempfile.mkdtemp(prefix="gazette-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "gazette.db"
    engine = database.make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def migrated_sqlite() -> Path:
    return sqlite_template()


def sqlite_copy(template: Path, folder: Path, name: str = "gazette.db") -> str:
    """A fresh, migrated SQLite database `name` in `folder`; its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def migrated_sqlite_url(folder: Path, name: str = "g.db") -> str:
    """The URL of a new SQLite database `folder/name` at the current schema (a copy of the process's template)."""
    return sqlite_copy(sqlite_template(), folder, name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new database at the current schema: a SQLite copy, or a PostgreSQL database made from the template."""
    if request.param == "sqlite":
        return sqlite_copy(sqlite_template(), tmp_path)
    return request.getfixturevalue("postgres_copies")()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no schema yet, for migration tests (`database_url`'s copies are migrated already)."""
    return f"sqlite:///{tmp_path / 'empty.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """An engine on `database_url`, already at the current schema."""
    engine = database.make_engine(database_url)
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


def wait_healthy(port: int, process: "subprocess.Popen[bytes]", seconds: float = 60) -> None:
    """Wait until a `gazette serve` child answers /healthz; fail if it exits or never answers. A minute: a start
    takes a second or two, but a two-core machine running the suite's workers and their servers can take 20 s."""
    import httpx

    def answers() -> bool:
        assert process.poll() is None, "gazette serve exited early"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, seconds, interval=0.2, message="gazette serve did not become healthy")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """An ASGI app served by uvicorn on a free loopback port, in a thread, for real HTTP in tests."""

    def __init__(self, app, port: int | None = None) -> None:  # type: ignore[no-untyped-def]
        """`port`: one chosen beforehand (a site whose base_url must name its own port); else a free one."""
        import threading

        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ServerThread":
        self.thread.start()

        def started() -> bool:
            assert self.thread.is_alive(), "test server stopped before it started"
            return self.server.started

        wait_until(started, 30, message="test server did not start")  # 30 s: a loaded two-core machine
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
        self.times: list[float] = []  # when each message arrived (time.monotonic())
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
        self.times.append(time.monotonic())
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


# --- the command line in-process -----------------------------------------------------------------------------

@dataclass(frozen=True)
class CommandResult:
    """What `gazette ARGS` did: as `subprocess.CompletedProcess` names it."""

    args: Sequence[str]
    returncode: int
    stdout: str
    stderr: str


@contextmanager
def _process_state_kept() -> Iterator[None]:
    """Put back what a command changes for the whole process: the logging setup (root and uvicorn's loggers), the
    SIGTERM handler and the working directory."""
    loggers = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access")]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    sigterm = signal.getsignal(signal.SIGTERM)
    cwd = os.getcwd()
    try:
        yield
    finally:
        os.chdir(cwd)
        signal.signal(signal.SIGTERM, sigterm)
        for logger, handlers, level, propagate in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def run_gazette(args: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str | None] | None = None,
                expect: int | None = None, input: str | None = None) -> CommandResult:
    """`gazette ARGS` run in this process by click's CliRunner: the same command, options, output and exit code as
    the installed script, without starting Python again. `cwd` is the folder it runs in; `env` sets variables
    (None removes one) for the run; GAZETTE_* variables of the suite's own environment are removed, as a user's
    shell would not have them. With `expect`, a different exit code fails the test with the output; `input` is
    what standard input holds."""
    from click.testing import CliRunner

    import service

    environment: dict[str, str | None] = {name: None for name in os.environ if name.startswith("GAZETTE_")}
    environment.update(env or {})
    with _process_state_kept():
        if cwd is not None:
            os.chdir(cwd)
        result = CliRunner(env=environment).invoke(service.main, list(args), prog_name="gazette", input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    done = CommandResult(list(args), result.exit_code, result.stdout, result.stderr)
    if expect is not None:
        assert done.returncode == expect, f"{list(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


# --- tests that measure time run alone ------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _share_the_machine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Under pytest-xdist, a test marked `alone` (it measures latency or speed) waits until no other worker is in a
    test, and keeps the others waiting until it ends: its limits then mean what they say on this machine. Every
    other test shares the lock. Without xdist (one process) nothing is locked."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        yield
        return
    run_folder = tmp_path_factory.getbasetemp().parent  # the run's own folder, shared by its workers
    wanted = run_folder / f"alone-wanted-{worker}"  # this worker's `alone` test waits: start no other test meanwhile
    is_alone = request.node.get_closest_marker("alone") is not None
    with (run_folder / "alone.lock").open("a") as lock:
        if is_alone:
            wanted.touch()
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
            finally:
                wanted.unlink(missing_ok=True)
        else:
            wait_until(lambda: not any(run_folder.glob("alone-wanted-*")), timeout=900, interval=0.05,
                       message="a test marked `alone` waited or ran for fifteen minutes")
            fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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
