"""Sending an edition: every active subscriber of the edition gets at most one mail per run.

The shape is listmonk's: subscribers are grouped into segments (same categories, language, time zone and
high-water mark); each segment's mail is rendered once; N workers personalise, sign and hand the messages to
their own transport connection under a shared rate limit; a recorder writes the outcomes in batches.

Exactly once: the edition row is unique per (name, scheduled time). Each recipient's delivery row is written
as "queued" *before* the message goes to a worker, and "sent" once the server took it. A process killed in
between resends, on its next run, only the rows still "queued": the messages in flight plus those whose outcome
was not yet written (at most one recorder batch). The Message-ID is the same on the resend. A lease per edition
keeps two senders off the same edition; a lease held by a process of this host that died is taken over at once.

Transient failures (4xx, dropped connections) are retried with doubling waits; permanent ones (5xx) are
recorded and count as a hard bounce. Editions that carry ads go only to readers who consented to advertising,
and are held back between 21:00 and 08:00 in the reader's zone and go out at 08:00. A later run (the scheduler's resume task, or the same command again) picks
up anything held, retrying or interrupted.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Callable, Iterable, Sequence
from zoneinfo import ZoneInfo

from feeds.schedule import Lease, holder_id
from .settings import EditionSettings, Settings
from feeds.model import StoredArticle
from feeds.store import ArticleStore
from feeds.views import Redirects

from .compose import (MailTemplate, Recipient, RenderedMail, make_template, message_id, personalise, render_digest,
                      wire_address)
from .deliveries import DeliveryStore, Outcome
from .digest import Digest, build_digest
from .errors import DeliveryError
from .signing import DkimSigner
from .subscribers import Subscriber, SubscriberStore
from .tokens import Tokens
from .transport import Transport
from .timing import half_period, zone_of, zones_firing
from .verp import TagCodec

log = logging.getLogger(__name__)

QUIET_FROM, QUIET_UNTIL = 21, 8  # 정보통신망법 §50: no advertising mail 21:00-08:00 without separate consent
EDITION_LEASE_TTL = timedelta(seconds=60)
WAITING = ("queued", "retry", "held")  # delivery rows a later run still sends
FLUSH_EVERY, FLUSH_BATCH = 0.05, 100  # outcomes are written at least this often: the bound on resends after a kill


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


@dataclass(frozen=True)
class Job:
    subscriber_id: int
    email: str
    template: MailTemplate
    recipient: Recipient
    attempts: int
    envelope_from: str  # the VERP return path carrying the message's signed tag


@dataclass
class Context:
    """What one run needs besides the data: settings and the edges (transports, clock, sleep, signer)."""

    settings: Settings
    articles: ArticleStore
    subscribers: SubscriberStore
    deliveries: DeliveryStore
    transports: Callable[[], Transport]
    templates: object  # jinja2 Environment
    tokens: Tokens
    redirects: Redirects
    clock: Callable[[], datetime]
    tags: TagCodec
    signer: DkimSigner | None = None
    sleep: Callable[[float], None] = time.sleep
    progress: Callable[[str], None] = lambda outcome: None
    holder: str = field(default_factory=holder_id)
    archive_urls: dict[int, str] = field(default_factory=dict)  # segment id -> its "view in browser" link


def is_quiet_hour(moment: datetime, zone: tzinfo) -> bool:
    hour = moment.astimezone(zone).hour
    return hour >= QUIET_FROM or hour < QUIET_UNTIL


def next_morning(moment: datetime, zone: tzinfo) -> datetime:
    local = moment.astimezone(zone)
    morning = local.replace(hour=QUIET_UNTIL, minute=0, second=0, microsecond=0)
    return morning if local.hour < QUIET_UNTIL else morning + timedelta(days=1)


def segment_key(subscriber: Subscriber, zone_name: str, after: datetime) -> str:
    raw = "|".join([",".join(subscriber.categories), subscriber.language or "", zone_name, after.isoformat()])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def home_zone(subscriber: Subscriber, site_zone: ZoneInfo) -> ZoneInfo:
    return zone_of(subscriber.timezone, site_zone)


def recipients_of(edition: EditionSettings, scheduled_at: datetime, ctx: Context, *, everyone: bool,
                  edition_id: int | None = None) -> list[Subscriber]:
    """The edition's readers for the run at `scheduled_at`: those whose own wall clock says it is the edition's time
    (07:00 in Seoul and 07:00 in Kolkata are two runs), everyone for a manual send; and whoever the run already
    has a delivery row for, so a resumed run keeps its readers even if they changed zone since."""
    if everyone:
        return ctx.subscribers.confirmed(edition.name, ads=edition.has_ads, edition_id=edition_id)
    zones = zones_firing(edition.schedule, ctx.subscribers.zones(), ctx.settings.site.timezone, scheduled_at)
    return ctx.subscribers.confirmed(edition.name, ads=edition.has_ads, zones=zones, edition_id=edition_id,
                                     apart=(scheduled_at, half_period(edition.schedule, ctx.settings.site.timezone)))


def send_edition(edition: EditionSettings, *, scheduled_at: datetime, ctx: Context, everyone: bool = False,
                 dry_run: bool = False) -> SendReport:
    """Send (or resume) the edition of `scheduled_at`, to `recipients_of` it."""
    period_start = scheduled_at - edition.window
    if dry_run:
        from .preview import dry_run as count_only

        return count_only(edition, scheduled_at, period_start, recipients_of(edition, scheduled_at, ctx,
                                                                             everyone=everyone), ctx)
    edition_id = ctx.deliveries.open_edition(edition.name, scheduled_at, period_start, ctx.clock())
    started = ctx.deliveries.states(edition_id)
    recipients = recipients_of(edition, scheduled_at, ctx, everyone=everyone, edition_id=edition_id)
    lease = Lease(ctx.deliveries.engine, f"edition:{edition_id}", ctx.holder, EDITION_LEASE_TTL, ctx.clock)
    if not lease.acquire():
        return SendReport(edition.name, edition_id, scheduled_at.astimezone(ctx.settings.site.timezone),
                          len(recipients), 0, 0, 0, 0, False, is_busy=True)
    try:
        return _send(edition, edition_id, scheduled_at, period_start, recipients, started, ctx, lease)
    finally:
        lease.release()


def _send(edition: EditionSettings, edition_id: int, scheduled_at: datetime, period_start: datetime,
          recipients: list[Subscriber], states: dict[int, tuple[str, int, datetime | None]], ctx: Context,
          lease: Lease) -> SendReport:
    s = ctx.settings
    now = ctx.clock()
    receiving = {r.id for r in recipients}
    # Rows still waiting (held for the night, to retry, interrupted) of readers who left since: never sent, settled.
    ctx.deliveries.settle_skipped(edition_id, {
        sid: "no longer receives this edition (unsubscribed, paused, or the edition or advertising consent withdrawn)"
        for sid, (status, _, _) in states.items() if status in WAITING and sid not in receiving}, statuses=WAITING)
    already = sum(1 for r in recipients if states.get(r.id, ("",))[0] in ("sent", "skipped", "failed"))
    todo = [r for r in recipients if states.get(r.id, ("",))[0] not in ("sent", "skipped", "failed")]
    high_waters = ctx.deliveries.high_waters([r.id for r in todo], exclude_edition=edition_id)
    most_viewed = (ctx.articles.most_viewed(since=period_start, until=scheduled_at, limit=edition.most_viewed)
                   if edition.most_viewed else [])
    pool = Workers(ctx, edition_id, lease)
    skipped = held = 0
    try:
        for key, group, language, zone, after in segments(todo, s, period_start, high_waters):
            digest = digest_for(edition, group[0].categories, after, scheduled_at, most_viewed, ctx)
            if digest is None:
                ctx.deliveries.mark_skipped(edition_id, [r.id for r in group])
                skipped += len(group)
                for _ in group:
                    ctx.progress("skipped")
                continue
            template, segment_id = _template(edition, edition_id, key, digest, language, zone, ctx)
            due, night = [], []
            for r in group:
                state = states.get(r.id)
                if state is not None and state[0] in ("retry", "held") and state[2] is not None and state[2] > now:
                    continue  # its time has not come: a later run sends it
                (night if edition.has_ads and is_quiet_hour(now, zone) else due).append(r)
            if night:
                ctx.deliveries.hold(edition_id, [r.id for r in night], segment_id, next_morning(now, zone),
                                    digest.article_count, digest.high_water_at)
                held += len(night)
            for chunk in _chunks(due, 100):
                jobs = [job_of(r, edition_id, segment_id, template, ctx, attempts=(states.get(r.id) or ("", 0, None))[1])
                        for r in chunk]
                ctx.deliveries.queue(edition_id, [(job.subscriber_id, job.recipient.message_id) for job in jobs],
                                     segment_id=segment_id, articles=digest.article_count,
                                     high_water_at=digest.high_water_at)
                for job in jobs:
                    pool.put(job)
        pool.drain()
        _retry_due(edition, edition_id, ctx, pool, deadline=now + _retry_window(s))
    finally:
        pool.close()
    counts = ctx.deliveries.counts(edition_id)
    if counts.get("queued", 0) + counts.get("retry", 0) + counts.get("held", 0) == 0:
        ctx.deliveries.finish_edition(edition_id, ctx.clock())
    report = SendReport(edition=edition.name, edition_id=edition_id,
                        scheduled_at=scheduled_at.astimezone(s.site.timezone),  # shown to people: the site's zone
                        recipients=len(recipients), sent=pool.sent, skipped=skipped, failed=pool.failed,
                        already_done=already, is_dry_run=False, held=counts.get("held", 0),
                        retrying=counts.get("retry", 0) + counts.get("queued", 0))
    log.info("edition %s", report.line())
    return report


def digest_for(edition: EditionSettings, categories: Sequence[str], after: datetime, scheduled_at: datetime,
               most_viewed: Sequence[StoredArticle], ctx: Context) -> Digest | None:
    """One segment's digest: its categories' articles published in (after, scheduled_at], and the most viewed."""
    s = ctx.settings
    candidates = ctx.articles.articles(categories=categories or [c.slug for c in s.categories], published_after=after,
                                       published_until=scheduled_at, limit=edition.max_articles)
    return build_digest(edition.name, candidates=candidates, most_viewed=most_viewed,
                        category_order=[c.slug for c in s.categories], labels={c.slug: c.name for c in s.categories},
                        max_articles=edition.max_articles, period_end=scheduled_at, chosen=categories)


def _retry_window(s: Settings) -> timedelta:
    return sum((s.mail.retry_delay * 2 ** i for i in range(s.mail.retries)), timedelta()) + timedelta(seconds=5)


def _retry_due(edition: EditionSettings, edition_id: int, ctx: Context, pool: "Workers", deadline: datetime) -> None:
    """Wait for and resend transient failures while their waits fit in this run; later ones wait for a resume. A
    reader is asked again whether they still receive the edition (consent to advertising included), and an
    advertising edition still waits for the morning."""
    while True:
        pending = ctx.deliveries.retries(edition_id)
        if not pending:
            return
        soonest = min(at for _, _, at, _ in pending)
        if soonest > deadline:
            return
        wait = (soonest - ctx.clock()).total_seconds()
        if wait > 0:
            ctx.sleep(wait)
        now = ctx.clock()
        due = [p for p in pending if p[2] <= now]
        templates = ctx.deliveries.segment_templates(edition_id)
        receiving = {r.id: r for r in ctx.subscribers.confirmed(edition.name, ads=edition.has_ads,
                                                                 ids=[p[0] for p in due])}
        for subscriber_id, attempts, _, segment_id in due:
            subscriber = receiving.get(subscriber_id)
            template = templates.get(segment_id) if segment_id is not None else None
            if subscriber is None or template is None:
                ctx.deliveries.record(edition_id, [Outcome(subscriber_id, "failed", "no longer receives this edition, "
                                                           "or its segment is gone", attempts)])
                continue
            zone = home_zone(subscriber, ctx.settings.site.timezone)
            if edition.has_ads and is_quiet_hour(now, zone):
                ctx.deliveries.record(edition_id, [Outcome(subscriber_id, "retry", "held for the morning (advertising)",
                                                           attempts, at=next_morning(now, zone))])
                continue
            tpl = _rebuild_template(template, ctx, list_id=edition.name)
            pool.put(job_of(subscriber, edition_id, segment_id, tpl, ctx, attempts=attempts))
        pool.drain()


class Workers:
    """N threads, each with its own transport (a reused SMTP connection), under one rate limit."""

    def __init__(self, ctx: Context, edition_id: int, lease: Lease) -> None:
        self.ctx = ctx
        self.edition_id = edition_id
        self.lease = lease
        settings = ctx.settings.mail
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=settings.concurrency * 20)
        self.results: queue.Queue[Outcome] = queue.Queue()
        self.pace = Pace(settings.rate_per_second)
        self.sent = self.failed = 0
        self._pending = 0
        self._lock = threading.Condition()
        self._threads = [threading.Thread(target=self._work, name=f"sender-{i}", daemon=True)
                         for i in range(settings.concurrency)]
        self._recorder = threading.Thread(target=self._record, name="delivery-recorder", daemon=True)
        for t in self._threads:
            t.start()
        self._recorder.start()

    def put(self, job: Job) -> None:
        with self._lock:
            self._pending += 1
        self.jobs.put(job)

    def drain(self) -> None:
        """Wait until every job put so far has its outcome written."""
        with self._lock:
            while self._pending:
                self._lock.wait(0.5)

    def close(self) -> None:
        for _ in self._threads:
            self.jobs.put(None)
        for t in self._threads:
            t.join()
        self.results.put(Outcome(-1, "stop", None, 0))
        self._recorder.join()

    def _work(self) -> None:
        mail = self.ctx.settings.mail
        transport = self.ctx.transports()
        try:
            while (job := self.jobs.get()) is not None:
                try:
                    data = personalise(job.template, job.recipient, now=self.ctx.clock(),
                                       unsubscribe_address=mail.unsubscribe_address)
                    if self.ctx.signer is not None:
                        data = self.ctx.signer.sign(data)
                    self.pace.wait()
                    transport.send(job.envelope_from, wire_address(job.email), data)
                except DeliveryError as exc:
                    self.results.put(_failure(job, exc, self.ctx))
                except Exception as exc:  # one bad message never stops the edition
                    log.exception("edition %s: subscriber %s", self.edition_id, job.subscriber_id)
                    self.results.put(Outcome(job.subscriber_id, "failed", f"{type(exc).__name__}: {exc}", job.attempts + 1))
                else:
                    self.results.put(Outcome(job.subscriber_id, "sent", None, job.attempts + 1, at=self.ctx.clock()))
        finally:
            transport.close()

    def _record(self) -> None:
        """Write outcomes in batches: every 100 or every 0.05 s, whichever comes first; renew the edition lease.

        The interval bounds the duplicates a kill can cause (sent, but not yet written as sent)."""
        batch: list[Outcome] = []
        last_flush = last_renewal = time.monotonic()
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
            if now - last_renewal > EDITION_LEASE_TTL.total_seconds() / 4:
                self.lease.acquire()
                last_renewal = now
            if stopping and not batch and self.results.empty():
                break

    def _write(self, batch: list[Outcome]) -> None:
        try:
            self.ctx.deliveries.record(self.edition_id, batch)
            self.ctx.subscribers.reset_bounces([o.subscriber_id for o in batch if o.status == "sent"])
            hard = [o for o in batch if o.is_hard_bounce]
            for o in hard:  # our own SMTP session was refused: no report to doubt
                self.ctx.subscribers.record_bounce_of(o.subscriber_id, kind="hard", now=self.ctx.clock(),
                                                      hard_bounce_limit=self.ctx.settings.mail.hard_bounce_limit)
        except Exception:  # keep counting: a later run re-sends what was not recorded
            log.exception("edition %s: could not record %d outcomes", self.edition_id, len(batch))
        for o in batch:
            if o.status == "sent":
                self.sent += 1
            elif o.status == "failed":
                self.failed += 1
            self.ctx.progress(o.status)
        with self._lock:
            self._pending -= len(batch)
            self._lock.notify_all()


class Pace:
    """A shared rate limit: at most `rate` hand-overs per second, spread evenly."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            at = max(self._next, now)
            self._next = at + self.interval
        if at > now:
            time.sleep(at - now)


