"""Scheduling: APScheduler 3 with its SQLAlchemy job store, run by one process at a time, and the two tables
that make it safe (declared here, on the shared layer's own metadata; created by the content side's base migration,
since every database has that branch).

Several `gazette serve` processes may share one database. APScheduler 3 does not coordinate them: each would
run every job (every worker would send the digest). Two guards prevent that:

1. a lease row (`leases`): only the process holding it runs a scheduler; it renews the lease every third of
   its time to live, and another process takes over when it lapses (a crashed holder);
2. a run row (`task_runs`, primary key task + scheduled time): `TaskExecutor` claims each scheduled run before
   running it, so even two schedulers that both believe they lead run a given firing once.

Jobs are stored as `run_task(key)`: nothing but the key is pickled. `TaskExecutor` looks the key up in the
tasks this process was built with (a source's ingest, an edition's send), so the job store never holds code
or settings.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator, Mapping, Sequence
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.base import BaseExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from sqlalchemy import Column, Engine, String, Table, Text, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from .database import UTCDateTime, new_metadata
from .errors import GazetteError
from .loops import BackgroundLoop

log = logging.getLogger(__name__)

SCHEDULER_LEASE = "scheduler"

metadata = new_metadata()

# A lease so that only one process runs the scheduler (and one sender an edition), and one row per job run so that
# a run can never happen twice even if two processes briefly both believe they hold the lease.
leases = Table(
    "leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

task_runs = Table(
    "task_runs", metadata,
    Column("task", String(200), primary_key=True),
    Column("scheduled_at", UTCDateTime, primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("status", String(16), nullable=False),
    Column("detail", Text, nullable=True),
)

# Reserved for APScheduler's SQLAlchemyJobStore, which creates and owns it (no migration declares it).
SCHEDULER_JOBS_TABLE = "apscheduler_jobs"


class SchedulerError(GazetteError):
    """A job reached a place it should not, or the scheduler could not start."""


Task = Callable[[datetime], "str | None"]


@dataclass(frozen=True)
class TaskSpec:
    """One job: `key` is its id in the job store, `run(scheduled_at)` does the work and returns a detail."""

    key: str
    name: str
    trigger: BaseTrigger
    run: Task
    misfire_grace: timedelta
    start_now: bool = False  # first run as soon as the scheduler starts (sources), else at the trigger


class TaskTable(Mapping[str, "Task"]):
    """The tasks an executor runs, by key: replaced whole when the jobs are reloaded (a source added in the
    console), so a running scheduler runs the new ones without being rebuilt."""

    def __init__(self, specs: Sequence[TaskSpec] = ()) -> None:
        self._tasks: dict[str, Task] = {spec.key: spec.run for spec in specs}

    def replace(self, specs: Sequence[TaskSpec]) -> None:
        self._tasks = {spec.key: spec.run for spec in specs}  # one assignment: a reader sees the old or the new

    def __getitem__(self, key: str) -> Task:
        return self._tasks[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)


@dataclass(frozen=True)
class Reload:
    """Jobs that change while the process runs: `specs()` is read again every `every`, and the leader's stored jobs
    and its `tasks` are made to match (new jobs start at once, removed ones stop, changed triggers are replaced)."""

    specs: Callable[[], Sequence[TaskSpec]]
    tasks: TaskTable
    every: timedelta


def run_task(key: str) -> None:
    """The callable stored with every job; TaskExecutor runs this process's task for `key` instead."""
    raise SchedulerError(f"job {key!r} must run on Gazette's TaskExecutor, which holds the tasks")


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def is_dead_local(holder: str) -> bool:
    """True if `holder` (from `holder_id`) names a process of this host that no longer runs."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Lease:
    """A named lease in the database: at most one holder until `expires_at`."""

    def __init__(self, engine: Engine, name: str, holder: str, ttl: timedelta, clock: Callable[[], datetime]) -> None:
        self._engine, self.name, self.holder, self.ttl, self._clock = engine, name, holder, ttl, clock

    def acquire(self) -> bool:
        """Take the lease if it is free or lapsed, renew it if ours; False if another process holds it."""
        now = self._clock()
        t = leases
        with self._engine.begin() as conn:
            taken = conn.execute(update(t).where(t.c.name == self.name, or_(t.c.holder == self.holder,
                                                                              t.c.expires_at < now))
                                 .values(holder=self.holder, expires_at=now + self.ttl)).rowcount
        if taken:
            return True
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(t).values(name=self.name, holder=self.holder, expires_at=now + self.ttl))
        except IntegrityError:
            return self._take_from_dead(now)
        return True

    def _take_from_dead(self, now: datetime) -> bool:
        """A holder on this host whose process is gone (killed) cannot renew: take over without waiting out the
        lease. Holders on other hosts are only ever waited out."""
        t = leases
        with self._engine.connect() as conn:
            current = conn.execute(select(t.c.holder).where(t.c.name == self.name)).scalar()
        if current is None or not is_dead_local(current):
            return False
        with self._engine.begin() as conn:
            return bool(conn.execute(update(t).where(t.c.name == self.name, t.c.holder == current)
                                     .values(holder=self.holder, expires_at=now + self.ttl)).rowcount)

    def release(self) -> None:
        t = leases
        with self._engine.begin() as conn:
            conn.execute(t.delete().where(t.c.name == self.name, t.c.holder == self.holder))


class RunLog:
    """The `task_runs` table: claim a scheduled run once, then record how it ended."""

    def __init__(self, engine: Engine, holder: str, clock: Callable[[], datetime]) -> None:
        self._engine, self._holder, self._clock = engine, holder, clock

    def claim(self, task: str, scheduled_at: datetime) -> bool:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(task_runs).values(task=task, scheduled_at=scheduled_at, holder=self._holder,
                                                         started_at=self._clock(), status="running"))
        except IntegrityError:
            return False
        return True

    def finish(self, task: str, scheduled_at: datetime, status: str, detail: str | None) -> None:
        t = task_runs
        with self._engine.begin() as conn:
            conn.execute(update(t).where(t.c.task == task, t.c.scheduled_at == scheduled_at)
                         .values(status=status, detail=(detail or "")[:4000], finished_at=self._clock()))


class TaskExecutor(BaseExecutor):
    """Runs stored jobs by key on a thread pool, each scheduled run at most once across processes."""

    def __init__(self, tasks: Mapping[str, Task], runs: RunLog, clock: Callable[[], datetime], max_workers: int = 4) -> None:
        super().__init__()
        self._tasks = tasks if isinstance(tasks, TaskTable) else dict(tasks)  # a TaskTable: kept live, reloaded
        self._runs = runs
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="gazette-task")

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        future = self._pool.submit(self._run, job, run_times)

        def done(f: Any) -> None:
            if f.exception() is not None:
                self._run_job_error(job.id, f.exception(), f.exception().__traceback__)
            else:
                self._run_job_success(job.id, f.result())

        future.add_done_callback(done)

    def _run(self, job: Any, run_times: list[datetime]) -> list[JobExecutionEvent]:
        key = job.args[0] if job.args else job.id
        events = []
        for run_time in run_times:
            late = self._clock() - run_time
            if job.misfire_grace_time is not None and late > timedelta(seconds=job.misfire_grace_time):
                log.warning("job %s scheduled at %s missed by %s; skipped", key, run_time.isoformat(), late)
                events.append(JobExecutionEvent(EVENT_JOB_MISSED, job.id, job._jobstore_alias, run_time))
                continue
            task = self._tasks.get(key)
            if task is None:
                log.error("job %s has no task in this process (configuration changed?)", key)
                continue
            if not self._runs.claim(key, run_time):
                log.info("job %s at %s already ran in another process", key, run_time.isoformat())
                continue
            try:
                detail = task(run_time)
            except Exception as exc:  # recorded and reported; the scheduler goes on
                log.exception("job %s failed", key)
                self._runs.finish(key, run_time, "error", f"{type(exc).__name__}: {exc}")
                events.append(JobExecutionEvent(EVENT_JOB_ERROR, job.id, job._jobstore_alias, run_time,
                                                exception=exc, traceback=None))
            else:
                self._runs.finish(key, run_time, "ok", detail)
                events.append(JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, run_time, retval=None))
        return events

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait)


def build_scheduler(engine: Engine, specs: Sequence[TaskSpec] | TaskTable, *, timezone_: ZoneInfo, runs: RunLog,
                    clock: Callable[[], datetime]) -> BackgroundScheduler:
    """`specs` as a `TaskTable` when the jobs are reloaded (`Reload`): the executor reads that table as it changes."""
    tasks = specs if isinstance(specs, TaskTable) else {spec.key: spec.run for spec in specs}
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=SCHEDULER_JOBS_TABLE)},
        executors={"default": TaskExecutor(tasks, runs, clock)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=timezone_,
    )


def sync_jobs(scheduler: BackgroundScheduler, specs: Sequence[TaskSpec], now: datetime) -> None:
    """Make the stored jobs match `specs`, keeping the stored next run of unchanged jobs.

    Keeping it matters: a digest due at 07:00 while no process ran is still due when one starts at 07:02
    (within its misfire grace), instead of being rescheduled to tomorrow.
    """
    wanted = {spec.key: spec for spec in specs}
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            log.info("removing job %s: no longer configured", job.id)
            job.remove()
    for spec in specs:
        existing = scheduler.get_job(spec.key)
        grace = int(spec.misfire_grace.total_seconds())
        if existing is not None and str(existing.trigger) == str(spec.trigger) and existing.misfire_grace_time == grace:
            continue
        options: dict[str, Any] = {}
        if spec.start_now and existing is None:
            options["next_run_time"] = now + timedelta(seconds=1)
        scheduler.add_job(run_task, spec.trigger, args=[spec.key], id=spec.key, name=spec.name,
                          misfire_grace_time=grace, replace_existing=True, **options)


class SchedulerRunner:
    """Runs the scheduler in this process while it holds the lease; otherwise waits to take over."""

    def __init__(self, make_scheduler: Callable[[], BackgroundScheduler], specs: Sequence[TaskSpec], lease: Lease,
                 clock: Callable[[], datetime], *, reload: Reload | None = None) -> None:
        self._make_scheduler = make_scheduler
        self._specs = specs
        self._lease = lease
        self._clock = clock
        self._reload = reload
        self._reloaded_at: float | None = None  # time.monotonic() of the last reload
        self._scheduler: BackgroundScheduler | None = None
        step = max(lease.ttl / 3, timedelta(seconds=0.2))
        if reload is not None:
            step = min(step, max(reload.every, timedelta(seconds=0.2)))
        # A failed lease check (a database hiccup) drops leadership to be safe; the next round tries again.
        self._loop = BackgroundLoop("gazette-lease", self._step, step, failure="scheduler lease check failed",
                                    logger=log)

    @property
    def is_leader(self) -> bool:
        return self._scheduler is not None

    def start(self) -> None:
        self._loop.start()

    def _step(self) -> None:
        try:
            self._follow_lease()
        except Exception:
            self._stop_scheduler()
            raise

    def _follow_lease(self) -> None:
        if self._lease.acquire():
            if self._scheduler is None:
                if self._reload is not None:  # what holds now, not what held when this process started
                    self._specs = self._reload.specs()
                    self._reload.tasks.replace(self._specs)
                    self._reloaded_at = time.monotonic()
                log.info("this process (%s) leads: starting the scheduler with %d jobs", self._lease.holder, len(self._specs))
                scheduler = self._make_scheduler()
                scheduler.start(paused=True)
                sync_jobs(scheduler, self._specs, self._clock())
                scheduler.resume()
                self._scheduler = scheduler
            elif self._reload is not None and time.monotonic() - (self._reloaded_at or 0) >= self._reload.every.total_seconds():
                self._reload_jobs(self._scheduler, self._reload)
        elif self._scheduler is not None:
            log.warning("lost the scheduler lease; stopping the scheduler in this process")
            self._stop_scheduler()

    def _reload_jobs(self, scheduler: BackgroundScheduler, reload: Reload) -> None:
        """The jobs as they stand now; a failure to read them keeps the jobs as they were, and the lease."""
        self._reloaded_at = time.monotonic()
        try:
            specs = reload.specs()
        except Exception:
            log.exception("reloading the scheduled jobs failed; keeping the %d jobs as they were", len(self._specs))
            return
        if [(s.key, str(s.trigger)) for s in specs] != [(s.key, str(s.trigger)) for s in self._specs]:
            log.info("jobs changed: %d now (%d before)", len(specs), len(self._specs))
        reload.tasks.replace(specs)
        sync_jobs(scheduler, specs, self._clock())
        self._specs = specs

    def _stop_scheduler(self) -> None:
        if self._scheduler is not None:
            scheduler, self._scheduler = self._scheduler, None
            scheduler.shutdown(wait=False)

    def stop(self) -> None:
        self._loop.stop()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
            self._lease.release()

