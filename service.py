"""Wiring only: settings -> store -> scheduler jobs -> web app -> CLI. No logic lives here.

`gazette` (the console script) is `main`: `serve` and `check` live here, the other commands in `feeds.cli` and
`newsletter.cli`, registered below. Every command loads the settings once, builds what it needs with `Services`,
and hands those to the packages; exit codes: 0 ok, 1 failure at run time, 2 bad usage or config.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Sequence
from zoneinfo import ZoneInfo

import click
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from fastapi import FastAPI
from jinja2 import Environment
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

import templates
from feeds import cli as feeds_cli
from feeds import db
from feeds import http as feeds_http
from feeds import metrics as feeds_metrics
from feeds.cli import config_option, services_of
from feeds.core import database
from feeds.core.clock import Clock, utc_now
from feeds.core.errors import ConfigError, GazetteError
from feeds.core.http import install_error_handlers
from feeds.core.scheduling import SCHEDULER_LEASE, Lease, RunLog, SchedulerRunner, TaskSpec, build_scheduler, holder_id
from feeds.fetch import HostLimiter, HttpFetcher
from feeds.ingest import IngestPolicy, IngestResult, ignore_interrupts, ingest_all, ingest_source
from feeds.logs import configure_logging, hold_logging, release_held, resolve_level
from feeds.normalise import TRACKING_PARAMETERS
from feeds.partners import PartnerStore
from feeds.publish import FeedPublisher, FeedRefresher
from feeds.push import PushQueue, PushWorker
from feeds.settings import Settings, SourceSettings
from feeds.store import ArticleStore
from feeds.views import KnownArticles, Redirects, ViewCounter, ViewRules
from feeds.websub import HubNotifier
from newsletter import api as newsletter_api
from newsletter import archive as newsletter_archive
from newsletter import cli as newsletter_cli
from newsletter import db as newsletter_db
from newsletter import sharing as newsletter_sharing
from newsletter import web as newsletter_web
from newsletter.bounces import FolderReport, IntakeRules, process_folder
from newsletter.deliveries import DeliveryStore
from newsletter.errors import DeliveryError
from newsletter.metrics import audience_metrics
from newsletter.notices import Notices, invite
from newsletter.preview import Plan, plan_edition, preview_edition
from newsletter.retry import RetryReport, retry_edition
from newsletter.edition_run import EditionRun, edition_run
from newsletter.send import SendReport, send_edition
from newsletter.timing import TICK, due_runs, is_zone, next_runs
from newsletter.signing import DkimSigner, load_signer
from newsletter.subscribers import SubscriberStore
from newsletter.tokens import Tokens
from newsletter.transport import make_transport
from newsletter.verp import TagCodec

log = logging.getLogger("gazette")

SOURCE_MISFIRE_GRACE = timedelta(minutes=5)
DIGEST_MISFIRE_GRACE = timedelta(hours=2)
RECONFIRM_EVERY = timedelta(days=730)  # 정보통신망법 §50⑧ with 시행령 §62-3: every two years
MIGRATIONS = (db.MIGRATIONS, newsletter_db.MIGRATIONS)  # every side's Alembic branch: the whole schema


@dataclass
class Services:
    """Everything a command needs, built from the settings on first use."""

    settings: Settings
    clock: Clock = field(default=utc_now)
    sleep: Callable[[float], None] = field(default=time.sleep)
    migrations: tuple[Path, ...] = MIGRATIONS

    @cached_property
    def engine(self) -> Engine:
        return db.make_engine(self.settings.database_url)

    @cached_property
    def store(self) -> ArticleStore:
        return ArticleStore(self.engine)

    @cached_property
    def subscribers(self) -> SubscriberStore:
        return SubscriberStore(self.engine, [edition.name for edition in self.settings.digests])

    @cached_property
    def deliveries(self) -> DeliveryStore:
        return DeliveryStore(self.engine)

    @cached_property
    def tokens(self) -> Tokens:
        return Tokens(self.settings.signing_key, self.clock)

    @cached_property
    def tags(self) -> TagCodec:
        return TagCodec(self.settings.signing_key, self.settings.mail.return_path)

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
    def known_articles(self) -> KnownArticles:
        return KnownArticles(self.store)

    @cached_property
    def view_counter(self) -> ViewCounter:
        v = self.settings.views
        return ViewCounter(self.store, ViewRules(dedupe=v.dedupe, per_ip_cap=v.per_ip_cap, flush_interval=v.flush_interval,
                                                flush_events=v.flush_events), self.clock, self.known_articles)

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
        if "parse_pool" in self.__dict__ and self.parse_pool is not None:
            self.parse_pool.shutdown(wait=True, cancel_futures=True)
            del self.__dict__["parse_pool"]  # closing twice (a command, then its context) is harmless
        if "fetcher" in self.__dict__:
            self.fetcher.close()
        if "engine" in self.__dict__:
            self.engine.dispose()

    @cached_property
    def publisher(self) -> FeedPublisher:
        return FeedPublisher(self.settings, self.store, self.clock)

    def prepare_database(self, *, migrate: bool) -> None:
        """Migrate (or insist that someone did), then make the stored configuration match the file."""
        if migrate:
            db.migrate(self.engine, self.migrations)
        elif not database.is_current(self.engine, self.migrations):
            raise click.ClickException("the database schema is not current: run `gazette db upgrade` first")
        s = self.settings
        self.store.sync_config(s.categories, s.sources, s.partners, self.clock())

    def ingest(self, name: str, *, force: bool = True) -> IngestResult:
        source = self.settings.source(name)
        assert source is not None
        return ingest_source(source, store=self.store, fetcher=self.fetcher, now=self.clock(),
                             policy=self.ingest_policy, force=force)

    def ingest_many(self, sources: Sequence[SourceSettings],
                    on_result: Callable[[IngestResult], None]) -> list[IngestResult]:
        return ingest_all(sources, store=self.store, fetcher=self.fetcher, clock=self.clock, policy=self.ingest_policy,
                          workers=self.settings.fetch.workers, on_result=on_result)

    @cached_property
    def notices(self) -> Notices:
        return Notices(self.settings, self.templates, self.tokens, self.clock,
                       lambda: make_transport(self.settings.mail), self.tags, self.signer)

    @cached_property
    def signer(self) -> DkimSigner | None:
        return load_signer(self.settings.mail)

    def send(self, edition_name: str, scheduled_at: datetime, *, everyone: bool = False, dry_run: bool = False,
             progress: Callable[[str], None] = lambda outcome: None) -> SendReport:
        edition = self.settings.edition(edition_name)
        assert edition is not None
        return send_edition(edition, scheduled_at=scheduled_at, run=self._edition_run(progress), everyone=everyone,
                            dry_run=dry_run)

    def _edition_run(self, progress: Callable[[str], None] = lambda outcome: None) -> EditionRun:
        return edition_run(self.settings, articles=self.store, subscribers=self.subscribers,
                           deliveries=self.deliveries, engine=self.engine,
                           transports=lambda: make_transport(self.settings.mail), templates=self.templates,
                           tokens=self.tokens, redirects=self.redirects, clock=self.clock, tags=self.tags,
                           signer=self.signer, sleep=self.sleep, progress=progress)

    def preview(self, edition_name: str, scheduled_at: datetime, email: str) -> dict[str, Any] | None:
        edition = self.settings.edition(edition_name)
        assert edition is not None
        return preview_edition(edition, scheduled_at=scheduled_at, run=self._edition_run(), email=email)

    def plan(self, edition_name: str, scheduled_at: datetime) -> Plan:
        edition = self.settings.edition(edition_name)
        assert edition is not None
        return plan_edition(edition, scheduled_at=scheduled_at, run=self._edition_run())

    def retry(self, edition_name: str, edition_id: int, scheduled_at: datetime) -> RetryReport:
        edition = self.settings.edition(edition_name)
        assert edition is not None
        return retry_edition(edition, edition_id, scheduled_at=scheduled_at, run=self._edition_run())

    def task_specs(self) -> list[TaskSpec]:
        s = self.settings
        specs = [TaskSpec(key=f"ingest:{source.name}", name=f"ingest {source.name}",
                          trigger=IntervalTrigger(seconds=int(source.interval.total_seconds()), timezone=s.site.timezone,
                                                  jitter=min(30, int(source.interval.total_seconds() * 0.1))),
                          run=lambda _at, name=source.name: self.ingest(name, force=False).line(),
                          misfire_grace=SOURCE_MISFIRE_GRACE, start_now=True)
                 for source in s.sources]
        if s.digests:  # every edition at its hour on each reader's own clock, whatever their zone
            specs.append(TaskSpec(key="digest:due", name="digest editions due in any reader's time zone",
                                  trigger=CronTrigger(minute=f"*/{int(TICK.total_seconds() // 60)}", timezone=UTC),
                                  run=lambda at: self.send_due(at), misfire_grace=SOURCE_MISFIRE_GRACE))
        if s.mail.bounce_folder is not None:
            specs.append(TaskSpec(key="bounces", name=f"bounces from {s.mail.bounce_folder}",
                                  trigger=IntervalTrigger(minutes=5, timezone=s.site.timezone),
                                  run=lambda _at: self.process_bounces(s.mail.bounce_folder).summary(),  # type: ignore[arg-type]
                                  misfire_grace=SOURCE_MISFIRE_GRACE, start_now=True))
        if s.digests:
            specs.append(TaskSpec(key="consent:reconfirm", name="advertising consent, asked again every two years",
                                  trigger=CronTrigger(hour=10, minute=30, timezone=s.site.timezone),  # not at night
                                  run=lambda _at: self.reconfirm_ads(), misfire_grace=DIGEST_MISFIRE_GRACE))
            specs.append(TaskSpec(key="digest:resume", name="resume digests (retries, night holds, interrupted runs)",
                                  trigger=IntervalTrigger(minutes=5, timezone=s.site.timezone),
                                  run=lambda _at: self.resume_editions(), misfire_grace=SOURCE_MISFIRE_GRACE))
        return specs

    def process_bounces(self, folder: Path) -> FolderReport:
        mail = self.settings.mail
        return process_folder(folder, self.subscribers, self.tokens, self.clock(), mail.hard_bounce_limit,
                              IntakeRules(self.tags, mail.unsubscribe_address, mail.complaint_senders))

    def send_due(self, at: datetime) -> str:
        """Send every edition run that came due in some reader's zone in the last DIGEST_MISFIRE_GRACE (a tick
        missed while the service was down is caught up by the next; a run already under way is the resume job's)."""
        zones = self.subscribers.zones()
        done = []
        for edition in self.settings.digests:
            for due in due_runs(edition.schedule, zones, self.settings.site.timezone, at - DIGEST_MISFIRE_GRACE, at):
                if not self.deliveries.is_under_way(edition.name, due):
                    done.append(self.send(edition.name, due).line())
        return "; ".join(done) or "no edition due"

    def reconfirm_ads(self) -> str:
        """정보통신망법 §50⑧: ask every reader with advertising consent, two years after it was given (and every two
        years after), whether they keep it. A mail that could not go is asked again on the next run."""
        now = self.clock()
        asked = failed = 0
        while batch := self.subscribers.due_for_reconfirmation(now, RECONFIRM_EVERY):
            for subscriber in batch:
                try:
                    text = self.notices.reconfirm(subscriber, subscriber.language or self.settings.site.language)
                except DeliveryError as exc:
                    log.warning("advertising re-confirmation to subscriber %s failed: %s", subscriber.id, exc)
                    failed += 1
                    continue
                self.subscribers.mark_reconfirmation_sent(subscriber.id, now, text)
                asked += 1
            if failed:  # the rest of this run would fail the same way: the next run tries again
                break
        return f"advertising consent re-confirmation: asked {asked}" + (f", failed {failed}" if failed else "")

    def resume_editions(self) -> str:
        done = [self.send(name, at).line() for name, at in self.deliveries.unfinished(self.clock())
                if self.settings.edition(name) is not None]
        return "; ".join(done) or "nothing to resume"

    def scheduler_runner(self) -> SchedulerRunner:
        holder = holder_id()
        specs = self.task_specs()
        runs = RunLog(self.engine, holder, self.clock)
        return SchedulerRunner(
            lambda: build_scheduler(self.engine, specs, timezone_=self.settings.site.timezone, runs=runs,
                                    clock=self.clock),
            specs, Lease(self.engine, SCHEDULER_LEASE, holder, self.settings.scheduler_lease_ttl, self.clock), self.clock)


