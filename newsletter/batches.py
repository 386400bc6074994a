"""With [queue]: an edition run as Celery batches — frozen here, sent by `gazette worker` processes anywhere.

    queue_edition   the scheduler's (or the CLI's) half: the run's readers a page at a time, each page's rows written
                    to the ledger as the in-process send writes them (skipped, held for the night, or queued with
                    their Message-ID), and each page with queued rows made a batch: an `edition_batches` row and one
                    task carrying its id
    run_batch       a worker's half: claim a few of the batch's rows, make and sign each reader's message, wait for
                    the deployment's shared rate limit, hand it to the relay, record the outcomes; until the batch's
                    range has nothing left to send now

Exactly once, as in-process: the delivery row says what a reader has. A batch delivered twice (a worker killed, the
broker back from a restart) finds its sent rows final and its rows held by live workers claimed; the rows a killed
worker had claimed are taken over once its heartbeat lapses (at once on its own host) and are the only ones that
can go twice: at most CLAIM per task that worker was running (docs/scaling.md).

Transient failures come back as a task of the same batch after their wait (while it fits the run's retry window;
later ones, and mail held for the night, are the resume job's, which makes new batches of them). A pause is seen
by every worker between two claims: rows not yet handed over stay queued and the batch stays open; a resume sends
the edition's open batches again. An alert's run is sent in-process (one process suffices for it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from .batch_ledger import Batch, BatchLedger
from .compose import wire_address
from .deliveries import FINAL, Outcome
from .edition_run import EditionRun
from .errors import DeliveryError
from .outbox import failure_outcome, write_outcomes
from .records import Subscriber
from .segments import (SegmentCache, SegmentMail, audience_of, home_zone, message_bytes, most_viewed_of, outgoing,
                       segment_mail)
from .send import SendReport, is_quiet_hour, is_settled, next_morning, queue_page, retry_window, settle_departed
from .settings import EditionSettings
from .transport import Transport

log = logging.getLogger(__name__)

CLAIM = 20  # rows a worker's task holds at a time: what a kill of it can send twice
STALE_BATCH = timedelta(hours=1)
KEEP_MAILS = 512  # segment mails a worker keeps between tasks  # an open batch not seen for this long is enqueued again by the resume job


@dataclass(frozen=True)
class Pace:
    """The deployment's mail rate: `turns(n)` takes the next n turns at once and says when each comes, on
    `time.monotonic()`'s clock (a token bucket in Redis shared by every worker: one round trip per claim, not per
    message; or a process's own gate)."""

    turns: Callable[[int], list[float]]
    sleep: Callable[[float], None] = time.sleep


