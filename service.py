"""Wiring only: settings -> store -> scheduler jobs -> web app -> CLI. No logic lives here.

`gazette` (the console script) is `main`. Every command loads the settings once, builds what it needs with
`Services`, and hands those to the packages; exit codes: 0 ok, 1 failure at run time, 2 bad usage or config.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import click
from apscheduler.triggers.interval import IntervalTrigger
from fastapi import FastAPI
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

import templates
from feeds import api as feeds_api
from feeds import db
from feeds.clock import Clock, utc_now
from feeds.errors import ConfigError, FeedsError
from feeds.fetch import HostLimiter, HttpFetcher
from feeds.ingest import IngestPolicy, IngestResult, ingest_all, ingest_source
from feeds.publish import FeedPublisher, FeedRefresher
from feeds.schedule import SCHEDULER_LEASE, Lease, RunLog, SchedulerRunner, TaskSpec, build_scheduler, holder_id
from feeds.settings import Settings, SourceSettings, config_path, load_settings
from feeds.store import ArticleStore
from feeds.views import KnownArticles, Redirects, ViewCounter, ViewRules, read_views_csv
from feeds.web import FeedFastPath
from feeds.web import routes as feed_routes
from feeds.websub import HubNotifier
from newsletter import db as newsletter_db  # noqa: F401  (declares the audience tables on the shared metadata)
from newsletter.errors import NewsletterError
from newsletter.send import DeliveryStore, SendReport, send_edition
from newsletter.subscribers import Subscriber, SubscriberStore
from newsletter.transport import make_transport

log = logging.getLogger("gazette")

SOURCE_MISFIRE_GRACE = timedelta(minutes=5)
DIGEST_MISFIRE_GRACE = timedelta(hours=2)


@dataclass
class Services:
    """Everything a command needs, built from the settings on first use."""

    settings: Settings
    clock: Clock = field(default=utc_now)

    @cached_property
    def engine(self) -> Engine:
        return db.make_engine(self.settings.database_url)

    @cached_property
    def store(self) -> ArticleStore:
        return ArticleStore(self.engine)

    @cached_property
    def subscribers(self) -> SubscriberStore:
        return SubscriberStore(self.engine)

    @cached_property
    def deliveries(self) -> DeliveryStore:
        return DeliveryStore(self.engine)

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
    def parse_pool(self) -> ProcessPoolExecutor | None:
        processes = self.settings.fetch.parse_processes
        return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) if processes else None

    @cached_property
    def ingest_policy(self) -> IngestPolicy:
        return IngestPolicy(failure_limit=self.settings.fetch.failure_limit, timezone=self.settings.site.timezone,
                            parse_pool=self.parse_pool)

    def close(self) -> None:
        if "parse_pool" in self.__dict__ and self.parse_pool is not None:
            self.parse_pool.shutdown(wait=True, cancel_futures=True)
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
        assert source is not None
        return ingest_source(source, store=self.store, fetcher=self.fetcher, now=self.clock(),
                             policy=self.ingest_policy, force=force)

    def ingest_many(self, sources: Sequence[SourceSettings],
                    on_result: Callable[[IngestResult], None]) -> list[IngestResult]:
        return ingest_all(sources, store=self.store, fetcher=self.fetcher, clock=self.clock, policy=self.ingest_policy,
                          workers=self.settings.fetch.workers, on_result=on_result)

    def send(self, edition_name: str, scheduled_at: datetime, *, dry_run: bool = False,
             progress: Callable[[Subscriber, str], None] = lambda subscriber, outcome: None) -> SendReport:
        edition = self.settings.edition(edition_name)
        assert edition is not None
        transport = make_transport(self.settings.mail)
        try:
            return send_edition(edition, scheduled_at=scheduled_at, settings=self.settings, articles=self.store,
                                subscribers=self.subscribers, deliveries_=self.deliveries, transport=transport,
                                templates=self.templates, clock=self.clock, dry_run=dry_run, progress=progress)
        finally:
            transport.close()

    def task_specs(self) -> list[TaskSpec]:
        s = self.settings
        specs = [TaskSpec(key=f"ingest:{source.name}", name=f"ingest {source.name}",
                          trigger=IntervalTrigger(seconds=int(source.interval.total_seconds()), timezone=s.site.timezone,
                                                  jitter=min(30, int(source.interval.total_seconds() * 0.1))),
                          run=lambda _at, name=source.name: self.ingest(name, force=False).line(),
                          misfire_grace=SOURCE_MISFIRE_GRACE, start_now=True)
                 for source in s.sources]
        specs += [TaskSpec(key=f"digest:{edition.name}", name=f"digest {edition.name}",
                           trigger=edition.trigger(s.site.timezone),
                           run=lambda at, name=edition.name: self.send(name, at).line(),
                           misfire_grace=DIGEST_MISFIRE_GRACE)
                  for edition in s.digests]
        return specs

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

    async def start() -> None:
        refresher.step()  # feeds and the known article ids are ready before the first request
        refresher.start()
        counter.start()
        if runner is not None:
            runner.start()

    async def stop() -> None:
        counter.stop()  # buffered views reach the database before the process ends
        refresher.stop()
        if notifier is not None:
            notifier.close()
        if runner is not None:
            runner.stop()
            services.close()

    app = FastAPI(title=f"{settings.site.name} (Gazette)", openapi_url="/api/openapi.json", docs_url=None,
                  redoc_url=None, on_startup=[start], on_shutdown=[stop])
    for route in feed_routes(settings, services.store, services.publisher, services.templates, services.clock,
                             counter, services.redirects):
        app.router.routes.append(route)
    app.include_router(feeds_api.router(settings, services.store, services.clock))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        page = services.templates.get_template("pages/error.html").render(
            site=settings.site, title=str(exc.status_code), message=exc.detail)
        return HTMLResponse(page, status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(HTTPException, http_error)
    app.add_middleware(FeedFastPath, publisher=services.publisher, settings=settings)
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
        except (FeedsError, NewsletterError) as exc:
            click.echo(f"gazette: {exc}", err=True)
            sys.exit(1)


def _remember_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.find_root().meta["config"] = value


def config_option(command):  # type: ignore[no-untyped-def]
    """`--config` after the command name too (`gazette check --config x.toml`), as well as before it."""
    return click.option("--config", type=click.Path(dir_okay=False, path_type=Path), expose_value=False,
                        is_eager=True, callback=_remember_config,
                        help="Configuration file (default: $GAZETTE_CONFIG, else ./gazette.toml).")(command)


def services_of(ctx: click.Context) -> Services:
    root = ctx.find_root()
    if "services" not in root.meta:
        path = config_path(root.meta.get("config") or root.params.get("config"), os.environ)
        root.meta["services"] = Services(load_settings(path))
    return root.meta["services"]


@click.group(cls=GazetteGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Configuration file (default: $GAZETTE_CONFIG, else ./gazette.toml).")
@click.option("-v", "--verbose", is_flag=True, help="Log progress at INFO level.")
@click.version_option(package_name="gazette")
def main(config: Path | None, verbose: bool) -> None:
    """Gazette: feeds, most-viewed and digest newsletters for news publishers."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


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
    logging.getLogger().setLevel(logging.INFO)
    services.prepare_database(migrate=services.settings.database_url.startswith("sqlite:"))
    app = create_app(services, services.scheduler_runner())
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=True, access_log=access_log)


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
    click.echo(f"digest editions ({len(s.digests)}):")
    for edition in s.digests:
        next_at = edition.trigger(tz).get_next_fire_time(None, now.astimezone(tz))
        when = next_at.strftime("%Y-%m-%d %H:%M %Z") if next_at else "never"
        click.echo(f"  {edition.name}: cron '{edition.schedule}', next {when}, window {_duration(edition.window)}, "
                   f"up to {edition.max_articles} articles, {edition.most_viewed} most viewed")
    click.echo(f"partners ({len(s.partners)}): " + ", ".join(p.slug for p in s.partners))


