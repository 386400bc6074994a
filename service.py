"""Wiring only: settings -> components (both sides' object graph) -> scheduler jobs -> web app -> CLI. No logic.

`gazette` (the console script) is `main`: `serve` and `check` live here, the other commands in `feeds.cli` and
`newsletter.cli`, registered below. Every command loads the settings once (`newsletter.settings.load_settings`: the
whole file, both sides' sections), builds `newsletter.components.Components` from them, and hands those to the
packages; exit codes (0 ok, 1 failure at run time, 2 bad usage or config) come from
`feeds.core.commands.GazetteGroup`. Nothing imports this module.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import click
from fastapi import FastAPI

from feeds import cli as feeds_cli
from feeds import http as feeds_http
from feeds import metrics as feeds_metrics
from feeds.core.commands import FACTORY, GazetteGroup, components_of, config_option
from feeds.core.config import config_path
from feeds.core.http import install_error_handlers
from feeds.core.scheduling import SchedulerRunner
from feeds.logs import configure_logging, hold_logging, release_held, resolve_level
from feeds.publish import FeedRefresher
from feeds.push import PushWorker
from feeds.websub import HubNotifier
from newsletter.cli import digest as digest_cli
from newsletter.cli import readers as readers_cli
from newsletter.cli import worker as worker_cli
from newsletter import http as newsletter_http
from newsletter.http.console import console_routers
from newsletter.components import Components
from newsletter.metrics import audience_metrics
from newsletter.settings import Settings, load_settings



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
                  redoc_url=None, description=feeds_http.API_DESCRIPTION, on_startup=[start], on_shutdown=[stop])
    app.router.routes += feeds_http.routes(
        settings, store=services.store, publisher=services.publisher, templates=services.templates,
        clock=services.clock, view_counter=counter, redirects=services.redirects, partners=services.partners,
        pushes=services.pushes, access=services.access, audit=services.audit, source_book=services.source_book,
        limits=services.limits,
        figures=lambda: [*feeds_metrics.content_metrics(settings, services.store, services.clock(),
                                                        services.source_book.active()),
                         *audience_metrics(services.engine, services.clock())])
    audience = newsletter_http.audience_http(
        settings, subscribers=services.subscribers, deliveries=services.deliveries, articles=services.store,
        redirects=services.redirects, tokens=services.tokens, templates=services.templates, clock=services.clock,
        notices=services.notices, transport=services.transport, tags=services.tags,
        signer=services.signer, clicks=services.store.campaign_clicks, access=services.access, audit=services.audit,
        alerts=services.alerts, pause=services.pause, resume=services.resume_soon,
        sources=services.source_book.active, limits=services.limits)
    app.router.routes += audience.routes
    for router in [*audience.routers, *console_routers(services)]:
        app.include_router(router)
    install_error_handlers(app, feeds_http.error_page(settings, services.templates))
    app.add_middleware(feeds_http.RequestGuard, access=services.access)
    app.add_middleware(feeds_http.FeedFastPath, publisher=services.publisher, settings=settings)  # last added: outermost
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
    digest_cli.print_check(components)


for command in (feeds_cli.db_group, feeds_cli.ingest, feeds_cli.feeds_group, feeds_cli.views_group,
                digest_cli.digest_group, readers_cli.subscribers_group, feeds_cli.partners_group,
                readers_cli.bounces_group, feeds_cli.sources_group, feeds_cli.users_group, worker_cli.worker):
    main.add_command(command)


if __name__ == "__main__":
    main()