def create_app(services: Services, runner: SchedulerRunner | None = None) -> FastAPI:
    settings = services.settings
    notifier = HubNotifier(settings.feeds.hubs) if settings.feeds.hubs else None
    # With a scheduler, its lease holder speaks for every process; alone, this process does.
    refresher = FeedRefresher(services.publisher, services.store, settings.feeds.refresh,
                              announce=notifier.publish if notifier else None,
                              is_announcer=(lambda: runner.is_leader) if runner else (lambda: True),
                              clock=services.clock,
                              after_refresh=lambda: services.known_articles.refresh(services.publisher.version("all")))
    counter = services.view_counter
    pusher = PushWorker(settings, services.partners, services.pushes, services.store, services.redirects,
                        services.clock, is_leader=(lambda: runner.is_leader) if runner else (lambda: True),
                        interval=settings.feeds.refresh)

    async def start() -> None:
        refresher.step()  # feeds and the known article ids are ready before the first request
        refresher.start()
        counter.start()
        pusher.start()
        if runner is not None:
            runner.start()

    async def stop() -> None:
        counter.stop()  # buffered views reach the database before the process ends
        refresher.stop()
        pusher.stop()
        if notifier is not None:
            notifier.close()
        if runner is not None:
            runner.stop()
            services.close()

    app = FastAPI(title=f"{settings.site.name} (Gazette)", openapi_url="/api/openapi.json", docs_url=None,
                  redoc_url=None, on_startup=[start], on_shutdown=[stop])
    app.router.routes += feeds_http.routes(
        settings, store=services.store, publisher=services.publisher, templates=services.templates,
        clock=services.clock, view_counter=counter, redirects=services.redirects, partners=services.partners,
        pushes=services.pushes, figures=lambda: [*feeds_metrics.content_metrics(settings, services.store, services.clock()),
                                                 *audience_metrics(services.engine, services.clock())])
    for route in newsletter_web.routes(settings, services.subscribers, services.tokens, services.templates,
                                      services.clock, services.notices):
        app.router.routes.append(route)
    app.router.routes += newsletter_archive.routes(settings, services.deliveries, services.subscribers, services.tokens,
                                                   services.templates)
    app.router.routes += newsletter_sharing.routes(settings, services.store, services.subscribers, services.redirects,
                                                   services.templates, services.clock,
                                                   transport=lambda: make_transport(settings.mail), tags=services.tags,
                                                   signer=services.signer)
    app.include_router(newsletter_api.router(settings, services.subscribers, services.clock,
                                             lambda subscriber: invite(services.subscribers, services.notices,
                                                                       subscriber, services.clock())))
    app.include_router(newsletter_api.editions_router(settings, services.deliveries, services.store.campaign_clicks))
    app.include_router(newsletter_api.bounces_router(settings, services.subscribers, services.clock, services.tokens))
    install_error_handlers(app, feeds_http.error_page(settings, services.templates))
    app.add_middleware(feeds_http.RequestGuard, admin_token=settings.admin_token)
    app.add_middleware(feeds_http.FeedFastPath, publisher=services.publisher, settings=settings)  # last added: outermost
    return app