@main.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@config_option
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply migrations (safe to run again)."""
    services = services_of(ctx)
    before = db.current_revision(services.engine)
    db.migrate(services.engine)
    after = db.current_revision(services.engine)
    click.echo(f"database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))


@main.command()
@click.argument("sources", nargs=-1)
@config_option
@click.pass_context
def ingest(ctx: click.Context, sources: tuple[str, ...]) -> None:
    """Poll sources now (all, or those named); one line per source. Exit 1 if any failed."""
    services = services_of(ctx)
    settings = services.settings
    unknown = [name for name in sources if settings.source(name) is None]
    if unknown:
        raise click.UsageError(f"unknown source(s): {', '.join(unknown)}; configured: "
                               + ", ".join(s.name for s in settings.sources))
    services.prepare_database(migrate=False)
    chosen = [s for s in settings.sources if not sources or s.name in sources]
    if len(chosen) > 5 and sys.stderr.isatty():
        with click.progressbar(length=len(chosen), label="ingesting", file=sys.stderr, show_pos=True) as bar:
            results = services.ingest_many(chosen, on_result=lambda r: bar.update(1))
    else:
        results = services.ingest_many(chosen, on_result=lambda r: None)
    for result in results:  # in configuration order, whatever order they finished in
        click.echo(result.line())
    if any(r.status == "error" for r in results):
        sys.exit(1)


@main.group("feeds")
def feeds_group() -> None:
    """Public feeds."""


@feeds_group.command("build")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write feeds/<slug>.<rss|atom|json> (and .gz) into.")
@config_option
@click.pass_context
def feeds_build(ctx: click.Context, out: Path) -> None:
    """Write every public feed as static files, the same bytes as served."""
    services = services_of(ctx)
    services.prepare_database(migrate=False)
    written = services.publisher.build(out)
    click.echo(f"wrote {len(written)} files under {out}")


@main.group("views")
def views_group() -> None:
    """View counts."""


@views_group.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@config_option
@click.pass_context
def views_import(ctx: click.Context, file) -> None:  # type: ignore[no-untyped-def]
    """Add views from an analytics export: CSV with a header url_or_id,views[,from,to].

    Views go into the hour of `from` (else now). Importing the same file twice counts it twice."""
    services = services_of(ctx)
    services.prepare_database(migrate=False)
    rows, problems = read_views_csv(file.read(), timezone=services.settings.site.timezone, now=services.clock())
    batch, total = [], 0
    for row in rows:
        article = services.store.find_article(row.url_or_id)
        if article is None:
            problems.append((row.line, f"no article {row.url_or_id!r}"))
            continue
        batch.append((article.id, row.counted_at, row.views))
        total += row.views
    services.store.add_views_batch(batch)
    click.echo(f"{total} views added to {len({a for a, _, _ in batch})} articles from {len(batch)} rows; "
               f"{len(problems)} rows skipped")
    for line, reason in sorted(problems):
        click.echo(f"line {line}: {reason}")
    if problems:
        sys.exit(1)


@main.group("digest")
def digest_group() -> None:
    """Digest editions."""


@digest_group.command("send")
@click.argument("edition")
@click.option("--dry-run", is_flag=True, help="Show who would get what; send and record nothing.")
@click.option("--at", "at", default=None, metavar="ISO-TIME",
              help="The edition's time (default now); without a zone, in the site's time zone.")
@config_option
@click.pass_context
def digest_send(ctx: click.Context, edition: str, dry_run: bool, at: str | None) -> None:
    """Send EDITION (e.g. daily) to its confirmed subscribers, once each."""
    services = services_of(ctx)
    settings = services.settings
    if settings.edition(edition) is None:
        raise click.UsageError(f"unknown edition {edition!r}; configured: " + ", ".join(e.name for e in settings.digests))
    scheduled_at = _parse_at(at, settings) if at else services.clock().replace(microsecond=0)
    services.prepare_database(migrate=False)
    total = len(services.subscribers.confirmed(edition))
    show_bar = total > 20 and sys.stderr.isatty()
    if show_bar:
        with click.progressbar(length=total, label=f"{edition}", file=sys.stderr, show_eta=True,
                               show_pos=True) as bar:
            report = services.send(edition, scheduled_at, dry_run=dry_run, progress=lambda sub, outcome: bar.update(1))
    else:
        report = services.send(edition, scheduled_at, dry_run=dry_run)
    click.echo(report.line())
    if report.failed:
        sys.exit(1)


@main.group("subscribers")
def subscribers_group() -> None:
    """Subscribers."""


@subscribers_group.command("add")
@click.argument("email")
@click.option("--name", default=None)
@click.option("--categories", default="", help="Comma-separated category slugs (default: all).")
@click.option("--frequency", type=click.Choice(["daily", "weekly"]), default="daily", show_default=True)
@click.option("--confirmed", is_flag=True, help="Consent was obtained elsewhere; record it as given by an admin.")
@config_option
@click.pass_context
def subscribers_add(ctx: click.Context, email: str, name: str | None, categories: str, frequency: str,
                    confirmed: bool) -> None:
    """Add or update one subscriber."""
    services = services_of(ctx)
    known = [c.slug for c in services.settings.categories]
    chosen = [c.strip() for c in categories.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise click.UsageError(f"unknown categories: {', '.join(unknown)}; configured: {', '.join(known)}")
    services.prepare_database(migrate=False)
    outcome, subscriber = services.subscribers.add(email, categories=chosen or known, frequency=frequency, name=name,
                                                   now=services.clock(), confirmed=confirmed, method="admin")
    click.echo(f"{outcome}: {subscriber.email} ({subscriber.status}, {subscriber.frequency}, "
               f"{', '.join(subscriber.categories)})")


@subscribers_group.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--confirmed", is_flag=True, help="Consent was obtained elsewhere: import as confirmed.")
@config_option
@click.pass_context
def subscribers_import(ctx: click.Context, file, confirmed: bool) -> None:  # type: ignore[no-untyped-def]
    """Import a CSV with a header: email[,name][,categories][,frequency]."""
    services = services_of(ctx)
    services.prepare_database(migrate=False)
    report = services.subscribers.import_csv(file.read(), known_categories=[c.slug for c in services.settings.categories],
                                             now=services.clock(), confirmed=confirmed,
                                             consent_text=f"imported from {file.name}")
    click.echo(report.summary())
    if report.invalid:
        sys.exit(1)


def _parse_at(text: str, settings: Settings) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f'"{text}" is not an ISO time such as 2026-11-25T07:00', param_hint="--at") from None
    return value.replace(tzinfo=settings.site.timezone) if value.tzinfo is None else value


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


if __name__ == "__main__":
    main()
