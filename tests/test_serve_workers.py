"""`gazette serve --workers N` and `gazette scheduler` as real processes over loopback: every worker answers, one at a
time holds the scheduler lease, SIGTERM ends them all with exit 0 after each has written its buffered views; a web
node of `--no-scheduler` runs no job while `gazette scheduler` runs them all."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
from contextlib import ExitStack
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

from feeds import db
from feeds.core import database
from feeds.core.scheduling import leases, task_runs
from feeds.store import ArticleStore
from newsletter.settings import load_settings
from tests.conftest import (NOW, ROOT, free_port, gazette_command, migrated_sqlite_url, run_gazette, wait_healthy,
                            wait_until, write_config)
from tests.test_store import make_article

BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
SOURCE = ROOT / "tests" / "data" / "sources" / "atom_basic.atom"  # one article, "수출 …", in economy


def configured(tmp_path: Path) -> tuple[Path, sa.Engine, str]:
    """A database with one stored article (to count views of), a config with one file source polled at start, views
    buffered for an hour; the engine and the stored article's id."""
    database_url = migrated_sqlite_url(tmp_path)
    config = write_config(tmp_path / "gazette.toml", database_url=database_url, extra=f"""
        [views]
        flush_interval = "1h"
        flush_events = 100000

        [fetch]
        parse_processes = 0

        [[sources]]
        name = "wire"
        kind = "feed"
        path = "{SOURCE}"
        interval = "1h"
        category = "economy"
        """)
    engine = database.make_engine(database_url)
    settings = load_settings(config, {})
    store = ArticleStore(engine)
    store.sync_config(settings.categories, settings.sources, (), NOW)
    article = make_article(1)
    store.upsert_articles([article], source_id=None, now=NOW)
    return config, engine, article.id


def start(tmp_path: Path, name: str, args: list[str], stack: ExitStack) -> subprocess.Popen[bytes]:
    """`gazette ARGS` in its own session, logging to tmp_path/NAME.log; killed (group and all) if still running."""
    with open(tmp_path / f"{name}.log", "wb") as log:
        process = subprocess.Popen(gazette_command() + args, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)

    def kill() -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    stack.callback(kill)
    return process


def workers_started(tmp_path: Path, name: str, parent: subprocess.Popen[bytes], count: int) -> list[int]:
    """The pids of the parent's `count` workers, once every one has finished its start-up."""
    def started() -> list[int] | None:
        assert parent.poll() is None, (tmp_path / f"{name}.log").read_text(errors="replace")
        if (tmp_path / f"{name}.log").read_text(errors="replace").count("Application startup complete") < count:
            return None
        children = [pid for pid in _children(parent.pid) if b"spawn_main" in _cmdline(pid)]
        return children if len(children) == count else None
    return wait_until(started, 90, interval=0.2, message="the workers did not all start")