# --- CLI -------------------------------------------------------------------------------------------------

class GazetteGroup(click.Group):
    """Maps configuration and domain errors to the contract's exit codes with a one-line message."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"gazette: configuration error: {exc}", err=True)
            sys.exit(2)
        except GazetteError as exc:
            click.echo(f"gazette: {exc}", err=True)
            sys.exit(1)


@click.group(cls=GazetteGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Configuration file (default: $GAZETTE_CONFIG, else ./gazette.toml).")
@click.option("-v", "--verbose", is_flag=True, help="Log progress at INFO level.")
@click.version_option(package_name="gazette")
@click.pass_context
def main(ctx: click.Context, config: Path | None, verbose: bool) -> None:
    """Gazette: feeds, most-viewed and digest newsletters for news publishers."""
    # What `services_of` builds, once, from the settings; logging is set up from them first.
    default_level = logging.INFO if ctx.invoked_subcommand == "serve" else logging.WARNING
    ctx.meta["make_services"] = lambda settings: _start(settings, verbose=verbose, default_level=default_level)
    # SIGTERM ends a command as Ctrl-C would, through its cleanup (`serve` leaves it to uvicorn).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    hold_logging()
    ctx.call_on_close(release_held)


def _start(settings: Settings, *, verbose: bool, default_level: int) -> Services:
    configure_logging(resolve_level(settings.logging.level, verbose=verbose, default=default_level),
                      settings.logging.format, settings.site.timezone)
    return Services(settings)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log every request (a reverse proxy usually keeps this log; it costs about a sixth of a feed "
                   "response's time).")
@config_option
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, access_log: bool) -> None:
    """Run the web app and the scheduler in one process."""
    import uvicorn

    services = services_of(ctx)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # uvicorn's own handling: a graceful stop, then the signal's status
    services.prepare_database(migrate=services.settings.database_url.startswith("sqlite:"))
    app = create_app(services, services.scheduler_runner())
    # log_config=None: uvicorn's loggers keep the handler and level `configure_logging` gave them (one format).
    uvicorn.run(app, host=host, port=port, log_config=None, log_level=None, proxy_headers=True, access_log=access_log)


@main.command()
@config_option
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the configuration and print what would run."""
    services = services_of(ctx)
    s = services.settings
    tz = s.site.timezone
    now = services.clock()
    click.echo(f"configuration: {s.path} (valid)")
    click.echo(f"site: {s.site.name} <{s.site.base_url}>, time zone {tz.key}, language {s.site.language}")
    click.echo(f"database: {_redact(s.database_url)}")
    click.echo(f"mail: {_redact(s.mail.url)} from {s.mail.from_address}")
    click.echo(f"categories ({len(s.categories)}): " + ", ".join(f"{c.slug} ({c.name})" for c in s.categories))
    click.echo(f"sources ({len(s.sources)}):")
    for source in s.sources:
        target = source.category or "by category_map"
        click.echo(f"  {source.name}: {source.kind} {source.location}, every {_duration(source.interval)}, into {target}")
    click.echo(f"digest editions ({len(s.digests)}), at their hour on each reader's clock:")
    chosen = _readers_zones(services)
    sample = [tz] + [ZoneInfo(z) for z in dict.fromkeys([*SAMPLE_ZONES, *(z for z in chosen or () if z)])
                     if z != tz.key and is_zone(z)]
    for edition in s.digests:
        ads = ", advertising (only to readers who consented)" if edition.has_ads else ""
        click.echo(f"  {edition.name} ({edition.label_in(s.site.language)}): cron '{edition.schedule}', "
                   f"window {_duration(edition.window)}, up to {edition.max_articles} articles, "
                   f"{edition.most_viewed} most viewed{ads}")
        for zone, at in next_runs(edition.schedule, sample, now):
            click.echo(f"    next in {zone.key}: {at.astimezone(zone):%Y-%m-%d %H:%M %Z} "
                       f"({at.astimezone(tz):%Y-%m-%d %H:%M %Z})")
    if chosen is None:
        click.echo("  readers' editions not checked: no migrated database yet (gazette db upgrade)")
    else:
        for name, count in services.subscribers.orphans().items():
            click.echo(f"  warning: {count} reader(s) chose edition '{name}', which is not configured: they get "
                       f"nothing until [digests.{name}] is back or they choose another edition", err=True)
    click.echo(f"partners ({len(s.partners)}): " + ", ".join(p.slug for p in s.partners))


SAMPLE_ZONES = ("Asia/Tokyo", "Asia/Kolkata", "Asia/Kathmandu", "Europe/London", "America/New_York",
                "America/St_Johns")


def _readers_zones(services: Services) -> list[str | None] | None:
    """The zones readers chose, or None when the database cannot say (not there, or not migrated)."""
    url = make_url(services.settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return None  # `check` creates nothing: a SQLite file appears with `db upgrade`
    try:
        if not database.is_current(services.engine, services.migrations):
            return None
        return services.subscribers.zones()
    except SQLAlchemyError:
        return None


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _redact(url: str) -> str:
    """Hide a password in a URL before printing it."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0] and ":" in rest.split("@", 1)[0]:
        user = rest.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{rest.split('@', 1)[1]}"
    return url


for command in (feeds_cli.db_group, feeds_cli.ingest, feeds_cli.feeds_group, feeds_cli.views_group,
                newsletter_cli.digest_group, newsletter_cli.subscribers_group, feeds_cli.partners_group,
                newsletter_cli.bounces_group, feeds_cli.sources_group):
    main.add_command(command)


if __name__ == "__main__":
    main()
