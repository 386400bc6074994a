"""The delivery records: editions, their rendered segments, and one row per (edition, subscriber).

Statuses of an edition (a run): sending, paused (an operator stopped it; only a resume carries it on), done.
Statuses of a delivery row: queued (handed to a worker, outcome not yet known), sent, skipped (nothing new),
retry (a transient failure; `next_attempt_at` says when), held (an ad edition in the reader's night), failed.
Writes come in batches: a run of 100,000 subscribers must not pay a transaction per message.

Why it is long: it is the one writer of one table family (editions, segments, delivery rows), whose statements every
run, retry, alert and resume shares; a run's end also writes `edition.sent` to the event log in its transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Sequence

from sqlalchemy import Connection, Engine, Insert, Select, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from .compose import RenderedMail
from feeds import events
from feeds.core.database import insert_for

from .db import deliveries, edition_batches, edition_segments, editions, reader_marks, subscribers
from .records import ALERTS

STATUSES = ("queued", "sent", "skipped", "failed", "retry", "held")
FINAL = ("sent", "skipped", "failed")
ALERT_START_GRACE = timedelta(minutes=2)  # an alert's own send writes its first rows well within this


@dataclass(frozen=True)
class Outcome:
    subscriber_id: int
    status: str  # sent | retry | failed
    error: str | None
    attempts: int
    at: datetime | None = None  # sent_at, or next_attempt_at for a retry
    email: str | None = None
    is_hard_bounce: bool = False


@dataclass(frozen=True)
class EditionStats:
    id: int
    name: str
    scheduled_at: datetime
    status: str
    finished_at: datetime | None
    counts: dict[str, int]
    created_at: datetime | None = None  # when the run started
    paused_at: datetime | None = None  # when an operator paused it
    audience: str | None = None  # "everyone" (a manual send) or "zones" (a scheduled one), noted when it paused


@dataclass(frozen=True)
class DeliveryRow:
    """One subscriber's delivery of an edition, with the address it went (or was to go) to."""

    subscriber_id: int
    email: str | None
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    next_attempt_at: datetime | None
    segment_id: int | None


class DeliveryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- editions -------------------------------------------------------------------------------------

    def open_edition(self, name: str, scheduled_at: datetime, period_start: datetime, now: datetime) -> int:
        """The edition for this firing, created once however often it is asked for."""
        return self._get_or_insert(
            select(editions.c.id).where(editions.c.name == name, editions.c.scheduled_at == scheduled_at),
            insert(editions).values(name=name, scheduled_at=scheduled_at, period_start=period_start,
                                    period_end=scheduled_at, status="sending", created_at=now))

    def finish_edition(self, edition_id: int, now: datetime) -> None:
        """Done; `edition.sent` (with the counts) goes into the event log in this transaction, the first time only."""
        with self.engine.begin() as conn:
            run = conn.execute(select(editions).where(editions.c.id == edition_id).with_for_update()).one()
            conn.execute(update(editions).where(editions.c.id == edition_id).values(status="done", finished_at=now))
            if run.status != "done":
                counts = {status: 0 for status in STATUSES} | _counts(conn, edition_id)
                events.record(conn, "edition.sent", str(edition_id), now, {
                    "edition_id": edition_id, "edition": run.name, "is_alert": run.name == ALERTS, "counts": counts,
                    "scheduled_at": run.scheduled_at.isoformat(), "recipients": sum(counts.values())})

    def is_under_way(self, name: str, scheduled_at: datetime) -> bool:
        """Whether the run of `name` at `scheduled_at` finished or has delivery rows (the resume job carries it on
        from there); a run that stopped before its first row is started again by the next scheduler tick."""
        with self.engine.connect() as conn:
            row = conn.execute(select(editions.c.id, editions.c.finished_at).where(
                editions.c.name == name, editions.c.scheduled_at == scheduled_at)).first()
            if row is None:
                return False
            return row.finished_at is not None or conn.execute(
                select(deliveries.c.id).where(deliveries.c.edition_id == row.id).limit(1)).first() is not None

    def edition_name(self, edition_id: int) -> str:
        with self.engine.connect() as conn:
            return str(conn.execute(select(editions.c.name).where(editions.c.id == edition_id)).scalar_one())

    def unfinished(self, now: datetime) -> list[tuple[str, datetime]]:
        """Editions with deliveries still to do now: interrupted runs, retries and held mail that are due;
        breaking-news alerts recorded a while ago whose send never wrote a row (the process stopped first: an
        alert has no schedule to fire it again); and with [queue], runs whose freeze into batches was cut short."""
        due = (select(deliveries.c.edition_id).where(
            deliveries.c.status.in_(("queued", "retry", "held")),
            (deliveries.c.next_attempt_at.is_(None)) | (deliveries.c.next_attempt_at <= now)).distinct())
        unstarted = and_(editions.c.name == ALERTS, editions.c.created_at <= now - ALERT_START_GRACE,
                         ~select(deliveries.c.id).where(deliveries.c.edition_id == editions.c.id).exists())
        # With [queue]: a run whose freeze was cut short (it has batches, but was never wholly frozen).
        unfrozen = and_(editions.c.frozen_at.is_(None),
                        select(edition_batches.c.id).where(edition_batches.c.edition_id == editions.c.id).exists())
        with self.engine.connect() as conn:
            rows = conn.execute(select(editions.c.name, editions.c.scheduled_at)
                                .where(editions.c.status == "sending", or_(editions.c.id.in_(due), unstarted, unfrozen))
                                .order_by(editions.c.scheduled_at)).all()
        return [(r.name, r.scheduled_at) for r in rows]

    def stats(self, edition_id: int | None = None, limit: int = 50,
              before: tuple[datetime, int] | None = None) -> list[EditionStats]:
        """Editions newest first (by scheduled time, then id); with `before` (a scheduled time and an id), those
        after that one in this order (the API's keyset paging)."""
        query = select(editions).order_by(editions.c.scheduled_at.desc(), editions.c.id.desc()).limit(limit)
        if edition_id is not None:
            query = query.where(editions.c.id == edition_id)
        if before is not None:
            at, before_id = before
            query = query.where(or_(editions.c.scheduled_at < at,
                                    and_(editions.c.scheduled_at == at, editions.c.id < before_id)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            counts: dict[int, dict[str, int]] = {}
            if rows:
                for edition, status, n in conn.execute(
                        select(deliveries.c.edition_id, deliveries.c.status, func.count())
                        .where(deliveries.c.edition_id.in_([r.id for r in rows]))
                        .group_by(deliveries.c.edition_id, deliveries.c.status)):
                    counts.setdefault(edition, {})[status] = n
        return [EditionStats(r.id, r.name, r.scheduled_at, r.status, r.finished_at, counts.get(r.id, {}), r.created_at,
                             r.paused_at, r.audience)
                for r in rows]

    def find_edition(self, name: str, scheduled_at: datetime | None = None) -> int | None:
        """The id of the run of `name` at `scheduled_at`, or of its latest run; None if there is none."""
        query = select(editions.c.id).where(editions.c.name == name)
        if scheduled_at is not None:
            query = query.where(editions.c.scheduled_at == scheduled_at)
        with self.engine.connect() as conn:
            found = conn.execute(query.order_by(editions.c.scheduled_at.desc()).limit(1)).scalar()
        return None if found is None else int(found)

    def reopen_edition(self, edition_id: int) -> None:
        """Back to "sending" while a retry works on it: a kill leaves rows the resume task then finishes. A paused
        run stays paused."""
        with self.engine.begin() as conn:
            conn.execute(update(editions).where(editions.c.id == edition_id, editions.c.status != "paused")
                         .values(status="sending"))

    def edition_status(self, edition_id: int) -> str | None:
        """sending, paused or done; None for no such edition. The sending workers ask it while they work."""
        with self.engine.connect() as conn:
            return conn.execute(select(editions.c.status).where(editions.c.id == edition_id)).scalar()

    def pause_edition(self, edition_id: int, now: datetime) -> bool:
        """A run still sending becomes paused (its workers stop taking readers soon after); False if it was not
        sending (done, paused already, or no such edition)."""
        with self.engine.begin() as conn:
            return conn.execute(update(editions).where(editions.c.id == edition_id, editions.c.status == "sending")
                                .values(status="paused", paused_at=now)).rowcount == 1

    def unpause_edition(self, edition_id: int) -> bool:
        """A paused run is sending again (the caller carries it on); False if it was not paused."""
        with self.engine.begin() as conn:
            return conn.execute(update(editions).where(editions.c.id == edition_id, editions.c.status == "paused")
                                .values(status="sending", paused_at=None)).rowcount == 1

    def note_audience(self, edition_id: int, *, everyone: bool) -> None:
        """Whom the run is for, so that a resume sends to the same readers: "everyone" once a manual send worked on
        it, else "zones" (the readers whose hour it was, and those with a row already)."""
        which = [editions.c.id == edition_id]
        if not everyone:
            which.append(editions.c.audience.is_(None))
        with self.engine.begin() as conn:
            conn.execute(update(editions).where(*which).values(audience="everyone" if everyone else "zones"))

    # --- segments -------------------------------------------------------------------------------------

    def save_segment(self, edition_id: int, key: str, language: str, mail: RenderedMail, articles: int,
                     now: datetime) -> int:
        return self._get_or_insert(
            select(edition_segments.c.id).where(edition_segments.c.edition_id == edition_id,
                                                edition_segments.c.key == key),
            insert(edition_segments).values(edition_id=edition_id, key=key, language=language, subject=mail.subject,
                                            html=mail.html, text=mail.text, articles=articles, created_at=now))

    def segment(self, segment_id: int) -> tuple[int, RenderedMail, str] | None:
        """(edition id, the mail, its language) of a stored segment."""
        with self.engine.connect() as conn:
            row = conn.execute(select(edition_segments).where(edition_segments.c.id == segment_id)).first()
        return None if row is None else (row.edition_id, RenderedMail(row.subject, row.html, row.text), row.language)

    def segment_mails(self, edition_id: int) -> dict[int, RenderedMail]:
        """segment id -> the mail stored when the segment was first rendered, for the edition's segments."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(edition_segments).where(edition_segments.c.edition_id == edition_id)).all()
        return {r.id: RenderedMail(r.subject, r.html, r.text) for r in rows}

    # --- delivery rows --------------------------------------------------------------------------------

    def states(self, edition_id: int, ids: Sequence[int] | None = None) -> dict[int, tuple[str, int, datetime | None]]:
        """subscriber id -> (status, attempts, next_attempt_at) for this edition's rows (of `ids` only, if given: a
        send asks a page of readers at a time)."""
        query = select(deliveries.c.subscriber_id, deliveries.c.status, deliveries.c.attempts,
                       deliveries.c.next_attempt_at).where(deliveries.c.edition_id == edition_id)
        out: dict[int, tuple[str, int, datetime | None]] = {}
        with self.engine.connect() as conn:
            for chunk in [None] if ids is None else _chunked(ids):
                rows = conn.execute(query if chunk is None else query.where(deliveries.c.subscriber_id.in_(chunk)))
                out.update((r.subscriber_id, (r.status, r.attempts or 0, r.next_attempt_at)) for r in rows)
        return out

    def high_waters(self, subscriber_ids: Sequence[int]) -> dict[int, datetime]:
        """Each subscriber's newest article sent so far (`reader_marks`, one key lookup each): the next digest
        starts after it."""
        out: dict[int, datetime] = {}
        with self.engine.connect() as conn:
            for chunk in _chunked(subscriber_ids):
                out.update(conn.execute(select(reader_marks.c.subscriber_id, reader_marks.c.high_water_at)
                                        .where(reader_marks.c.subscriber_id.in_(chunk))).all())
        return out

    def mark_skipped(self, edition_id: int, subscriber_ids: Sequence[int]) -> None:
        self._upsert(edition_id, [{"subscriber_id": i, "status": "skipped", "articles": 0} for i in subscriber_ids])

    def hold(self, edition_id: int, subscriber_ids: Sequence[int], segment_id: int, until: datetime, articles: int,
             high_water_at: datetime | None) -> None:
        self._upsert(edition_id, [{"subscriber_id": i, "status": "held", "next_attempt_at": until, "segment_id": segment_id,
                                   "articles": articles, "high_water_at": high_water_at} for i in subscriber_ids])

    def queue(self, edition_id: int, rows: Sequence[tuple[int, str]], *, segment_id: int, articles: int,
              high_water_at: datetime | None) -> None:
        """Mark these (subscriber id, Message-ID) as handed over: written before any of them goes out."""
        self._upsert(edition_id, [{"subscriber_id": i, "status": "queued", "message_id": mid, "segment_id": segment_id,
                                   "articles": articles, "high_water_at": high_water_at, "next_attempt_at": None}
                                  for i, mid in rows])

    def record(self, edition_id: int, outcomes: Iterable[Outcome]) -> None:
        """Outcomes of one batch, one statement per status."""
        by_status: dict[str, list[dict[str, object]]] = {}
        for o in outcomes:
            by_status.setdefault(o.status, []).append({
                "b_id": o.subscriber_id, "b_status": o.status, "b_error": o.error, "b_attempts": o.attempts,
                "b_sent": o.at if o.status == "sent" else None, "b_next": o.at if o.status == "retry" else None})
        if not by_status:
            return
        statement = (update(deliveries)
                     .where(and_(deliveries.c.subscriber_id == bindparam("b_id"),
                                 *(deliveries.c.status != final for final in FINAL),  # executemany: no IN
                                 deliveries.c.edition_id == bindparam("b_edition")))
                     .values(status=bindparam("b_status"), last_error=bindparam("b_error"),
                             attempts=bindparam("b_attempts"), sent_at=bindparam("b_sent"),
                             next_attempt_at=bindparam("b_next"), claimed_by=None))  # a worker's hold ends
        with self.engine.begin() as conn:
            for rows in by_status.values():
                conn.execute(statement, [{**r, "b_edition": edition_id} for r in rows])
            sent = [o["b_id"] for o in by_status.get("sent", [])]
            for chunk in _chunked(sent):  # the readers' high-water marks move with the mail they got, in the same commit
                self._raise_marks(conn, edition_id, chunk)

    @staticmethod
    def _raise_marks(conn: Connection, edition_id: int, subscriber_ids: Sequence[int]) -> None:
        insert_ = insert_for(conn)
        statement = insert_(reader_marks).from_select(
            ["subscriber_id", "high_water_at"],
            select(deliveries.c.subscriber_id, deliveries.c.high_water_at).where(
                deliveries.c.edition_id == edition_id, deliveries.c.subscriber_id.in_(list(subscriber_ids)),
                deliveries.c.status == "sent", deliveries.c.high_water_at.is_not(None)))
        excluded = statement.excluded.high_water_at
        conn.execute(statement.on_conflict_do_update(index_elements=[reader_marks.c.subscriber_id],
                                                     set_={"high_water_at": excluded},
                                                     where=excluded > reader_marks.c.high_water_at))

    def retries(self, edition_id: int, limit: int | None = None) -> list[tuple[int, int, datetime, int | None]]:
        """(subscriber id, attempts, next attempt, segment id) of rows waiting for a retry, soonest first (the
        `limit` soonest: a run takes them a page at a time)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(deliveries.c.subscriber_id, deliveries.c.attempts, deliveries.c.next_attempt_at,
                                       deliveries.c.segment_id)
                                .where(deliveries.c.edition_id == edition_id, deliveries.c.status == "retry")
                                .order_by(deliveries.c.next_attempt_at, deliveries.c.subscriber_id)
                                .limit(limit)).all()
        return [(r.subscriber_id, r.attempts, r.next_attempt_at, r.segment_id) for r in rows]

    def rows(self, edition_id: int, *, statuses: Sequence[str] = (), has_error: bool = False, limit: int | None = None,
             offset: int = 0, after: int | None = None, counted: bool = True) -> tuple[int, list[DeliveryRow]]:
        """(how many rows match, a page of them by subscriber id): all of them, or those in `statuses`; with
        `has_error`, only those with a `last_error`; with `after`, the page after that subscriber id (the count
        is still of every match; not `counted`: -1, for a caller walking every page)."""
        which = [deliveries.c.edition_id == edition_id]
        if statuses:
            which.append(deliveries.c.status.in_(list(statuses)))
        if has_error:
            which.append(deliveries.c.last_error.is_not(None))
        query = (select(deliveries.c.subscriber_id, subscribers.c.email, deliveries.c.status, deliveries.c.attempts,
                        deliveries.c.last_error, deliveries.c.sent_at, deliveries.c.next_attempt_at,
                        deliveries.c.segment_id)
                 .select_from(deliveries.outerjoin(subscribers, subscribers.c.id == deliveries.c.subscriber_id))
                 .where(*which, *([] if after is None else [deliveries.c.subscriber_id > after]))
                 .order_by(deliveries.c.subscriber_id).limit(limit).offset(offset))
        with self.engine.connect() as conn:
            total = (conn.execute(select(func.count()).select_from(deliveries).where(*which)).scalar_one()
                     if counted else -1)
            found = [DeliveryRow(r.subscriber_id, r.email, r.status, r.attempts or 0, r.last_error, r.sent_at,
                                 r.next_attempt_at, r.segment_id) for r in conn.execute(query)]
        return int(total), found

    def requeue(self, edition_id: int, subscriber_ids: Sequence[int], *, held_until: datetime | None = None,
                from_statuses: Sequence[str] = ("failed", "held")) -> list[int]:
        """Take failed or held rows back for another attempt: "queued" (written before the mail goes out, as on
        the first attempt), or "held" until `held_until`. The ids of the rows taken; others are left alone."""
        if not subscriber_ids:
            return []
        which = (deliveries.c.edition_id == edition_id, deliveries.c.status.in_(list(from_statuses)))
        taken: list[int] = []
        with self.engine.begin() as conn:
            for start in range(0, len(subscriber_ids), 500):
                chunk = list(subscriber_ids[start:start + 500])
                ids = [i for (i,) in conn.execute(select(deliveries.c.subscriber_id)
                                                  .where(*which, deliveries.c.subscriber_id.in_(chunk)))]
                if ids:
                    conn.execute(update(deliveries).where(*which, deliveries.c.subscriber_id.in_(ids))
                                 .values(status="held" if held_until else "queued", next_attempt_at=held_until))
                taken += ids
        return taken

    def settle_skipped(self, edition_id: int, reasons: dict[int, str],
                       statuses: Sequence[str] = ("failed", "held")) -> None:
        """Rows in `statuses` that will never be tried again (the subscriber left): skipped, with the reason."""
        if not reasons:
            return
        statement = (update(deliveries)
                     .where(deliveries.c.edition_id == edition_id, deliveries.c.subscriber_id == bindparam("b_id"),
                            deliveries.c.status.in_(list(statuses)))
                     .values(status="skipped", last_error=bindparam("b_reason"), next_attempt_at=None))
        with self.engine.begin() as conn:
            conn.execute(statement, [{"b_id": i, "b_reason": reason[:2000]} for i, reason in reasons.items()])

    def counts(self, edition_id: int) -> dict[str, int]:
        with self.engine.connect() as conn:
            return _counts(conn, edition_id)

    def delivery(self, edition_id: int, subscriber_id: int) -> dict[str, object] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(deliveries).where(deliveries.c.edition_id == edition_id,
                                                        deliveries.c.subscriber_id == subscriber_id)).first()
        return dict(row._mapping) if row is not None else None

    def _get_or_insert(self, query: Select, statement: Insert) -> int:  # type: ignore[type-arg]
        """The id `query` finds, else the one `statement` inserts; two processes racing get the same row."""
        with self.engine.connect() as conn:
            found = conn.execute(query).scalar()
        if found is not None:
            return int(found)
        try:
            with self.engine.begin() as conn:
                return int(conn.execute(statement).inserted_primary_key[0])
        except IntegrityError:
            with self.engine.connect() as conn:
                return int(conn.execute(query).scalar_one())

    def _upsert(self, edition_id: int, rows: list[dict[str, object]]) -> None:
        """Insert rows for subscribers without one in this edition, update the others; one transaction."""
        if not rows:
            return
        ids = [r["subscriber_id"] for r in rows]
        with self.engine.begin() as conn:
            existing = {i for (i,) in conn.execute(select(deliveries.c.subscriber_id).where(
                deliveries.c.edition_id == edition_id, deliveries.c.subscriber_id.in_(ids)))}
            new = [{"edition_id": edition_id, "attempts": 0, **r} for r in rows if r["subscriber_id"] not in existing]
            if new:
                keys = set().union(*(r.keys() for r in new))
                conn.execute(insert(deliveries), [{k: r.get(k) for k in keys} for r in new])
            old = [r for r in rows if r["subscriber_id"] in existing]
            if old:
                columns = [k for k in old[0] if k != "subscriber_id"]
                statement = (update(deliveries)
                             .where(deliveries.c.edition_id == edition_id,
                                    deliveries.c.subscriber_id == bindparam("b_subscriber"),
                                    *(deliveries.c.status != final for final in FINAL))
                             .values({k: bindparam(f"b_{k}") for k in columns}))
                conn.execute(statement, [{"b_subscriber": r["subscriber_id"], **{f"b_{k}": r[k] for k in columns}}
                                         for r in old])


def _chunked(ids: Sequence[int], size: int = 500) -> Iterable[list[int]]:
    """Ids in statements of `size` (bound parameters are limited: SQLite allows 32,766 a statement)."""
    for start in range(0, len(ids), size):
        yield list(ids[start:start + size])


def _counts(conn: Connection, edition_id: int) -> dict[str, int]:
    return {status: int(n) for status, n in conn.execute(select(deliveries.c.status, func.count()).where(
        deliveries.c.edition_id == edition_id).group_by(deliveries.c.status))}
