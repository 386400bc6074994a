"""`ServerLoops`: what a server process runs beside its requests, started and stopped in one order.

A web process keeps its feeds current (the refresher), writes its buffered views (the counter's flush), pushes new
articles to partners and may run the scheduler; `gazette scheduler` runs the same without the web and the views.
One process speaks for all: it announces changed feeds to WebSub hubs, pushes to partners and delivers the
newsroom's webhooks. That is the holder of the scheduler's lease, or a process with no scheduler that is alone
(`speaks`); a web node of `serve --no-scheduler` never speaks, so N workers on M machines announce and push once.
"""

from __future__ import annotations

from .components import ContentComponents
from .core.scheduling import SchedulerRunner
from .publish import FeedRefresher
from .push import PushWorker
from .webhook_worker import WebhookWorker
from .websub import HubNotifier


class ServerLoops:
    """The background loops of one process over `components`: `start()` once the process is ready to serve,
    `stop()` when it ends (the view counter first, so buffered views reach the database; the scheduler last, which
    finishes its job under way and releases the lease)."""

    def __init__(self, components: ContentComponents, runner: SchedulerRunner | None, *, views: bool,
                 speaks: bool = True) -> None:
        settings = components.settings
        leads = (lambda: runner.is_leader) if runner is not None else (lambda: speaks)
        self._notifier = HubNotifier(settings.feeds.hubs) if settings.feeds.hubs else None
        self._refresher = FeedRefresher(
            components.publisher, components.store, settings.feeds.refresh,
            announce=self._notifier.publish if self._notifier else None, is_announcer=leads, clock=components.clock,
            after_refresh=lambda: components.known_articles.refresh(components.publisher.version("all")))
        pusher = PushWorker(settings, components.partners, components.pushes, components.store, components.redirects,
                            components.clock, is_leader=leads, interval=settings.feeds.refresh)
        # The newsroom's webhooks, told by the same one process as partner pushes (`feeds.webhooks`).
        hooks = WebhookWorker(components.webhooks, components.webhook_sender, components.clock, is_leader=leads,
                              interval=settings.feeds.refresh)
        counter = components.view_counter if views else None
        self._loops = [loop for loop in (counter, self._refresher, pusher, hooks, runner) if loop is not None]

    def start(self) -> None:
        self._refresher.step()  # feeds and the known article ids are ready before the first request
        for loop in self._loops:
            loop.start()

    def stop(self) -> None:
        for loop in self._loops:
            loop.stop()
        if self._notifier is not None:
            self._notifier.close()