def _failure(job: Job, exc: DeliveryError, ctx: Context) -> Outcome:
    attempts = job.attempts + 1
    mail = ctx.settings.mail
    if exc.is_permanent:
        log.warning("edition: subscriber %s refused permanently: %s", job.subscriber_id, exc)
        return Outcome(job.subscriber_id, "failed", str(exc)[:2000], attempts, email=job.email, is_hard_bounce=True)
    if attempts > mail.retries:
        return Outcome(job.subscriber_id, "failed", f"gave up after {attempts} attempts: {exc}"[:2000], attempts)
    retry_at = ctx.clock() + mail.retry_delay * 2 ** (attempts - 1)
    return Outcome(job.subscriber_id, "retry", str(exc)[:2000], attempts, at=retry_at)


def segments(todo: Sequence[Subscriber], s: Settings, period_start: datetime,
              high_waters: dict[int, datetime]) -> Iterable[tuple[str, list[Subscriber], str, tzinfo, datetime]]:
    groups: dict[str, tuple[list[Subscriber], str, tzinfo, datetime]] = {}
    for r in todo:
        hw = high_waters.get(r.id)
        after = max(hw, period_start) if hw else period_start
        zone = home_zone(r, s.site.timezone)
        key = segment_key(r, zone.key, after)
        if key not in groups:
            groups[key] = ([], r.language or s.site.language, zone, after)
        groups[key][0].append(r)
    for key, (group, language, zone, after) in groups.items():
        yield key, group, language, zone, after


