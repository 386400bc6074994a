"""With [queue]: what the database knows of an edition's Celery batches, and which worker holds which delivery row.

A batch is a range of subscriber ids of one edition run (`edition_batches`); its rows are the run's delivery rows in
that range. A worker *claims* a few rows at a time (`claim`: `deliveries.claimed_by` set to its holder id) before
it sends them, and the ledger's `record` releases them with their outcome. A row held by a worker whose heartbeat
lease (`worker:<id>` in `leases`) has lapsed, or by a dead process of this host, is free for anyone: that is how
the batch of a killed worker is finished by the next, and why at most the rows that worker had claimed (sent but not
yet recorded) can go twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, func, insert, or_, select, update

from feeds.core.scheduling import is_dead_local, leases

from .db import deliveries, edition_batches, editions

WORKER_TTL = timedelta(seconds=15)  # a worker renews its heartbeat every third of this


def worker_lease_name(holder: str) -> str:
    """The heartbeat lease of the worker `holder` (its `holder_id`, or a claim's `<holder_id>|<thread>`; lease names
    are at most 64 characters)."""
    return "worker:" + hashlib.sha256(worker_of(holder).encode()).hexdigest()[:40]


def worker_of(claimant: str) -> str:
    """The worker of a claim: rows are claimed by one thread of a worker (`<holder_id>|<thread>`), so that a task that
    failed half-way (the database went away) finds its own rows again when it runs next on that thread."""
    return claimant.partition("|")[0]


@dataclass(frozen=True)
class Batch:
    id: int
    edition_id: int
    edition: str
    first_id: int
    last_id: int
    enqueued_at: datetime
    done_at: datetime | None


@dataclass(frozen=True)
class Claimed:
    """A delivery row a worker now holds."""

    subscriber_id: int
    attempts: int
    segment_id: int | None


@dataclass(frozen=True)
class Remaining:
    """What is left in a batch's range after a worker's pass: the soonest retry, and whether live workers hold rows."""

    soonest_retry: datetime | None
    held_elsewhere: bool


class BatchLedger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, edition_id: int, first_id: int, last_id: int, now: datetime) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(insert(edition_batches).values(
                edition_id=edition_id, first_id=first_id, last_id=last_id, enqueued_at=now)).inserted_primary_key[0])

    def get(self, batch_id: int) -> Batch | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(edition_batches, editions.c.name)
                               .join(editions, editions.c.id == edition_batches.c.edition_id)
                               .where(edition_batches.c.id == batch_id)).first()
        return None if row is None else _batch(row)

    def open(self, edition_id: int) -> list[Batch]:
        """The edition's batches not done yet."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(edition_batches, editions.c.name)
                                .join(editions, editions.c.id == edition_batches.c.edition_id)
                                .where(edition_batches.c.edition_id == edition_id, edition_batches.c.done_at.is_(None))
                                .order_by(edition_batches.c.first_id)).all()
        return [_batch(r) for r in rows]

    def open_count(self, edition_id: int) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(edition_batches).where(
                edition_batches.c.edition_id == edition_id, edition_batches.c.done_at.is_(None))).scalar_one())

    def mark_frozen(self, edition_id: int, at: datetime | None) -> None:
        """The run's readers were all frozen into batches at `at` (None: a freeze starts, and is not whole yet)."""
        with self.engine.begin() as conn:
            conn.execute(update(editions).where(editions.c.id == edition_id).values(frozen_at=at))

    def is_frozen(self, edition_id: int) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(editions.c.frozen_at).where(editions.c.id == edition_id)).scalar() is not None

    def enqueued(self, batch_id: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(edition_batches).where(edition_batches.c.id == batch_id).values(enqueued_at=now))

    def done(self, batch_id: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(edition_batches).where(edition_batches.c.id == batch_id,
                                                       edition_batches.c.done_at.is_(None)).values(done_at=now))

    def claim(self, batch: Batch, holder: str, limit: int, now: datetime, *,
              busy: Collection[str] = ()) -> list[Claimed]:
        """Take up to `limit` rows of the batch to send now (queued, or a retry whose time came) that no live worker
        holds: free, held by a dead worker, or by a thread of this worker that runs no task now (`busy` names those
        that do: a task that failed half-way, the database away, left its claims behind). The conditions are
        repeated in the UPDATE's own WHERE, so two workers racing never both get a row."""
        free = or_(deliveries.c.claimed_by.is_(None),
                   deliveries.c.claimed_by.in_(self._stale_holders(batch, now, holder, busy)))
        sendable = or_(deliveries.c.status == "queued",
                       and_(deliveries.c.status == "retry", deliveries.c.next_attempt_at <= now))
        in_batch = (deliveries.c.edition_id == batch.edition_id,
                    deliveries.c.subscriber_id.between(batch.first_id, batch.last_id))
        ids = (select(deliveries.c.id).where(*in_batch, sendable, free)
               .order_by(deliveries.c.subscriber_id).limit(limit).scalar_subquery())
        statement = (update(deliveries).where(deliveries.c.id.in_(ids), sendable, free).values(claimed_by=holder)
                     .returning(deliveries.c.subscriber_id, deliveries.c.attempts, deliveries.c.segment_id))
        with self.engine.begin() as conn:
            rows = conn.execute(statement).all()
        return sorted((Claimed(r.subscriber_id, r.attempts or 0, r.segment_id) for r in rows),
                      key=lambda c: c.subscriber_id)

    def release(self, edition_id: int, holder: str) -> None:
        """Give back the rows `holder` claimed and did not record (a pause came)."""
        with self.engine.begin() as conn:
            conn.execute(update(deliveries).where(deliveries.c.edition_id == edition_id,
                                                  deliveries.c.claimed_by == holder).values(claimed_by=None))

    def remaining(self, batch: Batch, now: datetime, holder: str, busy: Collection[str] = ()) -> Remaining:
        in_batch = (deliveries.c.edition_id == batch.edition_id,
                    deliveries.c.subscriber_id.between(batch.first_id, batch.last_id))
        with self.engine.connect() as conn:
            soonest = conn.execute(select(func.min(deliveries.c.next_attempt_at))
                                   .where(*in_batch, deliveries.c.status == "retry")).scalar()
            holders = conn.execute(select(deliveries.c.claimed_by).distinct().where(
                *in_batch, deliveries.c.claimed_by.is_not(None),
                deliveries.c.status.in_(("queued", "retry")))).scalars().all()
        dead = set(self._stale_holders(batch, now, holder, busy)) if holders else set()
        if soonest is not None:
            soonest = deliveries.c.next_attempt_at.type.process_result_value(soonest, None)
        return Remaining(soonest, any(h not in dead for h in holders))

    def _stale_holders(self, batch: Batch, now: datetime, holder: str, busy: Collection[str]) -> list[str]:
        """Claimants of rows of the batch that will not record them: a worker whose heartbeat lapsed (or, of this
        host, whose process is gone), and this worker's own threads that run no task (`busy` names those that do)."""
        in_batch = (deliveries.c.edition_id == batch.edition_id,
                    deliveries.c.subscriber_id.between(batch.first_id, batch.last_id))
        with self.engine.connect() as conn:
            holders = conn.execute(select(deliveries.c.claimed_by).distinct()
                                   .where(*in_batch, deliveries.c.claimed_by.is_not(None))).scalars().all()
            if not holders:
                return []
            alive = set(conn.execute(select(leases.c.name).where(
                leases.c.name.in_([worker_lease_name(h) for h in holders]), leases.c.expires_at > now)).scalars())
        me = worker_of(holder)
        return [h for h in holders if worker_lease_name(h) not in alive or is_dead_local(worker_of(h))
                or (worker_of(h) == me and h not in busy)]


def _batch(row) -> Batch:  # type: ignore[no-untyped-def]
    return Batch(row.id, row.edition_id, row.name, row.first_id, row.last_id, row.enqueued_at, row.done_at)
