"""The outbox of an edition run: N sending workers and one recorder.

Each worker has its own connection from the run's `Messenger` (a reused SMTP session); it makes a reader's
message bytes (personalised, signed), waits its turn at the shared `RateGate` and hands the bytes over. The
recorder writes the outcomes to the ledger in batches (every FLUSH_BATCH outcomes or FLUSH_EVERY seconds,
whichever comes first: the bound on resends after a kill) and renews the edition's lease meanwhile.
`failure_outcome` is the rule for a failed hand-over: permanent (5xx) fails at once and counts as a hard
bounce; transient (4xx, a dropped connection) is retried with doubling waits until `retries` is spent.

Pausing: the recorder asks the ledger every PAUSE_POLL seconds whether an operator paused the edition. Once it is
paused (`paused` is set), a worker hands over no further message: one it takes from the queue (or had waiting at the
rate gate) comes back "unsent" and its row stays "queued", never handed over, for the resume to send. A message
already handed to the server finishes and is recorded as usual: nothing is lost and nothing goes twice.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from .compose import wire_address
from .deliveries import Outcome
from .edition_run import EDITION_LEASE_TTL, EditionRun, RunLease
from .errors import DeliveryError
from .segments import Outgoing, message_bytes

log = logging.getLogger(__name__)

FLUSH_EVERY, FLUSH_BATCH = 0.05, 100  # outcomes are written at least this often: the bound on resends after a kill
PAUSE_POLL = 0.25  # seconds between two looks at whether the edition was paused
UNSENT = "unsent"  # a message a worker did not hand over because the edition paused: its row stays "queued"


class RateGate:
    """A shared rate limit: at most `rate` hand-overs per second, spread evenly (N passes take (N - 1) / rate)."""

    def __init__(self, rate: float, *, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate
        self._monotonic, self._sleep = monotonic, sleep
        self._next = monotonic()
        self._lock = threading.Lock()

    def turns(self, count: int) -> list[float]:
        """Take the next `count` turns at once: when each comes, on the gate's clock."""
        with self._lock:
            at = max(self._next, self._monotonic())
            self._next = at + self.interval * count
        return [at + i * self.interval for i in range(count)]

    def wait(self) -> None:
        """Return when it is this caller's turn; the turns are `interval` apart."""
        with self._lock:
            now = self._monotonic()
            at = max(self._next, now)
            self._next = at + self.interval
        if at > now:
            self._sleep(at - now)


def failure_outcome(message: Outgoing, exc: DeliveryError, *, now: datetime, retries: int,
                    retry_delay: timedelta) -> Outcome:
    """What a failed hand-over becomes: failed for good (a permanent refusal is a hard bounce; a transient failure
    after `retries` retries), or a retry after `retry_delay` doubled per attempt made."""
    attempts = message.attempts + 1
    if exc.is_permanent:
        log.warning("edition: subscriber %s refused permanently: %s", message.subscriber_id, exc)
        return Outcome(message.subscriber_id, "failed", str(exc)[:2000], attempts, email=message.email,
                       is_hard_bounce=True)
    if attempts > retries:
        return Outcome(message.subscriber_id, "failed", f"gave up after {attempts} attempts: {exc}"[:2000], attempts)
    return Outcome(message.subscriber_id, "retry", str(exc)[:2000], attempts,
                   at=now + retry_delay * 2 ** (attempts - 1))


