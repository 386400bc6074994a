"""Retrying a run's failed and held deliveries by hand: `gazette digest retry`.

One attempt each, now: a mail that fails again is recorded as failed with the new reason (no back-off; the
operator runs it again when the relay is back). The mail is the segment's as stored when it was first rendered,
as the resume path sends it (`segments.segment_mail`), personalised and signed by the same outbox under the same
rate gate and the edition's lease, so a scheduled send or resume never works on the same run at once.

Not retried, reported as skipped with the reason: subscribers no longer receiving the edition (unsubscribed,
bounced after a permanent failure, complained, paused) and rows whose segment mail is gone. The rows of those
subscribers become "skipped", the reason keeping the last error, so that the run has nothing left to do. The
law still holds: an edition with ads is held for a reader whose zone is in its night (send.py's rule, reused).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from .settings import EditionSettings

from .deliveries import DeliveryRow
from .edition_run import EditionRun, RunLease
from .errors import EditionState
from .outbox import Outbox
from .segments import SegmentMail, home_zone, outgoing, segment_mail
from .send import is_quiet_hour, is_settled, next_morning

log = logging.getLogger(__name__)

RETRIED = ("failed", "held")


@dataclass(frozen=True)
class RetryOutcome:
    subscriber_id: int
    email: str | None
    status: str  # sent | failed | held | skipped | queued (its outcome could not be recorded)
    reason: str | None  # why it failed, is held or was skipped
    attempts: int
    at: datetime | None = None  # when a held mail goes out


@dataclass(frozen=True)
class RetryReport:
    edition: str
    edition_id: int
    scheduled_at: datetime
    outcomes: tuple[RetryOutcome, ...]  # by subscriber id
    is_busy: bool = False  # another process holds the edition's lease: nothing was done

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> int:
        """Mails that did not go: failed again, or whose outcome is unknown."""
        return self.count("failed") + self.count("queued")


def retry_edition(edition: EditionSettings, edition_id: int, *, scheduled_at: datetime,
                  run: EditionRun) -> RetryReport:
    """Try the failed and held deliveries of the run `edition_id` once more, now. EditionState (409) for a paused
    run: resume it first."""
    if run.ledger.edition_status(edition_id) == "paused":
        raise EditionState(f"edition {edition_id} ({edition.name}) is paused: resume it before retrying")
    lease = run.lease_for(edition_id)
    if not lease.acquire():
        return RetryReport(edition.name, edition_id, scheduled_at, (), is_busy=True)
    try:
        outcomes = _retry(edition, edition_id, run, lease)
    finally:
        lease.release()
    return RetryReport(edition.name, edition_id, scheduled_at, tuple(sorted(outcomes, key=lambda o: o.subscriber_id)))


def _retry(edition: EditionSettings, edition_id: int, run: EditionRun, lease: RunLease) -> list[RetryOutcome]:
    store = run.ledger
    _, rows = store.rows(edition_id, statuses=RETRIED)
    if not rows:
        return []
    now = run.clock()
    receiving = {s.id: s for s in run.readers.confirmed(edition.name, ads=edition.has_ads,
                                                        ids=[row.subscriber_id for row in rows])}
    stored = store.segment_mails(edition_id)
    outcomes: list[RetryOutcome] = []
    due: list[DeliveryRow] = []
    night: dict[datetime, list[DeliveryRow]] = {}
    settled: dict[int, str] = {}  # rows that will never go, whoever runs the edition: skipped, with the reason
    for row in rows:
        subscriber = receiving.get(row.subscriber_id)
        if subscriber is None:
            settled[row.subscriber_id] = reason = _not_receiving(row, run, edition.name)
        elif row.segment_id not in stored:
            reason = "its segment's mail is no longer stored: not retried"
        else:
            reason = None
        if reason is not None:
            outcomes.append(RetryOutcome(row.subscriber_id, row.email, "skipped", reason, row.attempts))
            continue
        assert subscriber is not None
        zone = home_zone(subscriber, run.settings.site.timezone)
        if edition.has_ads and is_quiet_hour(now, zone):
            night.setdefault(next_morning(now, zone), []).append(row)
        else:
            due.append(row)
    store.settle_skipped(edition_id, settled)
    if not due and not night:
        _finish_if_settled(edition_id, run)
        return outcomes

    store.reopen_edition(edition_id)  # a kill from here on leaves rows that the resume task finishes
    for until, held in night.items():
        by_id = {r.subscriber_id: r for r in held}
        for i in store.requeue(edition_id, list(by_id), held_until=until):
            outcomes.append(RetryOutcome(i, by_id[i].email, "held", "an edition with ads waits for 08:00 in the "
                                         "reader's zone", by_id[i].attempts, at=until))
    taken = set(store.requeue(edition_id, [r.subscriber_id for r in due]))
    mails: dict[int, SegmentMail] = {}
    outbox = Outbox(run, edition_id, lease, retries=0)  # one attempt: a transient failure is final here
    try:
        for row in due:
            if row.subscriber_id not in taken or row.segment_id is None:
                continue
            if row.segment_id not in mails:
                mails[row.segment_id] = segment_mail(stored[row.segment_id], edition_name=edition.name,
                                                     edition_id=edition_id, segment_id=row.segment_id, run=run)
            outbox.put(outgoing(receiving[row.subscriber_id], edition_id, mails[row.segment_id], run,
                                attempts=row.attempts))
        outbox.drain()
    finally:
        outbox.close()
    _, unsent = store.rows(edition_id, statuses=("failed", "queued"))
    still = {row.subscriber_id: row for row in unsent if row.subscriber_id in taken}
    for row in due:
        if row.subscriber_id not in taken:
            continue
        again = still.get(row.subscriber_id)
        if again is None:
            outcomes.append(RetryOutcome(row.subscriber_id, row.email, "sent", None, row.attempts + 1))
        elif again.status == "queued":  # the recorder could not write it: the resume task sends it again
            outcomes.append(RetryOutcome(row.subscriber_id, row.email, "queued", "outcome not recorded",
                                         again.attempts))
        else:
            outcomes.append(RetryOutcome(row.subscriber_id, row.email, "failed", again.last_error, again.attempts))
    _finish_if_settled(edition_id, run)
    log.info("edition %s (%d): retried %d, held %d", edition.name, edition_id, len(taken),
             sum(len(v) for v in night.values()))
    return outcomes


def _finish_if_settled(edition_id: int, run: EditionRun) -> None:
    """Done when nothing is left to send (as a send ends); a held mail keeps it open for the resume task."""
    if is_settled(run.ledger.counts(edition_id)):
        [stats] = run.ledger.stats(edition_id)
        if stats.status != "done":
            run.ledger.finish_edition(edition_id, run.clock())


def _not_receiving(row: DeliveryRow, run: EditionRun, edition: str) -> str:
    subscriber = run.readers.get(row.subscriber_id)
    if subscriber is None:
        return "the subscriber was erased: not retried"
    if subscriber.status != "confirmed":
        why = f"the subscriber is {subscriber.status}"
    elif subscriber.paused_at is not None:
        why = "the subscriber paused their digests"
    elif edition not in subscriber.editions:
        why = f"the subscriber now receives {', '.join(subscriber.editions) or 'no edition'}"
    elif subscriber.ad_consent_at is None and edition in run.settings.ad_editions:
        why = "the subscriber withdrew their advertising consent"
    else:
        why = "the subscriber no longer receives this edition"
    return why + ": not retried" + (f" (last error: {row.last_error})" if row.last_error else "")
