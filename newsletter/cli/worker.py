"""`gazette worker`: a Celery worker for [queue] url, on any machine that reaches the broker and the database.

It runs both sides' tasks — a source's poll and an edition's batch — on `--concurrency` threads of one process
(Celery's threads pool: sending is waiting on the relay and on OpenSSL, which release the GIL, and one process keeps
one connection pool to the database). While it runs it renews a heartbeat lease (`worker:<id>`); the delivery rows
it holds are taken over by another worker once that lease lapses, or at once by one on the same host when this
process is gone.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import click

from feeds.core.commands import components_of, config_option
from feeds.core.database import MAX_ID
from feeds.core.errors import ConfigError
from feeds.core.loops import BackgroundLoop
from feeds.core.scheduling import Lease, holder_id
from feeds.core.work_queue import BATCH, INGEST, PUSH, QUEUE, register

from ..batch_ledger import WORKER_TTL, worker_lease_name

log = logging.getLogger(__name__)

FAILED_BATCH_WAIT = 30.0  # seconds before a batch whose task failed (the database away) runs again


def register_tasks(app: Any, services: Any, holder: str) -> None:
    """The worker's tasks (a push run's too, with [push]). Their arguments come off the broker: anyone who can publish there could send
    anything, so a batch id must be a positive integer and a source a configured one (`poll_queued` skips any other
    name), and a malformed message is dropped, never enqueued again."""
    queue = services.work_queue

    def batch(batch_id: object) -> str:
        if not isinstance(batch_id, int) or isinstance(batch_id, bool) or batch_id < 1:
            return f"not a batch id: {str(batch_id)[:80]!r}, dropped"
        return services.run_batch(batch_id, holder)

    def poll(name: object) -> str:
        if not isinstance(name, str) or not 0 < len(name) <= 200:
            return f"not a source name: {str(name)[:80]!r}, dropped"
        return services.poll_queued(name)

    def push(alert_id: object) -> str:
        if not isinstance(alert_id, int) or isinstance(alert_id, bool) or not 0 < alert_id <= MAX_ID:
            return f"not an alert id: {str(alert_id)[:80]!r}, dropped"
        return services.push_alert(alert_id)

    register(app, INGEST, poll)
    if services.settings.push is not None:  # a push left unsent is picked up again by the push:due job
        register(app, PUSH, push)
    register(app, BATCH, batch, again=lambda batch_id: queue.put(BATCH, batch_id, countdown=FAILED_BATCH_WAIT))


@click.command()
@click.option("--concurrency", type=click.IntRange(1, 256), default=None,
              help="Tasks run at once, each on its own thread with its own relay connection (default: [mail] "
                   "concurrency).")
@config_option
@click.pass_context
def worker(ctx: click.Context, concurrency: int | None) -> None:
    """Run a Celery worker for [queue] url: source polls and edition batches."""
    services: Any = components_of(ctx)
    queue = services.work_queue
    if queue is None:
        raise ConfigError("queue.url", "is not set: without a queue every task runs in `gazette serve`, and a "
                                       "worker has nothing to do")
    services.prepare_database(migrate=False)
    holder = holder_id()
    heartbeat = Lease(services.engine, worker_lease_name(holder), holder, WORKER_TTL, services.clock)
    if not heartbeat.acquire():
        raise click.ClickException("could not take this worker's heartbeat lease")
    beating = BackgroundLoop("worker-heartbeat", heartbeat.acquire, WORKER_TTL / 3,
                             failure="worker: renewing the heartbeat failed")
    beating.start()
    app = queue.app
    register_tasks(app, services, holder)
    threads = concurrency or services.settings.mail.concurrency
    log.info("worker %s: %d threads on %s", holder, threads, QUEUE)
    try:
        app.Worker(pool="threads", concurrency=threads, hostname=f"gazette-{socket.gethostname()}-{holder}",
                   queues=[QUEUE], without_mingle=True, without_gossip=True, loglevel=logging.INFO,
                   redirect_stdouts=False).start()
    finally:
        beating.stop()
        heartbeat.release()
        services.close()
