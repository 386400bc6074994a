"""The content side's object graph: the engine, the article store, the fetcher, the publisher, view counting,
partners and their pushes, built from the settings on first use and shared by the commands, the scheduler's jobs and
the web app of one process.

`newsletter.components.Components` extends it with the audience side's parts, and `service.py` builds that one: this
module only says how the content side's parts are made from its settings, and knows nothing of the audience side.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from pathlib import Path

from jinja2 import Environment
from sqlalchemy import Engine

import templates

from . import db
from .core import database
from .core.accounts import Accounts
from .core.audit import AuditLog
from .core.http import Access
from .core.limits import Limits
from .core.shared import SharedLimits, SharedState, SharedVisits
from .core.clock import Clock, utc_now
from .core.scheduling import (
    SCHEDULER_LEASE,
    Lease,
    RunLog,
    Reload,
    SchedulerRunner,
    TaskSpec,
    TaskTable,
    build_scheduler,
    holder_id,
)
from .core.work_queue import INGEST, TaskQueue, celery_app
from .errors import SchemaNotCurrent, UnknownName
from .events import EventLog
from .fetch import HostLimiter, HttpFetcher
from .ingest import (
    IngestPolicy,
    IngestResult,
    ignore_interrupts,
    ingest_all,
    ingest_source,
)
from .jobs import event_jobs, ingest_jobs, session_jobs
from .model import UpsertCounts
from .normalise import TRACKING_PARAMETERS
from .partners import PartnerStore
from .publish import FeedPublisher
from .push import PushQueue
from .readership import KnownArticles, Redirects, ViewCounter, ViewRules
from .settings import Settings, SourceSettings

INGEST_LEASE = timedelta(minutes=10)  # a poll takes at most [fetch] deadline per page; a dead worker's lapses
from .source_book import SourceBook
from .store import ArticleStore
from .webhook_worker import WebhookSender, webhook_policy
from .webhooks import WebhookStore


@dataclass
class ContentComponents:
    """The content side's parts of one process, each made on first use."""

    settings: Settings
    clock: Clock = field(default=utc_now)
    sleep: Callable[[float], None] = field(default=time.sleep)
    migrations: tuple[Path, ...] = (db.MIGRATIONS,)  # the Alembic branches this process's schema needs

    @cached_property
    def engine(self) -> Engine:
        return database.make_engine(self.settings.database_url)

    @cached_property
    def store(self) -> ArticleStore:
        return ArticleStore(self.engine)

    @cached_property
    def accounts(self) -> Accounts:
        console = self.settings.console
        return Accounts(self.engine, self.clock, idle=console.session_idle, lifetime=console.session_lifetime)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.engine, self.clock)

    @cached_property
    def access(self) -> Access:
        return Access(self.settings.admin_token, self.accounts, self.settings.signing_key)

    @cached_property
    def templates(self) -> Environment:
        return templates.environment()

    @cached_property
    def fetcher(self) -> HttpFetcher:
        f = self.settings.fetch
        return HttpFetcher(user_agent=f"Gazette/0.1 (+{self.settings.site.base_url})", max_bytes=f.max_bytes,
                           timeout=f.timeout.total_seconds(), deadline=f.deadline.total_seconds(),
                           limiter=HostLimiter(f.host_concurrency, f.host_delay))

    @cached_property
    def shared(self) -> SharedState | None:
        """The one Redis of `[queue] redis_url`, where every process keeps the state they share; None without it."""
        url = self.settings.queue.redis_url
        return SharedState(url, secret=self.settings.signing_key) if url else None

    @cached_property
    def limits(self) -> Limits:
        """The rate limiters (forms, sharing, the console's login, partner feeds): in Redis when there is one."""
        return SharedLimits(self.shared, self.clock) if self.shared is not None else Limits(self.clock)

    @cached_property
    def known_articles(self) -> KnownArticles:
        return KnownArticles(self.store)

    @cached_property
    def view_counter(self) -> ViewCounter:
        v = self.settings.views
        return ViewCounter(self.store, ViewRules(dedupe=v.dedupe, per_ip_cap=v.per_ip_cap, flush_interval=v.flush_interval,
                                                flush_events=v.flush_events), self.clock, self.known_articles,
                           shared=SharedVisits(self.shared) if self.shared is not None else None)

    @cached_property
    def redirects(self) -> Redirects:
        return Redirects(self.settings.signing_key, self.settings.site.base_url)

    @cached_property
    def partners(self) -> PartnerStore:
        return PartnerStore(self.engine, self.settings.site.timezone, [p.slug for p in self.settings.partners])

    @cached_property
    def pushes(self) -> PushQueue:
        return PushQueue(self.engine)

    @cached_property
    def webhooks(self) -> WebhookStore:
        return WebhookStore(self.engine)

    @cached_property
    def webhook_sender(self) -> WebhookSender:
        """Signed POSTs to the newsroom's endpoints: the worker's, and an admin's test event."""
        w = self.settings.webhooks
        return WebhookSender(self.webhooks, self.store, user_agent=f"Gazette/0.1 (+{self.settings.site.base_url})",
                             allow_private_network=w.allow_private_network, policy=webhook_policy(w.max_attempts),
                             clock=self.clock)

    @cached_property
    def publisher(self) -> FeedPublisher:
        return FeedPublisher(self.settings, self.store, self.clock)

    @cached_property
    def parse_pool(self) -> ProcessPoolExecutor | None:
        processes = self.settings.fetch.parse_processes
        return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=ignore_interrupts) if processes else None

    @cached_property
    def ingest_policy(self) -> IngestPolicy:
        f = self.settings.fetch
        return IngestPolicy(failure_limit=f.failure_limit, timezone=self.settings.site.timezone,
                            parse_pool=self.parse_pool, tracking=TRACKING_PARAMETERS | set(f.tracking_parameters))

    def close(self) -> None:
        if "work_queue" in self.__dict__ and self.work_queue is not None:
            self.work_queue.close()
            del self.__dict__["work_queue"]
        if "parse_pool" in self.__dict__ and self.parse_pool is not None:
            self.parse_pool.shutdown(wait=True, cancel_futures=True)
            del self.__dict__["parse_pool"]  # closing twice (a command, then its context) is harmless
        if "fetcher" in self.__dict__:
            self.fetcher.close()
        if "webhook_sender" in self.__dict__:
            self.webhook_sender.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
        if self.__dict__.get("shared") is not None:
            self.shared.close()  # type: ignore[union-attr]

    def prepare_database(self, *, migrate: bool) -> None:
        """Migrate (or insist that someone did), then make the stored configuration match the file."""
        if migrate:
            db.migrate(self.engine, self.migrations)
        elif not database.is_current(self.engine, self.migrations):
            raise SchemaNotCurrent("the database schema is not current: run `gazette db upgrade` first")
        s = self.settings
        self.store.sync_config(s.categories, s.sources, s.partners, self.clock())

    @cached_property
    def source_book(self) -> SourceBook:
        s = self.settings
        return SourceBook(self.engine, self.store, config_sources=s.sources, categories=s.categories,
                          allow_private_network=s.stored_sources_private_network, fetcher=self.fetcher,
                          policy=self.ingest_policy, clock=self.clock)

    def ingest(self, name: str, *, force: bool = True) -> IngestResult:
        """Poll one effective source (of the file or stored) by name, as it is defined now. The scheduler's call
        (`force=False`) of a source paused or deleted since the jobs were last reloaded is skipped."""
        entry = self.source_book.find(name)
        if entry is None or entry.source is None or (entry.is_paused and not force):
            if not force:
                return IngestResult(name, "skipped", UpsertCounts(), notes=("paused, deleted or not valid",))
            known = ", ".join(e.name for e in self.source_book.entries())
            raise UnknownName(f"unknown source {name!r}; configured: {known}" if entry is None
                              else f"source {name!r} is not valid: {entry.problem}")
        return ingest_source(entry.source, store=self.store, fetcher=self.fetcher, now=self.clock(),
                             policy=self.ingest_policy, force=force)

    @cached_property
    def work_queue(self) -> TaskQueue | None:
        """[queue] url: the Celery queue work is put on (source polls here, edition batches on the audience side)."""
        url = self.settings.queue.url
        return TaskQueue(celery_app(url)) if url else None

    def poll(self, name: str) -> str:
        """The scheduler's poll of a source: on a worker when there is a queue (the scheduler only enqueues), else
        here."""
        if self.work_queue is not None:
            self.work_queue.put(INGEST, name)
            return f"{name}: queued for a worker"
        return self.ingest(name, force=False).line()

    def poll_queued(self, name: str) -> str:
        """A worker's poll of a source: one at a time per source across every worker (a lease; a task delivered
        twice, or enqueued again while the last poll still runs, finds it held and does nothing)."""
        lease = Lease(self.engine, f"ingest:{name}"[:64], holder_id(), INGEST_LEASE, self.clock)
        if not lease.acquire():
            return f"{name}: being polled by another worker"
        try:
            return self.ingest(name, force=False).line()
        finally:
            lease.release()

    def ingest_many(self, sources: Sequence[SourceSettings],
                    on_result: Callable[[IngestResult], None]) -> list[IngestResult]:
        return ingest_all(sources, store=self.store, fetcher=self.fetcher, clock=self.clock, policy=self.ingest_policy,
                          workers=self.settings.fetch.workers, on_result=on_result)

    def task_specs(self) -> list[TaskSpec]:
        """The scheduled jobs of this side (a subclass adds its own): an ingest job per active source, the file's
        and the stored ones, read now."""
        return [*ingest_jobs(self.source_book.active(), self.settings.site.timezone, self.poll),
                *session_jobs(self.accounts.forget_ended, self.settings.site.timezone),
                *event_jobs(lambda: EventLog(self.engine).prune(self.clock()), self.settings.site.timezone)]

    def scheduler_runner(self) -> SchedulerRunner:
        """The scheduler of `task_specs()`, run by whichever process holds the lease, which reads them again every
        `[scheduler] reload` (sources added, changed, paused or deleted in the console)."""
        holder = holder_id()
        specs = self.task_specs()
        tasks = TaskTable(specs)
        runs = RunLog(self.engine, holder, self.clock)
        return SchedulerRunner(
            lambda: build_scheduler(self.engine, tasks, timezone_=self.settings.site.timezone, runs=runs,
                                    clock=self.clock),
            specs, Lease(self.engine, SCHEDULER_LEASE, holder, self.settings.scheduler_lease_ttl, self.clock), self.clock,
            reload=Reload(self.task_specs, tasks, self.settings.scheduler_reload))
