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

Pause and resume: an operator pauses a run that is sending (`pause_edition`: the edition row becomes "paused"). Its
workers stop taking new readers within a fraction of a second (`outbox`): the mail already handed to the server is
recorded, the rows queued but not handed over stay "queued", and the run ends as paused. Nothing resumes a paused run
by itself (the resume job and the scheduler pass it by, a send of it returns at once); `resume_edition` makes it
"sending" again and carries it on through the same ledger, to the same readers (the run's audience), so that every
reader still gets exactly one mail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from .compose import message_id
from .deliveries import FINAL, EditionStats, Outcome
from .edition_run import DeliveryState, EditionRun, RunLease, RunSettings
from .errors import EditionState, UnknownEdition
from .outbox import Outbox
from .preview import plan_for
from .records import Audience, Subscriber
from .segments import (
    SegmentCache,
    SegmentMail,
    audience_of,
    group_segments,
    home_zone,
    most_viewed_of,
    outgoing,
    readers_of,
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
    is_paused: bool = False  # the run is paused: what is left waits for a resume
    batches: int = 0  # with [queue]: batches made (or still open) for the workers
    queued: int = 0  # with [queue]: readers queued in them
    requeued: int = 0  # with [queue]: open batches enqueued again (a resume, or a message perhaps lost)

    def line(self) -> str:
        if self.is_busy:
            return f"{self.edition} at {self.scheduled_at.isoformat()}: another process is sending this edition"
        if self.is_paused and not (self.sent or self.failed or self.skipped):
            return (f"{self.edition} at {self.scheduled_at.isoformat()} (edition {self.edition_id}) is paused: "
                    f"gazette digest resume {self.edition_id} carries it on")
        if self.batches and not self.recipients:
            return (f"{self.edition} at {self.scheduled_at.isoformat()} (edition {self.edition_id}): {self.batches} "
                    f"batches still open for the workers, {self.requeued} enqueued again")
        if self.batches or self.queued:
            return (f"{self.edition} at {self.scheduled_at.isoformat()} (edition {self.edition_id}): {self.recipients} "
                    f"recipients, queued {self.queued} in {self.batches} batches for the workers, nothing new for "
                    f"{self.skipped}, already done {self.already_done}"
                    + (f", held for the night {self.held}" if self.held else ""))
        what = "would send" if self.is_dry_run else "sent"
        extra = "".join([f", held for the night {self.held}" if self.held else "",
                         f", to retry later {self.retrying}" if self.retrying else ""])
        paused = (f"; paused with {self.retrying} left: gazette digest resume {self.edition_id} carries it on"
                  if self.is_paused else "")
        return (f"{self.edition} at {self.scheduled_at.isoformat()}: {self.recipients} recipients, {what} {self.sent}, "
                f"nothing new for {self.skipped}, failed {self.failed}, already done {self.already_done}{extra}{paused}")


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


READER_PAGE = 1000  # readers read, looked up and queued at a time: the run's memory is a page, whatever the audience


def send_edition(edition: EditionSettings, *, scheduled_at: datetime, run: EditionRun, everyone: bool = False,
                 dry_run: bool = False) -> SendReport:
    """Send (or resume) the edition of `scheduled_at`, to its audience (`audience_of`)."""
    period_start = scheduled_at - edition.window
    shown_at = scheduled_at.astimezone(run.settings.site.timezone)  # shown to people: the site's zone
    if dry_run:
        plan = plan_for(edition, scheduled_at, period_start, readers_of(edition, scheduled_at, run, everyone=everyone),
                        run)
        return SendReport(edition.name, None, shown_at, plan.recipients, len(plan.mails), plan.skipped, 0, 0, True)
    ledger = run.ledger
    edition_id = ledger.open_edition(edition.name, scheduled_at, period_start, run.clock())
    if ledger.edition_status(edition_id) == "paused":  # only a resume carries a paused run on
        return SendReport(edition.name, edition_id, shown_at, 0, 0, 0, 0, 0, False, is_paused=True)
    ledger.note_audience(edition_id, everyone=everyone)
    audience = audience_of(edition, scheduled_at, run, everyone=everyone, edition_id=edition_id)
    lease = run.lease_for(edition_id)
    if not lease.acquire():
        return SendReport(edition.name, edition_id, shown_at, 0, 0, 0, 0, 0, False, is_busy=True)
    try:
        return _send(edition, edition_id, scheduled_at, period_start, audience, run, lease)
    finally:
        lease.release()


def settle_departed(edition_id: int, audience: Audience, run: EditionRun) -> None:
    """Rows still waiting (held for the night, to retry, interrupted) of readers who left the audience since: never
    sent, settled as skipped. Asked a page of rows at a time."""
    after = None
    while True:
        _, rows = run.ledger.rows(edition_id, statuses=WAITING, limit=READER_PAGE, after=after, counted=False)
        if not rows:
            return
        ids = [row.subscriber_id for row in rows]
        staying = {r.id for r in run.readers.confirmed(audience.edition, ads=audience.ads, zones=audience.zones,
                                                       edition_id=audience.edition_id, ids=ids, apart=audience.apart)}
        run.ledger.settle_skipped(edition_id, {
            i: "no longer receives this edition (unsubscribed, paused, or the edition or advertising consent withdrawn)"
            for i in ids if i not in staying}, statuses=WAITING)
        after = ids[-1]


def _send(edition: EditionSettings, edition_id: int, scheduled_at: datetime, period_start: datetime,
          audience: Audience, run: EditionRun, lease: RunLease) -> SendReport:
    s, ledger = run.settings, run.ledger
    now = run.clock()
    settle_departed(edition_id, audience, run)
    segments = SegmentCache(edition, edition_id, scheduled_at, most_viewed_of(edition, period_start, scheduled_at, run),
                            run)
    outbox = Outbox(run, edition_id, lease)
    recipients = already = skipped = left = 0
    try:
        for page in run.readers.pages(audience, size=READER_PAGE):
            recipients += len(page)
            states = ledger.states(edition_id, [r.id for r in page])
            todo = [r for r in page if states.get(r.id, ("",))[0] not in FINAL]
            already += len(page) - len(todo)
            if outbox.look_for_pause():  # the rest is counted, not sent: it waits for a resume
                left += sum(1 for r in todo if r.id not in states)  # the others' rows are counted below
                continue
            def hand_over(readers: Sequence[Subscriber], mail: SegmentMail, states=states) -> None:
                outbox.put_all([outgoing(r, edition_id, mail, run, attempts=(states.get(r.id) or ("", 0, None))[1])
                                for r in readers])
            nothing_new, unreached = queue_page(edition, edition_id, todo, states, segments, period_start, now, run,
                                                is_paused=outbox.look_for_pause, hand_over=hand_over)
            skipped += nothing_new
            left += unreached
        outbox.drain()
        if not outbox.look_for_pause():
            retry_due(edition, edition_id, run, outbox, deadline=now + retry_window(s))
    finally:
        outbox.close()
    counts = ledger.counts(edition_id)
    settled = is_settled(counts) and left == 0  # readers a pause kept the run from reaching have no row yet
    if settled:  # paused or not: nothing is left for a resume
        ledger.finish_edition(edition_id, run.clock())
    paused = not settled and (outbox.paused.is_set() or ledger.edition_status(edition_id) == "paused")
    report = SendReport(edition=edition.name, edition_id=edition_id,
                        scheduled_at=scheduled_at.astimezone(s.site.timezone),  # shown to people: the site's zone
                        recipients=recipients, sent=outbox.sent, skipped=skipped, failed=outbox.failed,
                        already_done=already, is_dry_run=False, held=counts.get("held", 0),
                        retrying=left + counts.get("retry", 0) + counts.get("queued", 0),
                        is_paused=paused)
    log.info("edition %s", report.line())
    return report


def queue_page(edition: EditionSettings, edition_id: int, todo: list[Subscriber], states: dict[int, DeliveryState],
               segments: SegmentCache, period_start: datetime, now: datetime, run: EditionRun, *,
               is_paused: Callable[[], bool],
               hand_over: Callable[[Sequence[Subscriber], SegmentMail], None]) -> tuple[int, int]:
    """One page of readers: grouped into segments; each reader's row written as skipped (nothing new), held (an
    edition with ads in their night) or queued, and the queued messages handed over (to the outbox here, to the
    batch's task with [queue]). Returns how many had nothing new, and how many a pause kept from being queued that
    have no row yet."""
    s, ledger = run.settings, run.ledger
    skipped = unreached = 0
    for segment in group_segments(todo, site_zone=s.site.timezone, site_language=s.site.language,
                                  period_start=period_start, high_waters=ledger.high_waters([r.id for r in todo])):
        readers = segment.readers
        prepared = segments.get(segment)
        if prepared is None:
            ledger.mark_skipped(edition_id, [r.id for r in readers])
            skipped += len(readers)
            for _ in readers:
                run.progress("skipped")
            continue
        segment_id = prepared.mail.segment_id
        due, night = [], []
        for r in readers:
            state = states.get(r.id)
            if state is not None and state[0] in ("retry", "held") and state[2] is not None and state[2] > now:
                continue  # its time has not come: a later run sends it
            (night if edition.has_ads and is_quiet_hour(now, segment.zone) else due).append(r)
        if night:
            ledger.hold(edition_id, [r.id for r in night], segment_id, next_morning(now, segment.zone),
                        prepared.articles, prepared.high_water_at)
        for chunk in _chunks(due, 100):
            if is_paused():
                unreached += sum(1 for r in chunk if states.get(r.id) is None)
                continue
            domain = prepared.mail.template.domain  # the Message-ID alone: the links wait for the hand-over
            ledger.queue(edition_id, [(r.id, message_id(domain, run.tags.digest(edition_id, r.id))) for r in chunk],
                         segment_id=segment_id, articles=prepared.articles, high_water_at=prepared.high_water_at)
            hand_over(chunk, prepared.mail)
    return skipped, unreached


def retry_window(s: RunSettings) -> timedelta:
    """How long a run waits for its transient failures: every retry's wait, and a few seconds."""
    return sum((s.mail.retry_delay * 2 ** i for i in range(s.mail.retries)), timedelta()) + timedelta(seconds=5)


def retry_due(edition: EditionSettings, edition_id: int, run: EditionRun, outbox: Outbox,
               deadline: datetime) -> None:
    """Wait for and resend transient failures while their waits fit in this run; later ones wait for a resume. A
    reader is asked again whether they still receive the edition (consent to advertising included), and an
    advertising edition still waits for the morning."""
    ledger = run.ledger
    while not outbox.look_for_pause():
        pending = ledger.retries(edition_id, limit=READER_PAGE)  # the soonest page; each pass settles its due rows
        if not pending:
            return
        soonest = pending[0][2]
        if soonest > deadline:
            return
        while (wait := (soonest - run.clock()).total_seconds()) > 0:  # in short naps, to notice a pause
            run.sleep(min(wait, 1.0))
            if outbox.look_for_pause():
                return
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


# --- pause and resume ---------------------------------------------------------------------------------------------

def edition_stats(edition_id: int, run: EditionRun) -> EditionStats:
    """The run `edition_id`, or UnknownEdition (404)."""
    found = run.ledger.stats(edition_id)
    if not found:
        raise UnknownEdition(f"no edition run {edition_id}")
    return found[0]


def pause_edition(edition_id: int, run: EditionRun) -> EditionStats:
    """Pause a run that is sending: its workers stop taking readers soon after (whichever process runs it); the mail
    in flight is recorded, the rest waits for `resume_edition`. EditionState (409) if it is not sending."""
    before = edition_stats(edition_id, run)
    if not run.ledger.pause_edition(edition_id, run.clock()):
        raise EditionState(f"edition {edition_id} ({before.name}) is {before.status}: only a run that is sending "
                           f"can be paused")
    log.info("edition %s (%d) paused", before.name, edition_id)
    return edition_stats(edition_id, run)


def unpause_edition(edition_id: int, run: EditionRun) -> EditionStats:
    """Make a paused run "sending" again (the first half of a resume: `carry_on` is the second, perhaps on another
    thread). EditionState (409) if it is not paused."""
    before = edition_stats(edition_id, run)
    if not run.ledger.unpause_edition(edition_id):
        raise EditionState(f"edition {edition_id} ({before.name}) is {before.status}: only a paused run can be resumed")
    log.info("edition %s (%d) resumed", before.name, edition_id)
    return edition_stats(edition_id, run)


def carry_on(edition: EditionSettings, stats: EditionStats, run: EditionRun) -> SendReport:
    """Send what is left of the run `stats` (nobody twice), to the readers it was for: everyone for a manual send."""
    return send_edition(edition, scheduled_at=stats.scheduled_at, run=run, everyone=stats.audience == "everyone")


def resume_edition(edition: EditionSettings, edition_id: int, run: EditionRun) -> SendReport:
    """Resume a paused run and carry it on to its end (or to the next pause)."""
    return carry_on(edition, unpause_edition(edition_id, run), run)
