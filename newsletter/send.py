"""Sending an edition: every active subscriber of the edition gets at most one mail per run.

The shape is listmonk's: the run depends on the small protocols of `edition_run` (readers, ledger, articles,
messenger), not on the concrete stores. Subscribers are grouped into segments (same categories, language, time
zone and high-water mark) and each segment's mail is rendered once (`segments`, the pipeline preview and retry
share); the `outbox`'s N workers personalise, sign and hand the messages to their own connection under a shared
rate gate; its recorder writes the outcomes in batches.

Exactly once: the edition row is unique per (name, scheduled time). Each recipient's delivery row is written
as "queued" *before* the message goes to a worker, and "sent" once the server took it. A process killed in
between resends, on its next run, only the rows still "queued": the messages in flight plus those whose outcome
was not yet written (at most one recorder batch). The Message-ID is the same on the resend. A lease per edition
keeps two senders off the same edition; a lease held by a process of this host that died is taken over at once.

Transient failures (4xx, dropped connections) are retried with doubling waits; permanent ones (5xx) are
recorded and count as a hard bounce. Editions that carry ads go only to readers who consented to advertising,
and are held back between 21:00 and 08:00 in the reader's zone and go out at 08:00 (`is_quiet_hour`,
`next_morning`). A later run (the scheduler's resume task, or the same command again) picks up anything held,
retrying or interrupted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from .deliveries import FINAL, Outcome
from .edition_run import DeliveryState, EditionRun, RunLease, RunSettings
from .outbox import Outbox
from .preview import plan_for
from .records import Subscriber
from .segments import (
    SegmentMail,
    digest_of,
    group_segments,
    home_zone,
    most_viewed_of,
    outgoing,
    readers_of,
    render_segment,
    segment_mail,
)
from .settings import EditionSettings

log = logging.getLogger(__name__)

QUIET_FROM, QUIET_UNTIL = 21, 8  # 정보통신망법 §50: no advertising mail 21:00-08:00 without separate consent
WAITING = ("queued", "retry", "held")  # delivery rows a later run still sends


@dataclass(frozen=True)
class SendReport:
    edition: str
    edition_id: int | None
    scheduled_at: datetime
    recipients: int
    sent: int
    skipped: int
    failed: int
    already_done: int
    is_dry_run: bool
    held: int = 0
    retrying: int = 0
    is_busy: bool = False

    def line(self) -> str:
        if self.is_busy:
            return f"{self.edition} at {self.scheduled_at.isoformat()}: another process is sending this edition"
        what = "would send" if self.is_dry_run else "sent"
        extra = "".join([f", held for the night {self.held}" if self.held else "",
                         f", to retry later {self.retrying}" if self.retrying else ""])
        return (f"{self.edition} at {self.scheduled_at.isoformat()}: {self.recipients} recipients, {what} {self.sent}, "
                f"nothing new for {self.skipped}, failed {self.failed}, already done {self.already_done}{extra}")


def is_quiet_hour(moment: datetime, zone: tzinfo) -> bool:
    """Whether `moment` falls in the reader's night (21:00 to 08:00 on their wall clock)."""
    hour = moment.astimezone(zone).hour
    return hour >= QUIET_FROM or hour < QUIET_UNTIL


def next_morning(moment: datetime, zone: tzinfo) -> datetime:
    """08:00 on the reader's wall clock: today's if it is still before it, else tomorrow's."""
    local = moment.astimezone(zone)
    morning = local.replace(hour=QUIET_UNTIL, minute=0, second=0, microsecond=0)
    return morning if local.hour < QUIET_UNTIL else morning + timedelta(days=1)


def is_settled(counts: dict[str, int]) -> bool:
    """Nothing of the run is left to send: no row queued, to retry or held."""
    return sum(counts.get(status, 0) for status in WAITING) == 0


def send_edition(edition: EditionSettings, *, scheduled_at: datetime, run: EditionRun, everyone: bool = False,
                 dry_run: bool = False) -> SendReport:
    """Send (or resume) the edition of `scheduled_at`, to `readers_of` it."""
    period_start = scheduled_at - edition.window
    shown_at = scheduled_at.astimezone(run.settings.site.timezone)  # shown to people: the site's zone
    if dry_run:
        plan = plan_for(edition, scheduled_at, period_start, readers_of(edition, scheduled_at, run, everyone=everyone),
                        run)
        return SendReport(edition.name, None, shown_at, plan.recipients, len(plan.mails), plan.skipped, 0, 0, True)
    ledger = run.ledger
    edition_id = ledger.open_edition(edition.name, scheduled_at, period_start, run.clock())
    started = ledger.states(edition_id)
    recipients = readers_of(edition, scheduled_at, run, everyone=everyone, edition_id=edition_id)
    lease = run.lease_for(edition_id)
    if not lease.acquire():
        return SendReport(edition.name, edition_id, shown_at, len(recipients), 0, 0, 0, 0, False, is_busy=True)
    try:
        return _send(edition, edition_id, scheduled_at, period_start, recipients, started, run, lease)
    finally:
        lease.release()


