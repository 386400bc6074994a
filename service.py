"""Wiring only: settings -> components (engine, stores, services) -> scheduler jobs -> web app -> CLI. No logic.

`gazette` (the console script) is `main`: `serve` and `check` live here, the other commands in `feeds.cli` and
`newsletter.cli`, registered below. Every command loads the settings once, builds what it needs with `Components`,
and hands those to the packages; exit codes (0 ok, 1 failure at run time, 2 bad usage or config) come from
`feeds.core.commands.GazetteGroup`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import click
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

import templates
from feeds import api as feeds_api
from feeds import cli as feeds_cli
from feeds import db
from feeds import jobs as feeds_jobs
from feeds import metrics as feeds_metrics
from feeds.core.clock import Clock, utc_now
from feeds.core.commands import FACTORY, GazetteGroup, components_of, config_option
from feeds.errors import UnknownName
from feeds.fetch import HostLimiter, HttpFetcher
from feeds.guard import RequestGuard, is_json_path, status_title
from feeds.ingest import IngestPolicy, IngestResult, ignore_interrupts, ingest_all, ingest_source
from feeds.logs import configure_logging, hold_logging, release_held, resolve_level
from feeds.normalise import TRACKING_PARAMETERS
from feeds.partner_web import PartnerFeeds, RateLimiter
from feeds.partner_web import routes as partner_routes
from feeds.partners import PartnerStore
from feeds.publish import FeedPublisher, FeedRefresher
from feeds.push import PushQueue, PushWorker
from feeds.schedule import SCHEDULER_LEASE, Lease, RunLog, SchedulerRunner, TaskSpec, build_scheduler, holder_id
from feeds.settings import EditionSettings, Settings, SourceSettings, config_path, load_settings
from feeds.store import ArticleStore
from feeds.views import KnownArticles, Redirects, ViewCounter, ViewRules
from feeds.web import FeedFastPath
from feeds.web import routes as feed_routes
from feeds.websub import HubNotifier
from newsletter import api as newsletter_api
from newsletter import archive as newsletter_archive
from newsletter import cli as newsletter_cli
from newsletter import db as newsletter_db  # noqa: F401  (declares the audience tables on the shared metadata)
from newsletter import sharing as newsletter_sharing
from newsletter import web as newsletter_web
from newsletter.deliveries import DeliveryStore
from newsletter.errors import UnknownEdition
from newsletter.jobs import AudienceJobs
from newsletter.metrics import audience_metrics
from newsletter.notices import Notices, invite
from newsletter.preview import Plan, plan_edition, preview_edition
from newsletter.retry import RetryReport, retry_edition
from newsletter.send import Context, SendReport, send_edition
from newsletter.signing import DkimSigner, load_signer
from newsletter.subscribers import SubscriberStore
from newsletter.tokens import Tokens
from newsletter.transport import make_transport
from newsletter.verp import TagCodec

@dataclass
class Components:
    """The object graph the commands, the scheduler's jobs and the web app share: engine, stores, services, built
    from the settings on first use."""

    settings: Settings
    clock: Clock = field(default=utc_now)
    sleep: Callable[[float], None] = field(default=time.sleep)

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
        return Environment(loader=FileSystemLoader(templates.directory()),
                           autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)

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
            db.migrate(self.engine)
        elif db.current_revision(self.engine) != db.head_revision(self.engine):
            raise click.ClickException("the database schema is not current: run `gazette db upgrade` first")
        s = self.settings
        self.store.sync_config(s.categories, s.sources, s.partners, self.clock())

    def ingest(self, name: str, *, force: bool = True) -> IngestResult:
        source = self.settings.source(name)
        if source is None:
            raise UnknownName(f"unknown source {name!r}; configured: "
                              + ", ".join(s.name for s in self.settings.sources))
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
        return send_edition(self._edition(edition_name), scheduled_at=scheduled_at, ctx=self._send_context(progress),
                            everyone=everyone, dry_run=dry_run)

    def _edition(self, name: str) -> EditionSettings:
        edition = self.settings.edition(name)
        if edition is None:
            raise UnknownEdition(f"unknown edition {name!r}; configured: "
                                 + ", ".join(e.name for e in self.settings.digests))
        return edition

    def _send_context(self, progress: Callable[[str], None] = lambda outcome: None) -> Context:
        return Context(settings=self.settings, articles=self.store, subscribers=self.subscribers,
                       deliveries=self.deliveries, transports=lambda: make_transport(self.settings.mail),
                       templates=self.templates, tokens=self.tokens, redirects=self.redirects, clock=self.clock,
                       tags=self.tags, signer=self.signer, sleep=self.sleep, progress=progress)

    def preview(self, edition_name: str, scheduled_at: datetime, email: str) -> dict[str, Any] | None:
        return preview_edition(self._edition(edition_name), scheduled_at=scheduled_at, ctx=self._send_context(),
                               email=email)

    def plan(self, edition_name: str, scheduled_at: datetime) -> Plan:
        return plan_edition(self._edition(edition_name), scheduled_at=scheduled_at, ctx=self._send_context())

    def retry(self, edition_name: str, edition_id: int, scheduled_at: datetime) -> RetryReport:
        return retry_edition(self._edition(edition_name), edition_id, scheduled_at=scheduled_at,
                             ctx=self._send_context())

    @cached_property
    def audience_jobs(self) -> AudienceJobs:
        return AudienceJobs(self.settings, self.subscribers, self.deliveries, self.notices, self.tokens, self.tags,
                            self.clock, send=lambda edition, at: self.send(edition, at))

    def task_specs(self) -> list[TaskSpec]:
        """Every scheduled job: the content side's, then the audience side's."""
        return [*feeds_jobs.ingest_jobs(self.settings.sources, self.settings.site.timezone,
                                        lambda name: self.ingest(name, force=False)),
                *self.audience_jobs.specs()]

    def scheduler_runner(self) -> SchedulerRunner:
        holder = holder_id()
        specs = self.task_specs()
        runs = RunLog(self.engine, holder, self.clock)
        return SchedulerRunner(
            lambda: build_scheduler(self.engine, specs, timezone_=self.settings.site.timezone, runs=runs,
                                    clock=self.clock),
            specs, Lease(self.engine, SCHEDULER_LEASE, holder, self.settings.scheduler_lease_ttl, self.clock), self.clock)


Services = Components  # the old name, while its callers (the tests) move over


def create_app(services: Components, runner: SchedulerRunner | None = None) -> FastAPI:
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
    for route in feed_routes(settings, services.store, services.publisher, services.templates, services.clock,
                             counter, services.redirects, on_partner_click=services.partners.add_click):
        app.router.routes.append(route)
    for route in partner_routes(settings, services.partners, PartnerFeeds(settings, services.store, services.redirects),
                                RateLimiter(services.clock), services.clock):
        app.router.routes.append(route)
    for route in newsletter_web.routes(settings, services.subscribers, services.tokens, services.templates,
                                      services.clock, services.notices):
        app.router.routes.append(route)
    app.router.routes += newsletter_archive.routes(settings, services.deliveries, services.subscribers, services.tokens,
                                                   services.templates)
    app.router.routes += newsletter_sharing.routes(settings, services.store, services.subscribers, services.redirects,
                                                   services.templates, services.clock,
                                                   transport=lambda: make_transport(settings.mail), tags=services.tags,
                                                   signer=services.signer)
    app.include_router(feeds_api.router(settings, services.store, services.clock))
    app.include_router(feeds_api.partners_router(settings, services.partners, services.pushes, services.clock))
    app.include_router(newsletter_api.router(settings, services.subscribers, services.clock,
                                             lambda subscriber: invite(services.subscribers, services.notices,
                                                                       subscriber, services.clock())))
    app.include_router(newsletter_api.editions_router(settings, services.deliveries, services.store.campaign_clicks))
    app.include_router(newsletter_api.bounces_router(settings, services.subscribers, services.clock, services.tokens))
    app.router.routes.append(feeds_metrics.route(settings, lambda: [
        *feeds_metrics.content_metrics(settings, services.store, services.clock()),
        *audience_metrics(services.engine, services.clock())]))

    def error_response(request: Request, status: int, message: str, headers: Mapping[str, str] | None = None,
                       **extra: Any) -> Response:
        if is_json_path(request.url.path):
            body = {"type": "about:blank", "title": status_title(status), "status": status, "detail": message,
                    "error": message, **extra}
            return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")
        page = services.templates.get_template("pages/error.html").render(
            site=settings.site, title=str(status), message=message)
        return HTMLResponse(page, status_code=status, headers=headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(request, exc.status_code, str(exc.detail), exc.headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = [{"where": ".".join(str(part) for part in e.get("loc", ())), "problem": str(e.get("msg", ""))}
                    for e in exc.errors()]
        message = "; ".join(f"{p['where']}: {p['problem']}" for p in problems) or "the request is not valid"
        return error_response(request, 422, message, errors=problems)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_middleware(RequestGuard, admin_token=settings.admin_token)
    app.add_middleware(FeedFastPath, publisher=services.publisher, settings=settings)  # last added: outermost
    return app


# --- CLI -------------------------------------------------------------------------------------------------

@click.group(cls=GazetteGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Configuration file (default: $GAZETTE_CONFIG, else ./gazette.toml).")
@click.option("-v", "--verbose", is_flag=True, help="Log progress at INFO level.")
@click.version_option(package_name="gazette")
@click.pass_context
def main(ctx: click.Context, config: Path | None, verbose: bool) -> None:
    """Gazette: feeds, most-viewed and digest newsletters for news publishers."""
    # What `components_of` builds, once, from the settings; logging is set up from them first.
    default_level = logging.INFO if ctx.invoked_subcommand == "serve" else logging.WARNING
    ctx.meta[FACTORY] = lambda path: _start(load_settings(config_path(path, os.environ)), verbose=verbose,
                                            default_level=default_level)
    # SIGTERM ends a command as Ctrl-C would, through its cleanup (`serve` leaves it to uvicorn).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    hold_logging()
    ctx.call_on_close(release_held)


def _start(settings: Settings, *, verbose: bool, default_level: int) -> Components:
    configure_logging(resolve_level(settings.logging.level, verbose=verbose, default=default_level),
                      settings.logging.format, settings.site.timezone)
    return Components(settings)


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

    services = components_of(ctx)
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
    components = components_of(ctx)
    feeds_cli.print_check(components)
    newsletter_cli.print_check(components)


for command in (feeds_cli.db_group, feeds_cli.ingest, feeds_cli.feeds_group, feeds_cli.views_group,
                newsletter_cli.digest_group, newsletter_cli.subscribers_group, feeds_cli.partners_group,
                newsletter_cli.bounces_group, feeds_cli.sources_group):
    main.add_command(command)


if __name__ == "__main__":
    main()