def queue_edition(edition: EditionSettings, *, scheduled_at: datetime, run: EditionRun, batches: BatchLedger,
                  enqueue: Callable[[int], None], size: int, everyone: bool = False,
                  resume: bool = False) -> SendReport:
    """Freeze the edition run of `scheduled_at` into batches of at most `size` readers and put each on the queue
    (`enqueue(batch_id)`). A run with batches still open only has those enqueued again: all of them after a pause
    (`resume`) or a freeze cut short, else those not seen for STALE_BATCH (a message the broker may have lost); the
    rest of a freeze cut short is frozen by the next call once they are done."""
    period_start = scheduled_at - edition.window
    shown_at = scheduled_at.astimezone(run.settings.site.timezone)
    ledger = run.ledger
    edition_id = ledger.open_edition(edition.name, scheduled_at, period_start, run.clock())
    if ledger.edition_status(edition_id) == "paused":
        return SendReport(edition.name, edition_id, shown_at, 0, 0, 0, 0, 0, False, is_paused=True)
    ledger.note_audience(edition_id, everyone=everyone)
    now = run.clock()
    still_open = batches.open(edition_id)
    if still_open:  # all of them after a freeze cut short: which of them the broker got is not known
        everything = resume or not batches.is_frozen(edition_id)
        again = [b for b in still_open if everything or b.enqueued_at < now - STALE_BATCH]
        for b in again:
            batches.enqueued(b.id, now)
            enqueue(b.id)
        return SendReport(edition.name, edition_id, shown_at, 0, 0, 0, 0, 0, False, batches=len(still_open),
                          requeued=len(again))
    audience = audience_of(edition, scheduled_at, run, everyone=everyone, edition_id=edition_id)
    lease = run.lease_for(edition_id)
    if not lease.acquire():
        return SendReport(edition.name, edition_id, shown_at, 0, 0, 0, 0, 0, False, is_busy=True)
    recipients = already = skipped = queued = made = 0
    try:
        batches.mark_frozen(edition_id, None)  # no worker finishes the run before its last page is frozen
        settle_departed(edition_id, audience, run)
        segments = SegmentCache(edition, edition_id, scheduled_at,
                                most_viewed_of(edition, period_start, scheduled_at, run), run)
        for page in run.readers.pages(audience, size=size):
            lease.acquire()  # renewed: a big audience takes a while to freeze
            recipients += len(page)
            states = ledger.states(edition_id, [r.id for r in page])
            todo = [r for r in page if states.get(r.id, ("",))[0] not in FINAL]
            already += len(page) - len(todo)
            handed: list[int] = []
            nothing_new, _ = queue_page(edition, edition_id, todo, states, segments, period_start, now, run,
                                        is_paused=lambda: False,
                                        hand_over=lambda readers, mail: handed.append(len(readers)))
            skipped += nothing_new
            if handed:
                queued += sum(handed)
                enqueue(batches.add(edition_id, page[0].id, page[-1].id, run.clock()))
                made += 1
        batches.mark_frozen(edition_id, run.clock())
        finish_if_done(edition_id, run, batches)  # its batches may all be done already, or there were none
    finally:
        lease.release()
    report = SendReport(edition.name, edition_id, shown_at, recipients, 0, skipped, 0, already, False,
                        held=ledger.counts(edition_id).get("held", 0), batches=made, queued=queued)
    log.info("edition %s", report.line())
    return report


def run_batch(batch_id: int, *, run: EditionRun, batches: BatchLedger, edition_of: Callable[[str], EditionSettings],
              holder: str, connection: Callable[[], Transport], pace: Pace,
              enqueue_later: Callable[[int, float], None], busy: Collection[str] = (),
              mails: dict[int, SegmentMail] | None = None) -> str:
    """Send what is left of batch `batch_id` now (a worker's task): CLAIM rows at a time until none is left, in the
    name of `holder` (this worker's thread; `busy`: the threads of this worker running a task now)."""
    batch = batches.get(batch_id)
    if batch is None or batch.done_at is not None:
        return "done already"
    ledger = run.ledger
    edition = edition_of(batch.edition)
    mails = {} if mails is None else mails  # a worker's, kept across its tasks: a segment's mail never changes
    sent = failed = 0
    while True:
        if ledger.edition_status(batch.edition_id) != "sending":  # paused (a resume sends it again), or finished
            batches.release(batch.edition_id, holder)
            return f"edition {batch.edition_id} is {ledger.edition_status(batch.edition_id)}: batch left open"
        claimed = batches.claim(batch, holder, CLAIM, run.clock(), busy=busy)
        if not claimed:
            break
        receiving = {r.id: r for r in run.readers.confirmed(edition.name, ads=edition.has_ads,
                                                            ids=[c.subscriber_id for c in claimed])}
        turns = pace.turns(len(claimed))
        outcomes = [_deliver(c, receiving.get(c.subscriber_id), batch, edition, mails, run, connection,
                             lambda at=at: pace.sleep(max(0.0, at - time.monotonic())))
                    for c, at in zip(claimed, turns)]
        write_outcomes(run, batch.edition_id, outcomes)
        sent += sum(1 for o in outcomes if o.status == "sent")
        failed += sum(1 for o in outcomes if o.status == "failed")
    return _after_pass(batch, run, batches, enqueue_later, f"sent {sent}, failed {failed}", holder, busy)