def _send(edition: EditionSettings, edition_id: int, scheduled_at: datetime, period_start: datetime,
          recipients: list[Subscriber], states: dict[int, DeliveryState], run: EditionRun,
          lease: RunLease) -> SendReport:
    s, ledger = run.settings, run.ledger
    now = run.clock()
    receiving = {r.id for r in recipients}
    # Rows still waiting (held for the night, to retry, interrupted) of readers who left since: never sent, settled.
    ledger.settle_skipped(edition_id, {
        sid: "no longer receives this edition (unsubscribed, paused, or the edition or advertising consent withdrawn)"
        for sid, (status, _, _) in states.items() if status in WAITING and sid not in receiving}, statuses=WAITING)
    already = sum(1 for r in recipients if states.get(r.id, ("",))[0] in FINAL)
    todo = [r for r in recipients if states.get(r.id, ("",))[0] not in FINAL]
    high_waters = ledger.high_waters([r.id for r in todo], exclude_edition=edition_id)
    most_viewed = most_viewed_of(edition, period_start, scheduled_at, run)
    outbox = Outbox(run, edition_id, lease)
    skipped = 0
    try:
        for segment in group_segments(todo, site_zone=s.site.timezone, site_language=s.site.language,
                                      period_start=period_start, high_waters=high_waters):
            readers = segment.readers
            digest = digest_of(edition, segment.categories, segment.after, scheduled_at, most_viewed, run)
            if digest is None:
                ledger.mark_skipped(edition_id, [r.id for r in readers])
                skipped += len(readers)
                for _ in readers:
                    run.progress("skipped")
                continue
            rendered = render_segment(edition, digest, segment, run, campaign=f"{edition.name}-{edition_id}")
            segment_id = ledger.save_segment(edition_id, segment.key, segment.language, rendered,
                                             digest.article_count, run.clock())
            mail = segment_mail(rendered, edition_name=edition.name, edition_id=edition_id, segment_id=segment_id,
                                run=run)
            due, night = [], []
            for r in readers:
                state = states.get(r.id)
                if state is not None and state[0] in ("retry", "held") and state[2] is not None and state[2] > now:
                    continue  # its time has not come: a later run sends it
                (night if edition.has_ads and is_quiet_hour(now, segment.zone) else due).append(r)
            if night:
                ledger.hold(edition_id, [r.id for r in night], segment_id, next_morning(now, segment.zone),
                            digest.article_count, digest.high_water_at)
            for chunk in _chunks(due, 100):
                messages = [outgoing(r, edition_id, mail, run, attempts=(states.get(r.id) or ("", 0, None))[1])
                            for r in chunk]
                ledger.queue(edition_id, [(m.subscriber_id, m.recipient.message_id) for m in messages],
                             segment_id=segment_id, articles=digest.article_count, high_water_at=digest.high_water_at)
                for message in messages:
                    outbox.put(message)
        outbox.drain()
        retry_due(edition, edition_id, run, outbox, deadline=now + retry_window(s))
    finally:
        outbox.close()
    counts = ledger.counts(edition_id)
    if is_settled(counts):
        ledger.finish_edition(edition_id, run.clock())
    report = SendReport(edition=edition.name, edition_id=edition_id,
                        scheduled_at=scheduled_at.astimezone(s.site.timezone),  # shown to people: the site's zone
                        recipients=len(recipients), sent=outbox.sent, skipped=skipped, failed=outbox.failed,
                        already_done=already, is_dry_run=False, held=counts.get("held", 0),
                        retrying=counts.get("retry", 0) + counts.get("queued", 0))
    log.info("edition %s", report.line())
    return report


def retry_window(s: RunSettings) -> timedelta:
    """How long a run waits for its transient failures: every retry's wait, and a few seconds."""
    return sum((s.mail.retry_delay * 2 ** i for i in range(s.mail.retries)), timedelta()) + timedelta(seconds=5)


def retry_due(edition: EditionSettings, edition_id: int, run: EditionRun, outbox: Outbox,
               deadline: datetime) -> None:
    """Wait for and resend transient failures while their waits fit in this run; later ones wait for a resume. A
    reader is asked again whether they still receive the edition (consent to advertising included), and an
    advertising edition still waits for the morning."""
    ledger = run.ledger
    while True:
        pending = ledger.retries(edition_id)
        if not pending:
            return
        soonest = min(at for _, _, at, _ in pending)
        if soonest > deadline:
            return
        wait = (soonest - run.clock()).total_seconds()
        if wait > 0:
            run.sleep(wait)
        now = run.clock()
        due = [p for p in pending if p[2] <= now]
        stored = ledger.segment_mails(edition_id)
        mails: dict[int, SegmentMail] = {}
        receiving = {r.id: r for r in run.readers.confirmed(edition.name, ads=edition.has_ads,
                                                            ids=[p[0] for p in due])}
        for subscriber_id, attempts, _, segment_id in due:
            subscriber = receiving.get(subscriber_id)
            rendered = stored.get(segment_id) if segment_id is not None else None
            if subscriber is None or rendered is None or segment_id is None:
                ledger.record(edition_id, [Outcome(subscriber_id, "failed", "no longer receives this edition, "
                                                   "or its segment is gone", attempts)])
                continue
            zone = home_zone(subscriber, run.settings.site.timezone)
            if edition.has_ads and is_quiet_hour(now, zone):
                ledger.record(edition_id, [Outcome(subscriber_id, "retry", "held for the morning (advertising)",
                                                   attempts, at=next_morning(now, zone))])
                continue
            if segment_id not in mails:  # the segment's mail as stored when it was first rendered
                mails[segment_id] = segment_mail(rendered, edition_name=edition.name, edition_id=edition_id,
                                                 segment_id=segment_id, run=run)
            outbox.put(outgoing(subscriber, edition_id, mails[segment_id], run, attempts=attempts))
        outbox.drain()


def _chunks(items: Sequence[Subscriber], size: int) -> Iterable[Sequence[Subscriber]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
