"""The scheduler: the database lease, once-only runs, and two real `gazette serve` processes on one database."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from apscheduler.triggers.interval import IntervalTrigger

from feeds.core import database
from feeds.core.scheduling import (Lease, RunLog, SchedulerError, SchedulerRunner, TaskSpec, build_scheduler, run_task,
                                   task_runs)
from tests.conftest import DATA, NOW, Clock, free_port, gazette_command, migrate, wait_healthy, write_config


def test_lease_is_held_by_one_holder_until_it_lapses(engine: sa.Engine) -> None:
    clock = Clock()
    a = Lease(engine, "scheduler", "a", timedelta(seconds=30), clock)
    b = Lease(engine, "scheduler", "b", timedelta(seconds=30), clock)
    assert a.acquire() and not b.acquire()
    clock.now += timedelta(seconds=20)
    assert a.acquire()  # renewed: good for 30 s from now
    clock.now += timedelta(seconds=20)
    assert not b.acquire()
    clock.now += timedelta(seconds=11)  # a stopped renewing: lapsed
    assert b.acquire() and not a.acquire()
    b.release()
    assert a.acquire()


def test_a_scheduled_run_is_claimed_once(engine: sa.Engine) -> None:
    clock = Clock()
    first, second = RunLog(engine, "a", clock), RunLog(engine, "b", clock)
    assert first.claim("ingest:wire", NOW)
    assert not second.claim("ingest:wire", NOW)
    assert second.claim("ingest:wire", NOW + timedelta(minutes=10))
    first.finish("ingest:wire", NOW, "ok", "wire: new")
    with engine.connect() as conn:
        row = conn.execute(sa.select(task_runs).where(task_runs.c.scheduled_at == NOW)).one()
    assert (row.holder, row.status, row.detail) == ("a", "ok", "wire: new")


def test_stored_job_function_refuses_to_run_outside_the_executor() -> None:
    with pytest.raises(SchedulerError, match="TaskExecutor"):
        run_task("ingest:wire")


def test_runner_runs_tasks_and_a_second_runner_waits(tmp_path: Path) -> None:
    engine = database.make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    migrate(engine)
    clock = lambda: datetime.now(timezone.utc)  # noqa: E731  (a real scheduler needs real time)
    ran: list[tuple[str, datetime]] = []
    spec = TaskSpec(key="tick", name="tick", trigger=IntervalTrigger(seconds=1), misfire_grace=timedelta(seconds=30),
                    run=lambda at: ran.append(("tick", at)) or "ok", start_now=True)

    def runner(holder: str) -> SchedulerRunner:
        runs = RunLog(engine, holder, clock)
        return SchedulerRunner(lambda: build_scheduler(engine, [spec], timezone_=timezone.utc, runs=runs, clock=clock),
                               [spec], Lease(engine, "scheduler", holder, timedelta(seconds=2), clock), clock)

    from tests.conftest import wait_until

    one, two = runner("one"), runner("two")
    one.start()
    wait_until(lambda: one.is_leader, 15, message="the first runner did not take the lease")
    two.start()
    wait_until(lambda: len(ran) >= 3, 15, message="fewer than 3 runs in 15 s")
    assert one.is_leader and not two.is_leader
    one.stop()
    two.stop()
    assert len(ran) >= 3
    assert len({at for _, at in ran}) == len(ran)  # no firing ran twice
    engine.dispose()


def _serve(config: Path, cwd: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(gazette_command() + ["--config", str(config), "serve", "--port", str(port)], cwd=cwd,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _runs(engine: sa.Engine) -> list[sa.Row]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(task_runs).where(task_runs.c.task == "ingest:wire")
                                 .order_by(task_runs.c.scheduled_at)))


@pytest.mark.slow
def test_two_serve_processes_run_each_job_once_and_take_over(tmp_path: Path, database_url: str) -> None:
    """Real `gazette serve` processes: the point is two processes sharing one database, and a SIGKILL."""
    config = write_config(tmp_path / "gazette.toml", database_url=database_url, lease_ttl="2s", extra=f"""
        [[sources]]
        name = "wire"
        kind = "feed"
        path = "{DATA / 'sources' / 'atom_basic.atom'}"
        interval = "1s"
        category = "economy"
        """)
    subprocess.run(gazette_command() + ["--config", str(config), "db", "upgrade"], cwd=tmp_path, check=True,
                   capture_output=True)
    ports = free_port(), free_port()
    logs = tmp_path / "a.log", tmp_path / "b.log"
    first = _serve(config, tmp_path, ports[0], logs[0])
    processes = [first]
    try:
        wait_healthy(ports[0], first)
        second = _serve(config, tmp_path, ports[1], logs[1])
        processes.append(second)
        wait_healthy(ports[1], second)
        from tests.conftest import wait_until

        engine = database.make_engine(database_url)
        wait_until(lambda: len(_runs(engine)) >= 6, 30, interval=0.3, message="fewer than 6 runs in 30 s")
        runs = _runs(engine)
        assert len(runs) >= 6
        holders = {r.holder for r in runs}
        assert len(holders) == 1, f"both processes ran jobs: {holders}"
        leader_pid = int(next(iter(holders)).split(":")[1])
        leader = next(p for p in processes if p.pid == leader_pid)
        follower = next(p for p in processes if p is not leader)

        # Every run that executed logged one line; as many lines as runs means nothing ran twice. A run is marked
        # done and logs its line one after the other: wait until the lines have caught up with the runs marked done.
        def executed() -> int:
            return sum(log.read_text(errors="replace").count("source wire:") for log in logs)

        done = [r for r in _runs(engine) if r.status == "ok"]
        wait_until(lambda: executed() >= len(done), 10, interval=0.1,
                   message="the log has fewer lines than runs marked done")
        assert executed() <= len(_runs(engine))

        os.killpg(leader.pid, signal.SIGKILL)  # a crash: no lease release
        leader.wait(timeout=10)
        killed_at = datetime.now(timezone.utc)
        wait_until(lambda: len([r for r in _runs(engine) if r.started_at > killed_at]) >= 2, 30, interval=0.3,
                   message="the second process did not take over")
        after = [r for r in _runs(engine) if r.started_at > killed_at]
        assert {int(r.holder.split(":")[1]) for r in after} == {follower.pid}
        engine.dispose()

        follower.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells why it stopped
        assert follower.wait(timeout=20) in (0, -signal.SIGTERM)
        follower_log = logs[processes.index(follower)].read_text(errors="replace")
        assert "Application shutdown complete" in follower_log and "Scheduler has been shut down" in follower_log
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