def _children(parent: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        if proc.name.isdigit() and int(stat[stat.rindex(")") + 2:].split()[1]) == parent:
            found.append(int(proc.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def server_side_owner(port: int, client: http.client.HTTPConnection, pids: list[int]) -> int | None:
    """Which of `pids` holds the server's end of `client`'s connection to `port` (from /proc/net/tcp and each
    process's descriptors): the worker that answers on it."""
    client_port = client.sock.getsockname()[1]
    wanted = f"0100007F:{port:04X} 0100007F:{client_port:04X}"
    inode = next((line.split()[9] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                  if " ".join(line.split()[1:3]) == wanted), None)
    if inode is None:
        return None
    for pid in pids:
        try:
            if any(os.readlink(fd) == f"socket:[{inode}]" for fd in Path(f"/proc/{pid}/fd").iterdir()):
                return pid
        except OSError:
            continue
    return None


def one_connection_per_worker(port: int, pids: list[int], stack: ExitStack) -> dict[int, http.client.HTTPConnection]:
    """Open connections (each answering /healthz) until every worker holds one; the kernel hands each new
    connection to whichever worker accepts first, so this waits on that, not on a count."""
    held: dict[int, http.client.HTTPConnection] = {}

    def every_worker_holds_one() -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        stack.callback(connection.close)
        assert get(connection, "/healthz")[0] == 200
        owner = server_side_owner(port, connection, pids)
        if owner is not None and owner not in held:
            held[owner] = connection
        return len(held) == len(pids)
    wait_until(every_worker_holds_one, 60, interval=0.01, message=f"not every worker answered (held: {list(held)})")
    return held


def get(connection: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read()


def post_view(connection: http.client.HTTPConnection, article_id: str, visitor: str) -> int:
    # From 127.0.0.1, a trusted proxy by default: each X-Forwarded-For is its own visitor.
    connection.request("POST", f"/v/{article_id}", headers={"User-Agent": f"{BROWSER} {visitor}",
                                                            "X-Forwarded-For": visitor, "Content-Length": "0"})
    response = connection.getresponse()
    response.read()
    return response.status


def total_views(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(db.article_views.c.views), 0))).scalar())


def lease_holders(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return [int(h.split(":")[1]) for h in conn.execute(sa.select(leases.c.holder).where(leases.c.name == "scheduler")).scalars()]


def ingest_runs(engine: sa.Engine) -> list[tuple[str, int]]:
    """(status, holder's pid) of each run of the source's job."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(task_runs.c.status, task_runs.c.holder).where(task_runs.c.task == "ingest:wire"))
        return [(status, int(holder.split(":")[1])) for status, holder in rows]


def finished_runs(engine: sa.Engine) -> list[tuple[str, int]] | None:
    runs = ingest_runs(engine)
    return runs if runs and all(status != "running" for status, _ in runs) else None


def stop(process: subprocess.Popen[bytes], log: Path) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"did not stop on SIGTERM:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


@pytest.mark.slow
def test_two_workers_answer_share_one_lease_and_flush_their_views_on_sigterm(tmp_path: Path, stack: ExitStack) -> None:
    config, engine, article_id = configured(tmp_path)
    stack.callback(engine.dispose)
    port = free_port()
    parent = start(tmp_path, "serve", ["--config", str(config), "serve", "--port", str(port), "--workers", "2"], stack)
    wait_healthy(port, parent, 90)
    pids = workers_started(tmp_path, "serve", parent, 2)
    log = tmp_path / "serve.log"
    assert "2 workers without [queue] redis_url" in log.read_text(errors="replace")

    # One worker at a time holds the lease: the start-up poll of the source ran once, in that worker.
    holder = wait_until(lambda: lease_holders(engine), 30)[0]
    assert holder in pids
    assert wait_until(lambda: finished_runs(engine), 30) == [("ok", holder)]

    connections = one_connection_per_worker(port, pids, stack)
    # Both serve the ingested article, the same bytes.
    def feeds_agree() -> bool:
        bodies = {get(connection, "/feeds/all.rss") for connection in connections.values()}
        return len(bodies) == 1 and next(iter(bodies))[0] == 200 and "수출".encode() in next(iter(bodies))[1]
    wait_until(feeds_agree, 30, interval=0.1, message="the workers did not serve the same feed with the article")

    visitors = 0
    for pid, connection in connections.items():
        for _ in range(40):
            assert post_view(connection, article_id, f"10.0.{visitors // 250}.{visitors % 250 + 1}") == 204
            visitors += 1
    assert total_views(engine) == 0  # each worker holds its views in its buffer: the flush interval is an hour

    assert "uvicorn.access" not in log.read_text(errors="replace")  # no per-request log unless --access-log
    assert stop(parent, log) == 0
    assert all(not Path(f"/proc/{pid}").exists() or b"spawn_main" not in _cmdline(pid) for pid in pids)
    assert total_views(engine) == visitors  # each worker wrote its own buffer as it stopped
    assert lease_holders(engine) == []  # released at once, for another process to take


@pytest.mark.slow
def test_web_nodes_without_a_scheduler_and_the_scheduler_command(tmp_path: Path, stack: ExitStack) -> None:
    config, engine, _ = configured(tmp_path)
    stack.callback(engine.dispose)
    port = free_port()
    web = start(tmp_path, "serve", ["--config", str(config), "serve", "--port", str(port), "--workers", "2",
                                    "--no-scheduler"], stack)
    wait_healthy(port, web, 90)
    workers_started(tmp_path, "serve", web, 2)
    assert lease_holders(engine) == [] and ingest_runs(engine) == []  # both web workers are up; neither leads

    scheduler = start(tmp_path, "scheduler", ["--config", str(config), "scheduler"], stack)
    assert wait_until(lambda: lease_holders(engine), 60, interval=0.1) == [scheduler.pid]
    assert wait_until(lambda: finished_runs(engine), 30, interval=0.1) == [("ok", scheduler.pid)]

    # The web nodes serve what the scheduler's job stored, at their next refresh.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    stack.callback(connection.close)
    wait_until(lambda: "수출".encode() in get(connection, "/feeds/economy.json")[1], 30, interval=0.1)

    assert stop(scheduler, tmp_path / "scheduler.log") == 0
    assert lease_holders(engine) == []
    assert stop(web, tmp_path / "serve.log") == 0


def test_help_names_the_options(tmp_path: Path) -> None:
    serve = run_gazette(["serve", "--help"], cwd=tmp_path, expect=0).stdout
    for option in ("--workers", "--no-scheduler", "--forwarded-allow-ips", "--access-log"):
        assert option in serve
    assert "Run only the scheduler" in run_gazette(["scheduler", "--help"], cwd=tmp_path, expect=0).stdout
    assert run_gazette(["serve", "--workers", "0"], cwd=tmp_path).returncode == 2


@pytest.mark.slow
def test_two_workers_with_redis_count_one_visitor_once(tmp_path: Path, stack: ExitStack,  # type: ignore[no-untyped-def]
                                                       monkeypatch) -> None:
    """`serve --workers 2` with [queue] redis_url: the same visitor's view reaching each worker counts once."""
    import uuid

    from feeds.core.shared import SharedState
    from tests.test_shared_state import forget, redis_or_skip

    redis_url = redis_or_skip()
    config, engine, article_id = configured(tmp_path)
    stack.callback(engine.dispose)
    with config.open("a", encoding="utf-8") as f:
        f.write(f'\n[queue]\nredis_url = "{redis_url}"\n')
    secret = f"test-{uuid.uuid4().hex}"  # a site of its own on the shared Redis
    monkeypatch.setenv("GAZETTE_SECRETS_SIGNING_KEY", secret)
    stack.callback(lambda: forget(SharedState(redis_url, secret=secret)))
    port = free_port()
    parent = start(tmp_path, "serve", ["--config", str(config), "serve", "--port", str(port), "--workers", "2",
                                       "--no-scheduler"], stack)
    wait_healthy(port, parent, 90)
    pids = workers_started(tmp_path, "serve", parent, 2)
    connections = one_connection_per_worker(port, pids, stack)
    for connection in connections.values():  # one visitor, once through each worker
        assert post_view(connection, article_id, "198.51.100.23") == 204
    assert post_view(next(iter(connections.values())), article_id, "198.51.100.24") == 204  # another visitor
    assert stop(parent, tmp_path / "serve.log") == 0
    assert "without [queue] redis_url" not in (tmp_path / "serve.log").read_text(errors="replace")
    assert total_views(engine) == 2, "the first visitor counted once by two workers, and the other"
