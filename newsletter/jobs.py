"""The audience side's scheduled jobs: which exist for which settings, their triggers, and the work each does.

    digest:due          every 15 minutes (UTC): each edition run that came due on some reader's clock
    digest:resume       every 5 minutes: retries, night holds and interrupted runs that are due
    consent:reconfirm   daily at 10:30 site time (not at night): advertising consent asked again every two years
    bounces             every 5 minutes, with [mail] bounce_folder: the DSNs, complaints and unsubscribe mails there
    figures:daily       every 5 minutes, with the figures: the dashboard's daily figures (missed days caught up,
                        today kept fresh) and the funnels of editions still settling (newsletter/dashboard.py)

The digest jobs exist when editions are configured. `AudienceJobs` holds what the work needs (the settings, the
stores, the notices, a send function, the clock); `specs()` is the job list the wiring hands to the scheduler, and
each job's work is a method that tests (and `gazette bounces process`) call directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from collections.abc import Callable

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from feeds.core.clock import Clock
from feeds.core.scheduling import TaskSpec
from feeds.settings import Settings

from .bounces import FolderReport, IntakeRules, process_folder
from .dashboard import Figures
from .deliveries import DeliveryStore
from .errors import DeliveryError
from .notices import Notices
from .records import ALERTS
from .send import SendReport
from .subscribers import SubscriberStore
from .timing import TICK, due_runs
from .tokens import Tokens
from .verp import TagCodec

log = logging.getLogger(__name__)

JOB_MISFIRE_GRACE = timedelta(minutes=5)  # a frequent job that missed its time runs late, within this, once
DIGEST_MISFIRE_GRACE = timedelta(hours=2)  # how far back `digest:due` looks, and the daily job's grace
RECONFIRM_EVERY = timedelta(days=730)  # 정보통신망법 §50⑧ with 시행령 §62-3: every two years


@dataclass(frozen=True)
class AudienceJobs:
    """The audience side's jobs over what they work on. `send(edition, scheduled_at)` runs one edition run."""

    settings: Settings
    subscribers: SubscriberStore
    deliveries: DeliveryStore
    notices: Notices
    tokens: Tokens
    tags: TagCodec
    clock: Clock
    send: Callable[[str, datetime], SendReport]
    figures: Figures | None = None

    def specs(self) -> list[TaskSpec]:
        """The jobs these settings call for, in a fixed order."""
        s = self.settings
        specs = []
        if s.digests:  # every edition at its hour on each reader's own clock, whatever their zone
            specs.append(TaskSpec(key="digest:due", name="digest editions due in any reader's time zone",
                                  trigger=CronTrigger(minute=f"*/{int(TICK.total_seconds() // 60)}", timezone=UTC),
                                  run=self.send_due, misfire_grace=JOB_MISFIRE_GRACE))
        folder = s.mail.bounce_folder
        if folder is not None:
            specs.append(TaskSpec(key="bounces", name=f"bounces from {folder}",
                                  trigger=IntervalTrigger(minutes=5, timezone=s.site.timezone),
                                  run=lambda _at: self.process_bounces(folder).summary(),
                                  misfire_grace=JOB_MISFIRE_GRACE, start_now=True))
        if s.digests:
            specs.append(TaskSpec(key="consent:reconfirm", name="advertising consent, asked again every two years",
                                  trigger=CronTrigger(hour=10, minute=30, timezone=s.site.timezone),  # not at night
                                  run=lambda _at: self.reconfirm_ads(), misfire_grace=DIGEST_MISFIRE_GRACE))
            specs.append(TaskSpec(key="digest:resume", name="resume digests (retries, night holds, interrupted runs)",
                                  trigger=IntervalTrigger(minutes=5, timezone=s.site.timezone),
                                  run=lambda _at: self.resume_editions(), misfire_grace=JOB_MISFIRE_GRACE))
        figures = self.figures
        if figures is not None:  # idempotent and catching up by itself: a missed run only waits for the next
            specs.append(TaskSpec(key="figures:daily", name="the dashboard's daily figures and edition funnels",
                                  trigger=IntervalTrigger(minutes=5, timezone=s.site.timezone),
                                  run=lambda _at: figures.roll_up(self.clock()).summary(),
                                  misfire_grace=JOB_MISFIRE_GRACE, start_now=True))
        return specs

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

    def resume_editions(self) -> str:
        """Carry on every run with deliveries due now (retries, night holds, interrupted runs) of a configured
        edition or of a breaking-news alert."""
        done = [self.send(name, at).line() for name, at in self.deliveries.unfinished(self.clock())
                if self.settings.edition(name) is not None or name == ALERTS]
        return "; ".join(done) or "nothing to resume"

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

    def process_bounces(self, folder: Path) -> FolderReport:
        """Apply the DSNs, complaint reports and unsubscribe mails in the maildir `folder`."""
        mail = self.settings.mail
        return process_folder(folder, self.subscribers, self.tokens, self.clock(), mail.hard_bounce_limit,
                              IntakeRules(self.tags, mail.unsubscribe_address, mail.complaint_senders))