def _template(edition: EditionSettings, edition_id: int, key: str, digest, language: str, zone: tzinfo,  # type: ignore[no-untyped-def]
              ctx: Context) -> tuple[MailTemplate, int]:
    campaign = {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": f"{edition.name}-{edition_id}"}
    rendered = render_digest(ctx.templates, ctx.settings, digest, language=language, zone=zone,  # type: ignore[arg-type]
                             link=lambda article_id: ctx.redirects.url(article_id, "email", query=campaign),
                             has_ads=edition.has_ads)
    template = make_template(ctx.settings, rendered, list_id=edition.name)
    segment_id = ctx.deliveries.save_segment(edition_id, key, language, rendered, digest.article_count, ctx.clock())
    return template, segment_id


def _rebuild_template(stored: RenderedMail, ctx: Context, *, list_id: str) -> MailTemplate:
    """A retry: the segment's mail as stored when it was first rendered."""
    return make_template(ctx.settings, stored, list_id=list_id)


def job_of(subscriber: Subscriber, edition_id: int, segment_id: int, template: MailTemplate, ctx: Context, *,
           attempts: int) -> Job:
    """One subscriber's message of the edition: their links, and the tag that names it in the Message-ID and the
    return path (the same on every attempt, so a resend is recognisably the same mail)."""
    base = ctx.settings.site.base_url
    tokens = ctx.tokens
    tag = ctx.tags.digest(edition_id, subscriber.id)
    if segment_id not in ctx.archive_urls:  # one archive link per segment: it names no reader
        ctx.archive_urls[segment_id] = f"{base}/archive/{edition_id}/{tokens.for_archive(edition_id, segment_id)}"
    recipient = Recipient(
        email=subscriber.email, name=subscriber.name, message_id=message_id(template.domain, tag),
        unsubscribe_url=f"{base}/unsubscribe/{tokens.for_subscriber('unsubscribe', subscriber.public_id)}",
        preferences_url=f"{base}/preferences/{tokens.for_subscriber('preferences', subscriber.public_id)}",
        archive_url=ctx.archive_urls[segment_id])
    return Job(subscriber.id, subscriber.email, template, recipient, attempts, ctx.tags.envelope_from(tag))


def _chunks(items: Sequence[Subscriber], size: int) -> Iterable[Sequence[Subscriber]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
