"""[queue] url: work that outgrows one process, as Celery tasks on RabbitMQ.

Both sides put work on the one queue — the content side its source polls, the audience side an edition's batches —
and `gazette worker` runs them on any machine that reaches the broker and the database. Only names and ids travel:
a task carries a source's name or a batch's id, and the worker reads the rest from the database, so a message is
small, holds no address or secret, and a stale one finds its work done.

How a lost worker loses nothing: tasks are acknowledged late (after they ran) and rejected when their worker dies
(`task_acks_late`, `task_reject_on_worker_lost`), one at a time per worker thread (prefetch 1), on a durable queue
with persistent messages (RabbitMQ keeps them through its own restart). A task whose worker was killed is delivered
again to another; what it did before the kill is in the database, and the task's own rules (the delivery ledger for
a batch) make doing it again safe.

Celery is imported only when [queue] url is set: without it, everything runs in-process and nothing here is loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

QUEUE = "gazette"
INGEST = "gazette.source.ingest"  # (source name): poll one source
BATCH = "gazette.edition.batch"  # (batch id): send one batch of an edition's readers
PUSH = "gazette.alert.push"  # (alert id): push one breaking alert to the browsers that follow it ([push])


def celery_app(url: str) -> Celery:
    """The Celery app both the producers (the scheduler, the CLI) and `gazette worker` use, for the broker `url`."""
    from celery import Celery
    from kombu import Queue

    app = Celery("gazette", broker=url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,  # acknowledged after the task ran: a worker killed mid-task gives it back
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a worker holds no more than it runs: the rest stays for the others
        task_ignore_result=True,  # outcomes are in the database, not in a result backend
        task_serializer="json", accept_content=["json"],
        task_default_queue=QUEUE,
        task_queues=(Queue(QUEUE, durable=True),),
        task_default_delivery_mode="persistent",
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a broker that is away is waited for, never given up on
        broker_heartbeat=10,
        worker_hijack_root_logger=False,  # Gazette's own logging configuration stays
        worker_send_task_events=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


class TaskQueue:
    """The producer side: put a task on the queue by name. Publishing retries while the broker is away (`retries`
    times, about 2 s apart: about a minute; then the error goes to the caller: a scheduled job fails and runs again
    next time, a batch left unsent is enqueued again by the resume job)."""

    def __init__(self, app: Celery, *, retries: int = 30) -> None:
        self.app = app
        self.retries = retries

    def put(self, task: str, *args: Any, countdown: float | None = None) -> None:
        self.app.send_task(task, args=list(args), countdown=countdown, retry=True,
                           retry_policy={"max_retries": self.retries, "interval_start": 0.2, "interval_step": 0.5,
                                         "interval_max": 2.0})

    def close(self) -> None:
        self.app.close()


def register(app: Celery, name: str, body: Callable[..., str | None], *,
             again: Callable[..., None] | None = None) -> None:
    """Make `body(*args)` the task `name` on a worker's app; what it returns is logged. A task that raises (the
    database went away) is acknowledged like any other, so with `again` it is put on the queue once more
    (`again(*args)`, which should wait a while) rather than lost; without, the next scheduled run does it."""

    def run(*args: Any) -> None:
        try:
            detail = body(*args)
        except Exception:
            log.exception("%s%r failed%s", name, tuple(args), "; enqueued again" if again else "")
            if again is not None:
                again(*args)
            return
        if detail:
            log.info("%s%r: %s", name, tuple(args), detail)

    app.task(name=name, bind=False, shared=False)(run)  # this app only: not every app the process makes
