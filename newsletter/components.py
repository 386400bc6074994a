"""The whole object graph of one process: the content side's parts (`feeds.components`) and the audience side's —
subscribers, deliveries, links, notices, DKIM, the edition runs and the audience side's jobs — built from the
settings on first use. `service.py` builds one per command and hands it to the commands, the scheduler and the app.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger

from feeds import db as content_db
from feeds.components import ContentComponents
from feeds.core.scheduling import Lease, TaskSpec, holder_id
from feeds.core.shared import TokenBucket
from feeds.core.work_queue import BATCH, PUSH

from . import db
from .alerts import Alert, AlertDesk, AlertStore
from .batch_ledger import BatchLedger
from .batches import Pace, queue_edition, run_batch
from .dashboard import Figures
from .deliveries import DeliveryStore, EditionStats
from .edition_run import EditionRun, edition_run
from .errors import UnknownEdition
from .jobs import AudienceJobs
from .notices import Notices
from .outbox import RateGate
from .preview import Plan, plan_edition, preview_edition, send_test
from .push_keys import read_vapid_key
from .push_subscriptions import PushStore
from .records import ALERTS
from .retry import RetryReport, retry_edition
from .send import SendReport, carry_on, edition_stats, pause_edition, resume_edition, send_edition, unpause_edition
from .settings import EditionSettings, Settings
from .signing import DkimSigner, load_signer
from .subscribers import SubscriberStore
from .tokens import Tokens
from .transport import Transport, make_transport
from .verp import TagCodec
from .web_push import AlertPush, PushSender, TurnGate

PUSH_LEASE = timedelta(minutes=2)  # renewed every 20 s while a run's pushes go


@dataclass
class Components(ContentComponents):
    """Both sides' parts of one process, each made on first use."""

    settings: Settings  # the whole file: both sides' sections
    migrations: tuple[Path, ...] = (content_db.MIGRATIONS, db.MIGRATIONS)  # every side's branch: the whole schema
    # A worker's: each thread's own relay connection, and the threads running a batch now (their claims are live).
    _connections: threading.local = field(default_factory=threading.local, init=False, repr=False)
    _busy: set[str] = field(default_factory=set, init=False, repr=False)
    _segment_mails: dict[int, Any] = field(default_factory=dict, init=False, repr=False)
    _busy_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

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
    def signer(self) -> DkimSigner | None:
        return load_signer(self.settings.mail)

    def transport(self) -> Transport:
        """A new connection to the relay of [mail]."""
        return make_transport(self.settings.mail)

    @cached_property
    def notices(self) -> Notices:
        return Notices(self.settings, self.templates, self.tokens, self.clock, self.transport, self.tags, self.signer)

    @cached_property
    def figures(self) -> Figures:
        return Figures(self.engine, self.settings.site.timezone)

    @cached_property
    def audience_jobs(self) -> AudienceJobs:
        return AudienceJobs(self.settings, self.subscribers, self.deliveries, self.notices, self.tokens, self.tags,
                            self.clock, send=lambda edition, at: self.send(edition, at), figures=self.figures)

    def task_specs(self) -> list[TaskSpec]:
        """Every scheduled job: the content side's, then the audience side's (with [push], `push:due`)."""
        return [*super().task_specs(), *self.audience_jobs.specs(), *self.push_specs()]

    @cached_property
    def alerts(self) -> AlertDesk:
        """Breaking-news alerts, through the same engine as the editions (and, with [push], to browsers)."""
        return AlertDesk(AlertStore(self.engine), self.store, self.edition_run, self.store.campaign_clicks,
                         push=self.push)

    # --- [push] -------------------------------------------------------------------------------------------------

    @cached_property
    def push_store(self) -> PushStore:
        return PushStore(self.engine)

    @cached_property
    def push(self) -> AlertPush | None:
        """Breaking alerts by Web Push; None without [push] (nothing of it runs)."""
        p = self.settings.push
        if p is None:
            return None
        key = read_vapid_key(p.vapid_private_key_file)
        gate = (TurnGate(TokenBucket(self.shared, "web-push", p.rate_per_second).turns) if self.shared is not None
                else RateGate(p.rate_per_second))
        queue = self.work_queue
        return AlertPush(store=self.push_store, settings=p, site_zone=self.settings.site.timezone,
                         site_language=self.settings.site.language, sender=lambda: PushSender(p, key),
                         url=self._push_link,  # each run its own holder: the due job never takes over a run of this process
                         lease=lambda name: Lease(self.engine, name, holder_id(), PUSH_LEASE, self.clock),
                         gate=gate, clock=self.clock, is_live=self._alert_story_live,
                         enqueue=(lambda alert_id: queue.put(PUSH, alert_id)) if queue is not None else None)

    def _alert_story_live(self, alert: Alert) -> bool:
        """An alert of a story may push only while the story is live (a kill overnight stops the 08:00 pushes)."""
        if not alert.content.article_id:
            return True
        story = self.store.article(alert.content.article_id)
        return story is not None and story.is_live

    def _push_link(self, alert: Alert) -> str:
        """Where a tap on the notification leads: a story's tracked link (its clicks count for the alert), else
        the alert's link, else the site."""
        content = alert.content
        if content.article_id:
            return self.redirects.url(content.article_id, "push", query={
                "utm_source": "push", "utm_medium": "push", "utm_campaign": f"{ALERTS}-{alert.id}"})
        return content.link or self.settings.site.base_url + "/"

    def push_alert(self, alert_id: int) -> str:
        """A worker's task, and the due job's step: push alert `alert_id` to whoever still lacks it."""
        assert self.push is not None
        return self.push.deliver(self.alerts.get(alert_id)).summary()

    def push_specs(self) -> list[TaskSpec]:
        push = self.push
        if push is None:
            return []
        queue = self.work_queue

        def due(_at: datetime) -> str:
            alert_ids = push.due()
            for alert_id in alert_ids:
                if queue is not None:
                    queue.put(PUSH, alert_id)
                else:
                    self.push_alert(alert_id)
            return f"{len(alert_ids)} alert(s) with pushes due" + (" queued" if queue is not None else "")

        return [TaskSpec(key="push:due", name="breaking alerts' pushes held for the night or to retry",
                         trigger=IntervalTrigger(minutes=1, timezone=UTC), run=due,
                         misfire_grace=timedelta(minutes=5))]

    def send(self, edition_name: str, scheduled_at: datetime, *, everyone: bool = False, dry_run: bool = False,
             progress: Callable[[str], None] = lambda outcome: None, resume: bool = False) -> SendReport:
        """Send (or carry on) a run: here, or with [queue] url frozen into batches for the workers."""
        if edition_name == ALERTS and not dry_run:  # an alert's run (the resume job names runs by name and time)
            return self.alerts.send_at(scheduled_at)
        if self.work_queue is not None and not dry_run:
            return queue_edition(self.edition(edition_name), scheduled_at=scheduled_at, run=self.edition_run(progress),
                                 batches=self.batches, enqueue=lambda batch_id: self.work_queue.put(BATCH, batch_id),
                                 size=self.settings.queue.batch_size, everyone=everyone, resume=resume)
        return send_edition(self.edition(edition_name), scheduled_at=scheduled_at, run=self.edition_run(progress),
                            everyone=everyone, dry_run=dry_run)

    def preview(self, edition_name: str, scheduled_at: datetime, email: str, *,
                stand_in_links: bool = False) -> dict[str, Any] | None:
        return preview_edition(self.edition(edition_name), scheduled_at=scheduled_at, run=self.edition_run(),
                               email=email, stand_in_links=stand_in_links)

    def plan(self, edition_name: str, scheduled_at: datetime) -> Plan:
        return plan_edition(self.edition(edition_name), scheduled_at=scheduled_at, run=self.edition_run())

    def retry(self, edition_name: str, edition_id: int, scheduled_at: datetime) -> RetryReport:
        if edition_name == ALERTS:
            return self.alerts.retry(edition_id)
        return retry_edition(self.edition(edition_name), edition_id, scheduled_at=scheduled_at, run=self.edition_run())

    def pause(self, edition_id: int) -> EditionStats:
        """Pause the run `edition_id` of a configured edition (whichever process sends it stops taking readers soon
        after); an alert's run is not paused here (UnknownEdition, 404)."""
        self.edition(edition_stats(edition_id, self.edition_run()).name)
        return pause_edition(edition_id, self.edition_run())

    def resume(self, edition_id: int, progress: Callable[[str], None] = lambda outcome: None) -> SendReport:
        """Resume the paused run `edition_id` and send the rest of it here, to its end."""
        stats = edition_stats(edition_id, self.edition_run())
        if self.work_queue is not None:  # its open batches go to the workers again
            resumed = unpause_edition(edition_id, self.edition_run())
            return self.send(resumed.name, resumed.scheduled_at, everyone=resumed.audience == "everyone", resume=True)
        return resume_edition(self.edition(stats.name), edition_id, self.edition_run(progress))

    def resume_soon(self, edition_id: int) -> EditionStats:
        """Resume the paused run `edition_id` now and send the rest of it on a thread of its own (the web's way:
        the answer does not wait for the run). Its lease keeps any other sender off it meanwhile."""
        stats = edition_stats(edition_id, self.edition_run())
        edition = self.edition(stats.name)
        if self.work_queue is not None:  # enqueuing the open batches again is quick: done before answering
            self.resume(edition_id)
            return edition_stats(edition_id, self.edition_run())
        resumed = unpause_edition(edition_id, self.edition_run())

        def run() -> None:
            try:
                carry_on(edition, resumed, self.edition_run())
            except Exception:  # the run's rows stay as they are: the resume job or a resume by hand carries them on
                logging.getLogger(__name__).exception("edition %s (%d): resuming failed", edition.name, edition_id)

        threading.Thread(target=run, name=f"edition-{edition_id}", daemon=True).start()
        return resumed

    @cached_property
    def batches(self) -> BatchLedger:
        return BatchLedger(self.engine)

    @cached_property
    def pace(self) -> Pace:
        """The mail rate of the whole deployment, shared by every worker through Redis ([queue] redis_url)."""
        rate = self.settings.mail.rate_per_second
        if self.shared is None:
            return Pace(RateGate(rate).turns)
        return Pace(TokenBucket(self.shared, self.settings.mail.url, rate).turns)  # per relay (its URL, hashed)

    def run_batch(self, batch_id: int, holder: str) -> str:
        """A worker's task: send batch `batch_id` over this thread's own connection to the relay; its rows are claimed
        in the name of this worker's thread."""
        local = self._connections

        def connection() -> Transport:
            if getattr(local, "transport", None) is None:
                local.transport = self.transport()
            return local.transport

        queue = self.work_queue
        assert queue is not None
        claimant = f"{holder}|{threading.get_ident()}"
        with self._busy_lock:
            self._busy.add(claimant)
        try:
            return run_batch(batch_id, run=self.edition_run(), batches=self.batches, edition_of=self.edition,
                             holder=claimant, connection=connection, pace=self.pace,
                             enqueue_later=lambda batch, wait: queue.put(BATCH, batch, countdown=wait),
                             busy=frozenset(self._busy), mails=self._segment_mails)
        finally:
            with self._busy_lock:
                self._busy.discard(claimant)


    def send_test(self, edition_name: str, scheduled_at: datetime, as_reader: str, to: str) -> str | None:
        return send_test(self.edition(edition_name), scheduled_at=scheduled_at, run=self.edition_run(),
                         as_reader=as_reader, to=to)

    def edition(self, name: str) -> EditionSettings:
        """The configured edition `name`, or UnknownEdition (404) naming the configured ones."""
        edition = self.settings.edition(name)
        if edition is None:
            raise UnknownEdition(f"unknown edition {name!r}; configured: "
                                 + ", ".join(e.name for e in self.settings.digests))
        return edition

    def edition_run(self, progress: Callable[[str], None] = lambda outcome: None) -> EditionRun:
        """What an edition run works with: the stores behind their protocols, the relay, the links, the clock."""
        return edition_run(self.settings, articles=self.store, subscribers=self.subscribers,
                           deliveries=self.deliveries, engine=self.engine, transports=self.transport,
                           templates=self.templates, tokens=self.tokens, redirects=self.redirects, clock=self.clock,
                           tags=self.tags, signer=self.signer, sleep=self.sleep, progress=progress)