def _deliver(claimed, reader: Subscriber | None, batch: Batch, edition: EditionSettings,  # type: ignore[no-untyped-def]
             mails: dict[int, SegmentMail], run: EditionRun, connection: Callable[[], Transport],
             wait_turn: Callable[[], None]) -> Outcome:
    """One claimed row's hand-over, as the outbox does it; the outcome to record."""
    sid, attempts, segment_id = claimed.subscriber_id, claimed.attempts, claimed.segment_id
    if reader is None:
        return Outcome(sid, "skipped", "no longer receives this edition (unsubscribed, paused, or the edition or "
                                       "advertising consent withdrawn)", attempts)
    now, zone = run.clock(), home_zone(reader, run.settings.site.timezone)
    if edition.has_ads and is_quiet_hour(now, zone):
        return Outcome(sid, "retry", "held for the morning (advertising)", attempts, at=next_morning(now, zone))
    mail = mails.get(segment_id) if segment_id is not None else None
    if mail is None and segment_id is not None:
        stored = run.ledger.segment(segment_id)
        if stored is not None and stored[0] == batch.edition_id:
            if len(mails) >= KEEP_MAILS:
                mails.clear()
            mail = mails[segment_id] = segment_mail(stored[1], edition_name=edition.name,
                                                    edition_id=batch.edition_id, segment_id=segment_id, run=run)
    if mail is None:
        return Outcome(sid, "failed", "its segment's mail is no longer stored", attempts)
    message = outgoing(reader, batch.edition_id, mail, run, attempts=attempts)
    try:
        data = message_bytes(message, run)
        wait_turn()
        connection().send(message.envelope_from, wire_address(message.email), data)
    except DeliveryError as exc:
        return failure_outcome(message, exc, now=run.clock(), retries=run.settings.mail.retries,
                               retry_delay=run.settings.mail.retry_delay)
    except Exception as exc:  # one bad message never stops the batch
        log.exception("edition %s: subscriber %s", batch.edition_id, sid)
        return Outcome(sid, "failed", f"{type(exc).__name__}: {exc}", attempts + 1)
    return Outcome(sid, "sent", None, attempts + 1, at=run.clock())


def _after_pass(batch: Batch, run: EditionRun, batches: BatchLedger, enqueue_later: Callable[[int, float], None],
                line: str, holder: str, busy: Collection[str]) -> str:
    """The batch again after a wait (a retry within the run's window; rows a live worker holds), or done; the
    edition finished when its last batch is done and nothing is left."""
    now = run.clock()
    left = batches.remaining(batch, now, holder, busy)
    if left.held_elsewhere:
        enqueue_later(batch.id, 2.0)
        return line + "; rows held by another worker: looked at again soon"
    if left.soonest_retry is not None and left.soonest_retry <= now + retry_window(run.settings):
        enqueue_later(batch.id, max(0.0, (left.soonest_retry - now).total_seconds()))
        return line + f"; retries at {left.soonest_retry.isoformat()}"
    batches.done(batch.id, now)
    lease = run.lease_for(batch.edition_id)  # held while the run is being frozen: its freezer finishes it then
    if batches.open_count(batch.edition_id) == 0 and lease.acquire():
        try:
            if finish_if_done(batch.edition_id, run, batches):
                return line + f"; edition {batch.edition_id} done"
        finally:
            lease.release()
    return line


def finish_if_done(edition_id: int, run: EditionRun, batches: BatchLedger) -> bool:
    """The run is done when no batch is open and no row waits (a held or later retry keeps it open for the resume
    job), and only once the whole run was frozen (a freeze cut short by a crash leaves readers without a row: the
    resume job freezes them). Called under the edition's lease."""
    if (not batches.is_frozen(edition_id) or batches.open_count(edition_id)
            or not is_settled(run.ledger.counts(edition_id))):
        return False
    if run.ledger.edition_status(edition_id) == "sending":
        run.ledger.finish_edition(edition_id, run.clock())
    return True
