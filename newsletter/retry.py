"""Retrying a run's failed and held deliveries by hand: `gazette digest retry`.

One attempt each, now: a mail that fails again is recorded as failed with the new reason (no back-off; the
operator runs it again when the relay is back). The mail is the segment's as stored when it was first rendered,
as the resume path sends it, personalised and signed by the same workers under the same rate limit and the
edition's lease, so a scheduled send or resume never works on the same run at once.

Not retried, reported as skipped with the reason: subscribers no longer receiving the edition (unsubscribed,
bounced after a permanent failure, complained, paused) and rows whose segment mail is gone. The rows of those
subscribers become "skipped", the reason keeping the last error, so that the run has nothing left to do. The
law still holds: an edition with ads is held for a reader whose zone is in its night (send.py's rule, reused).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime

from feeds.schedule import Lease
from .settings import EditionSettings

from .compose import MailTemplate, make_template
from .deliveries import DeliveryRow
from .send import EDITION_LEASE_TTL, Context, Workers, home_zone, is_quiet_hour, job_of, next_morning

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


def retry_edition(edition: EditionSettings, edition_id: int, *, scheduled_at: datetime, ctx: Context) -> RetryReport:
    """Try the failed and held deliveries of the run `edition_id` once more, now."""
    lease = Lease(ctx.deliveries.engine, f"edition:{edition_id}", ctx.holder, EDITION_LEASE_TTL, ctx.clock)
    if not lease.acquire():
        return RetryReport(edition.name, edition_id, scheduled_at, (), is_busy=True)
    try:
        outcomes = _retry(edition, edition_id, ctx, lease)
    finally:
        lease.release()
    return RetryReport(edition.name, edition_id, scheduled_at, tuple(sorted(outcomes, key=lambda o: o.subscriber_id)))


def _retry(edition: EditionSettings, edition_id: int, ctx: Context, lease: Lease) -> list[RetryOutcome]:
    store = ctx.deliveries
    _, rows = store.rows(edition_id, statuses=RETRIED)
    if not rows:
        return []
    now = ctx.clock()
    receiving = {s.id: s for s in ctx.subscribers.confirmed(edition.name, ads=edition.has_ads,
                                                            ids=[row.subscriber_id for row in rows])}
    stored = store.segment_templates(edition_id)
    outcomes: list[RetryOutcome] = []
    due: list[DeliveryRow] = []
    night: dict[datetime, list[DeliveryRow]] = {}
    settled: dict[int, str] = {}  # rows that will never go, whoever runs the edition: skipped, with the reason
    for row in rows:
        subscriber = receiving.get(row.subscriber_id)
        if subscriber is None:
            settled[row.subscriber_id] = reason = _not_receiving(row, ctx, edition.name)
        elif row.segment_id not in stored:
            reason = "its segment's mail is no longer stored: not retried"
        else:
            reason = None
        if reason is not None:
            outcomes.append(RetryOutcome(row.subscriber_id, row.email, "skipped", reason, row.attempts))
            continue
        assert subscriber is not None
        zone = home_zone(subscriber, ctx.settings.site.timezone)
        if edition.has_ads and is_quiet_hour(now, zone):
            night.setdefault(next_morning(now, zone), []).append(row)
        else:
            due.append(row)
    store.settle_skipped(edition_id, settled)
    if not due and not night:
        _finish_if_settled(edition_id, ctx)
        return outcomes

    store.reopen_edition(edition_id)  # a kill from here on leaves rows that the resume task finishes
    for until, held in night.items():
        by_id = {r.subscriber_id: r for r in held}
        for i in store.requeue(edition_id, list(by_id), held_until=until):
            outcomes.append(RetryOutcome(i, by_id[i].email, "held", "an edition with ads waits for 08:00 in the "
                                         "reader's zone", by_id[i].attempts, at=until))
    taken = set(store.requeue(edition_id, [r.subscriber_id for r in due]))
    # One attempt: a transient failure is final here, not scheduled for a later retry.
    once = dataclasses.replace(ctx, settings=dataclasses.replace(
        ctx.settings, mail=dataclasses.replace(ctx.settings.mail, retries=0)))
    templates: dict[int, MailTemplate] = {}
    pool = Workers(once, edition_id, lease)
    try:
        for row in due:
            if row.subscriber_id not in taken or row.segment_id is None:
                continue
            if row.segment_id not in templates:
                templates[row.segment_id] = make_template(ctx.settings, stored[row.segment_id], list_id=edition.name)
            pool.put(job_of(receiving[row.subscriber_id], edition_id, row.segment_id, templates[row.segment_id], once,
                            attempts=row.attempts))
        pool.drain()
    finally:
        pool.close()
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
    _finish_if_settled(edition_id, ctx)
    log.info("edition %s (%d): retried %d, held %d", edition.name, edition_id, len(taken),
             sum(len(v) for v in night.values()))
    return outcomes


def _finish_if_settled(edition_id: int, ctx: Context) -> None:
    """Done when nothing is left to send (as a send ends); a held mail keeps it open for the resume task."""
    counts = ctx.deliveries.counts(edition_id)
    if counts.get("queued", 0) + counts.get("retry", 0) + counts.get("held", 0) == 0:
        [stats] = ctx.deliveries.stats(edition_id)
        if stats.status != "done":
            ctx.deliveries.finish_edition(edition_id, ctx.clock())


def _not_receiving(row: DeliveryRow, ctx: Context, edition: str) -> str:
    subscriber = ctx.subscribers.get(row.subscriber_id)
    if subscriber is None:
        return "the subscriber was erased: not retried"
    if subscriber.status != "confirmed":
        why = f"the subscriber is {subscriber.status}"
    elif subscriber.paused_at is not None:
        why = "the subscriber paused their digests"
    elif edition not in subscriber.editions:
        why = f"the subscriber now receives {', '.join(subscriber.editions) or 'no edition'}"
    elif subscriber.ad_consent_at is None and ctx.settings.edition(edition) is not None \
            and ctx.settings.edition(edition).has_ads:  # type: ignore[union-attr]
        why = "the subscriber withdrew their advertising consent"
    else:
        why = "the subscriber no longer receives this edition"
    return why + ": not retried" + (f" (last error: {row.last_error})" if row.last_error else "")