class Outbox:
    """N threads, each with its own connection, under one rate gate; `put` a message, `drain` to wait for the
    outcomes of all put so far, `close` at the end. `retries`: how many transient failures a message may have
    before it fails for good (the [mail] setting; 0 for a retry by hand)."""

    def __init__(self, run: EditionRun, edition_id: int, lease: RunLease, *, retries: int | None = None) -> None:
        self.run = run
        self.edition_id = edition_id
        self.lease = lease
        mail = run.settings.mail
        self.retries = mail.retries if retries is None else retries
        self.messages: queue.Queue[Outgoing | None] = queue.Queue(maxsize=mail.concurrency * 20)
        self.results: queue.Queue[Outcome] = queue.Queue()
        self.gate = RateGate(mail.rate_per_second)
        self.sent = self.failed = self.unsent = 0
        self.paused = threading.Event()  # set once the edition is seen paused: no further hand-over
        self._pending = 0
        self._lock = threading.Condition()
        self._threads = [threading.Thread(target=self._work, name=f"sender-{i}", daemon=True)
                         for i in range(mail.concurrency)]
        self._recorder = threading.Thread(target=self._record, name="delivery-recorder", daemon=True)
        for t in self._threads:
            t.start()
        self._recorder.start()

    def put(self, message: Outgoing) -> None:
        with self._lock:
            self._pending += 1
        self.messages.put(message)

    def put_all(self, messages: list[Outgoing]) -> None:
        for message in messages:
            self.put(message)

    def drain(self) -> None:
        """Wait until every message put so far has its outcome written."""
        with self._lock:
            while self._pending:
                self._lock.wait(0.5)

    def close(self) -> None:
        for _ in self._threads:
            self.messages.put(None)
        for t in self._threads:
            t.join()
        self.results.put(Outcome(-1, "stop", None, 0))
        self._recorder.join()

    def _work(self) -> None:
        run = self.run
        connection = run.messenger.connect()
        try:
            while (message := self.messages.get()) is not None:
                if self.paused.is_set():
                    self.results.put(Outcome(message.subscriber_id, UNSENT, None, message.attempts))
                    continue
                try:
                    data = message_bytes(message, run)
                    self.gate.wait()
                    if self.paused.is_set():  # paused while this one waited its turn: it stays queued
                        self.results.put(Outcome(message.subscriber_id, UNSENT, None, message.attempts))
                        continue
                    connection.send(message.envelope_from, wire_address(message.email), data)
                except DeliveryError as exc:
                    self.results.put(failure_outcome(message, exc, now=run.clock(), retries=self.retries,
                                                     retry_delay=run.settings.mail.retry_delay))
                except Exception as exc:  # one bad message never stops the edition
                    log.exception("edition %s: subscriber %s", self.edition_id, message.subscriber_id)
                    self.results.put(Outcome(message.subscriber_id, "failed", f"{type(exc).__name__}: {exc}",
                                             message.attempts + 1))
                else:
                    self.results.put(Outcome(message.subscriber_id, "sent", None, message.attempts + 1,
                                             at=run.clock()))
        finally:
            connection.close()

    def _record(self) -> None:
        """Write outcomes in batches: every 100 or every 0.05 s, whichever comes first; renew the edition lease.

        The interval bounds the duplicates a kill can cause (sent, but not yet written as sent)."""
        batch: list[Outcome] = []
        last_flush = last_renewal = last_look = time.monotonic()
        stopping = False
        while True:
            try:
                outcome = self.results.get(timeout=max(0.0, FLUSH_EVERY - (time.monotonic() - last_flush)))
                if outcome.status == "stop":
                    stopping = True
                else:
                    batch.append(outcome)
            except queue.Empty:
                pass
            now = time.monotonic()
            if batch and (len(batch) >= FLUSH_BATCH or now - last_flush >= FLUSH_EVERY or stopping):
                self._write(batch)
                batch = []
            if now - last_flush >= FLUSH_EVERY:
                last_flush = now
            if now - last_look >= PAUSE_POLL and not self.paused.is_set():
                self.look_for_pause()
                last_look = now
            if now - last_renewal > EDITION_LEASE_TTL.total_seconds() / 4:
                self.lease.acquire()
                last_renewal = now
            if stopping and not batch and self.results.empty():
                break

    def look_for_pause(self) -> bool:
        """Whether the edition was paused (asked of the ledger; once seen, for good)."""
        if not self.paused.is_set():
            try:
                if self.run.ledger.edition_status(self.edition_id) == "paused":
                    self.paused.set()
            except Exception:  # the database is away: keep sending, look again later
                log.exception("edition %s: could not read its status", self.edition_id)
        return self.paused.is_set()

    def _write(self, batch: list[Outcome]) -> None:
        run = self.run
        unsent = [o for o in batch if o.status == UNSENT]
        batch = [o for o in batch if o.status != UNSENT]
        self.unsent += len(unsent)
        write_outcomes(run, self.edition_id, batch)
        for o in batch:
            if o.status == "sent":
                self.sent += 1
            elif o.status == "failed":
                self.failed += 1
            run.progress(o.status)
        with self._lock:
            self._pending -= len(batch) + len(unsent)
            self._lock.notify_all()


def write_outcomes(run: EditionRun, edition_id: int, batch: list[Outcome]) -> None:
    """Record hand-over outcomes in the ledger, and what they say of the readers: a delivered mail clears their
    bounce count, a refusal by our own relay is a hard bounce (no report to doubt). A failure to write is logged: a
    later run re-sends what was not recorded."""
    try:
        run.ledger.record(edition_id, batch)
        run.readers.reset_bounces([o.subscriber_id for o in batch if o.status == "sent"])
        for o in batch:
            if o.is_hard_bounce:
                run.readers.record_bounce_of(o.subscriber_id, kind="hard", now=run.clock(),
                                             hard_bounce_limit=run.settings.mail.hard_bounce_limit)
    except Exception:
        log.exception("edition %s: could not record %d outcomes", edition_id, len(batch))
