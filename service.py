"""Wiring only: settings -> components (both sides' object graph) -> scheduler jobs -> web app -> CLI. No logic.

`gazette` (the console script) is `main`: `serve`, `scheduler` and `check` live here, the other commands in `feeds.cli` and
`newsletter.cli`, registered below. Every command loads the settings once (`newsletter.settings.load_settings`: the
whole file, both sides' sections), builds `newsletter.components.Components` from them, and hands those to the
packages; exit codes (0 ok, 1 failure at run time, 2 bad usage or config) come from
`feeds.core.commands.GazetteGroup`. Nothing imports this module.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
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
from feeds.background import ServerLoops
from newsletter.cli import digest as digest_cli
from newsletter.cli import push as push_cli
from newsletter.cli import readers as readers_cli
from newsletter.cli import worker as worker_cli
from newsletter import http as newsletter_http
from newsletter.http.console import console_routers
from newsletter.components import Components
from newsletter.metrics import audience_metrics
from newsletter.settings import Settings, load_settings

log = logging.getLogger(__name__)
WORKER_OPTIONS = "_GAZETTE_SERVE_WORKER"  # `serve --workers N` tells its workers their options here


def create_app(services: Components, runner: SchedulerRunner | None = None, *, speaks: bool = True) -> FastAPI:
    """The web app of one process; with no scheduler, `speaks` says whether it announces feeds and pushes to partners
    (alone: yes; a web node of `serve --no-scheduler`: no). See `feeds.background`."""
    settings = services.settings
    loops = ServerLoops(services, runner, views=True, speaks=speaks)
    app = FastAPI(title=f"{settings.site.name} (Gazette)", openapi_url="/api/openapi.json", docs_url=None,
                  redoc_url=None, description=feeds_http.API_DESCRIPTION, on_startup=[loops.start],
                  on_shutdown=[loops.stop, services.close] if runner is not None else [loops.stop])
    app.router.routes += feeds_http.routes(
        settings, store=services.store, publisher=services.publisher, templates=services.templates,
        clock=services.clock, view_counter=services.view_counter, redirects=services.redirects, partners=services.partners,
        pushes=services.pushes, access=services.access, audit=services.audit, source_book=services.source_book,
        limits=services.limits, webhooks=(services.webhooks, services.webhook_sender),
        figures=lambda: [*feeds_metrics.content_metrics(settings, services.store, services.clock(),
                                                        services.source_book.active()),
                         *audience_metrics(services.engine, services.clock())])
    audience = newsletter_http.audience_http(
        settings, subscribers=services.subscribers, deliveries=services.deliveries, articles=services.store,
        redirects=services.redirects, tokens=services.tokens, templates=services.templates, clock=services.clock,
        notices=services.notices, transport=services.transport, tags=services.tags,
        signer=services.signer, clicks=services.store.campaign_clicks, access=services.access, audit=services.audit,
        alerts=services.alerts, pause=services.pause, resume=services.resume_soon,
        sources=services.source_book.active, limits=services.limits,
        push=services.push_store if services.settings.push is not None else None)
    app.router.routes += audience.routes
    for router in [*audience.routers, *console_routers(services)]:
        app.include_router(router)
    install_error_handlers(app, feeds_http.error_page(settings, services.templates))
    app.add_middleware(feeds_http.RequestGuard, access=services.access)
    app.add_middleware(feeds_http.FeedFastPath, publisher=services.publisher, settings=settings)  # last added: outermost
    return app


def worker_app() -> FastAPI:
    """uvicorn's factory of `serve`'s app, in its process or in each of `--workers N`: the components built from the
    configuration `serve` resolved ($GAZETTE_CONFIG), with the options it left in `WORKER_OPTIONS`."""
    options = json.loads(os.environ.get(WORKER_OPTIONS, '{"scheduler": true, "verbose": false, "access_log": false}'))
    services = _start(load_settings(config_path(None, os.environ)), verbose=options["verbose"],
                      default_level=logging.INFO)
    logging.getLogger("uvicorn.access").propagate = options["access_log"]  # as uvicorn set it before this factory ran
    app = create_app(services, services.scheduler_runner() if options["scheduler"] else None,
                     speaks=options["scheduler"])
    app.router.on_shutdown.append(services.close)  # after create_app's own stop (closing twice is harmless)
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
    default_level = logging.INFO if ctx.invoked_subcommand in ("serve", "scheduler") else logging.WARNING
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
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes serving the one port; one of them at a time runs the scheduler (the lease).")
@click.option("--no-scheduler", "scheduler", flag_value=False, default=True,
              help="A web node only: never run scheduled jobs, announce feeds or push to partners "
                   "(`gazette scheduler` does, elsewhere).")
@click.option("--forwarded-allow-ips", default="127.0.0.1,::1", show_default=True, envvar="FORWARDED_ALLOW_IPS",
              help="Proxies (addresses or networks, comma-separated) whose X-Forwarded-For and X-Forwarded-Proto "
                   "are believed; anyone else's are ignored.")
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log every request (a reverse proxy usually keeps this log; it costs about a sixth of a feed "
                   "response's time).")
@config_option
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, scheduler: bool, forwarded_allow_ips: str,
          access_log: bool) -> None:
    """Run the web app, and the scheduler unless --no-scheduler."""
    import uvicorn

    services = components_of(ctx)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # uvicorn's own handling: a graceful stop, then the signal's status
    services.prepare_database(migrate=services.settings.database_url.startswith("sqlite:"))
    if workers > 1 and services.settings.queue.redis_url is None:
        log.warning("%d workers without [queue] redis_url: view dedupe, per-IP caps and rate limits are per worker, so a "
                    "visitor's repeat views within the dedupe window may count once per worker", workers)
    services.close()  # the app's own are built by `worker_app`, in this process or in each worker
    root = ctx.find_root()
    os.environ["GAZETTE_CONFIG"] = str(config_path(root.meta.get("config") or root.params["config"], os.environ).resolve())
    os.environ[WORKER_OPTIONS] = json.dumps({"scheduler": scheduler, "verbose": root.params["verbose"],
                                              "access_log": access_log})
    # log_config=None: uvicorn's loggers keep the handler and level `configure_logging` gave them (one format). A new
    # worker imports all of Gazette before it answers the parent's health check: uvicorn's 5 s is too short on a busy
    # machine, where every worker would be killed and started again, forever.
    uvicorn.run("service:worker_app", factory=True, workers=workers, host=host, port=port, log_config=None,
                log_level=None, proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips, access_log=access_log,
                timeout_worker_healthcheck=30)


@main.command("scheduler")
@config_option
@click.pass_context
def scheduler_command(ctx: click.Context) -> None:
    """Run only the scheduler (no web), until SIGTERM: jobs, feed announcements and partner pushes, while this
    process holds the lease."""
    services = components_of(ctx)
    services.prepare_database(migrate=services.settings.database_url.startswith("sqlite:"))
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    loops = ServerLoops(services, services.scheduler_runner(), views=False)
    loops.start()
    while not stopping.wait(1.0):
        pass
    loops.stop()  # the job under way finishes; the lease is released for another to take at once


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
                readers_cli.bounces_group, feeds_cli.sources_group, feeds_cli.users_group, worker_cli.worker,
                feeds_cli.articles_group, push_cli.push_group):
    main.add_command(command)


if __name__ == "__main__":
    main()
