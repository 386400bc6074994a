"""Ingesting: fetch a source, parse it, normalise its items and store them; record the source's health.

`ingest_source` never raises for a bad source: the error is recorded on the source and returned in the
result, so a batch of sources always runs to its end. A failing source backs off exponentially (with jitter);
past the failure limit it is checked only every MAX_BACKOFF, and one success puts it back on its interval.
A 410 Gone disables the source until its location changes; a permanent redirect moves it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import signal
from concurrent.futures import (
    CancelledError,
    Executor,
    ThreadPoolExecutor,
    as_completed,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

from .crawl import PAGE_LIMIT, candidates, read_pages
from .errors import FeedsError, FetchError, ParseError
from .fetch import Fetcher, GoneError, Validators
from .model import Article, RawEntry, SourceState, UpsertCounts
from .normalise import TRACKING_PARAMETERS, normalise
from .outbound import OutboundPolicy
from .parse import charset_of, parse_feed_document, parse_jsonl_lines
from .settings import SourceSettings
from .store import ArticleStore

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=6)
FUTURE_TOLERANCE = timedelta(minutes=10)  # clocks differ; beyond this a date in the future is a mistake


@dataclass(frozen=True)
class IngestResult:
    source: str
    status: str  # new | updated | unchanged | skipped | error
    counts: UpsertCounts
    error: str | None = None
    notes: tuple[str, ...] = ()
    failures: int = 0  # consecutive, after this poll
    next_check_at: datetime | None = None

    def line(self) -> str:
        if self.status == "error":
            health = ""
            if self.failures:
                when = f", next check {self.next_check_at.isoformat(timespec='minutes')}" if self.next_check_at else ""
                health = f" ({self.failures} failure{'s' if self.failures > 1 else ''} in a row{when})"
            return f"{self.source}: error: {self.error}{health}"
        if self.status == "skipped":
            return f"{self.source}: skipped: {'; '.join(self.notes)}"
        c = self.counts
        text = f"{self.source}: {self.status} ({c.new} new, {c.updated} updated, {c.unchanged} unchanged)"
        return text + "".join(f"; {note}" for note in self.notes)


@dataclass(frozen=True)
class IngestPolicy:
    """How a batch treats failing sources and where it parses; built from the [fetch] settings."""

    failure_limit: int = 5
    timezone: tzinfo | None = None  # for dates that carry no zone; None: UTC
    # Parsing and normalising are CPU-bound pure Python; a process pool puts every core to work on them
    # while the ingest threads wait on the network and the database. None: parse in the calling thread.
    parse_pool: Executor | None = field(default=None, compare=False)
    tracking: frozenset[str] = TRACKING_PARAMETERS  # query parameters that do not make another story


@dataclass(frozen=True)
class Reading:
    """How one source's items are read: its sections, its clock, what is tracking. Picklable, for a parse process."""

    default_category: str | None
    category_map: Mapping[str, str]
    timezone: tzinfo
    now: datetime
    tracking: frozenset[str] = TRACKING_PARAMETERS
    wall_clock_zone: tzinfo | None = None  # the source prints this zone's wall clock, whatever offset it writes

    @classmethod
    def of(cls, source: SourceSettings, policy: IngestPolicy, now: datetime) -> Reading:
        return cls(default_category=source.category, category_map=dict(source.category_map),
                   timezone=policy.timezone or UTC, now=now, tracking=policy.tracking,
                   wall_clock_zone=ZoneInfo(source.wall_clock_zone) if source.wall_clock_zone else None)


@dataclass(frozen=True)
class Parsed:
    """A source body turned into articles: what crosses back from a parse process."""

    articles: tuple[Article, ...]
    problems: tuple[str, ...]
    clamped: int
    notes: tuple[str, ...] = ()
    clock_warning: str | None = None


def ignore_interrupts() -> None:
    """In a parse process: Ctrl-C and SIGTERM are for the process that owns the pool, which shuts it down; a worker
    that took them too would print a traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def parse_body(kind: str, body: bytes, url: str, content_type: str | None, reading: Reading) -> Parsed:
    """Bytes of a `feed` or `jsonl` source -> normalised articles. Pure, and picklable for a process pool."""
    built_at = None
    if kind == "jsonl":
        raw, problems = parse_jsonl_lines(body, charset_of(content_type), timezone=reading.timezone)
        if not raw and problems:
            raise FeedsError(f"no readable line; first error: {problems[0]}")
    elif kind == "feed":
        document = parse_feed_document(body, content_type=content_type, timezone=reading.timezone)
        raw, problems, built_at = document.entries, [], document.built_at
    else:
        raise FeedsError(f"sources of kind {kind!r} are not parsed from one body")
    return _normalise_all(raw, problems, url, reading, built_at)


def _normalise_all(raw: list[RawEntry], problems: list[str], url: str, reading: Reading,
                   built_at: datetime | None = None) -> Parsed:
    if reading.wall_clock_zone is not None:
        raw = [replace(e, published_at=as_wall_clock(e.published_at, reading.wall_clock_zone),
                       updated_at=as_wall_clock(e.updated_at, reading.wall_clock_zone)) for e in raw]
        warning = None
    else:
        warning = clock_warning([e.published_at for e in raw], built_at, reading.now)
    raw, clamped = _clamp_future(raw, reading.now)
    base_url = url if url.startswith(("http://", "https://")) else None
    articles = tuple(normalise(entry, source_url=base_url, default_category=reading.default_category,
                               category_map=reading.category_map, fetched_at=reading.now, tracking=reading.tracking)
                     for entry in raw)
    return Parsed(articles=articles, problems=tuple(problems), clamped=clamped, clock_warning=warning)


def as_wall_clock(moment: datetime | None, zone: tzinfo) -> datetime | None:
    """A time a source printed as UTC read as the wall clock of `zone` ("17:00Z" from a Seoul CMS is 17:00 KST)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=zone).astimezone(UTC)


def clock_warning(times: Sequence[datetime | None], built_at: datetime | None, now: datetime) -> str | None:
    """What to tell the operator when a source's items run ahead of its own build time (else of the fetch) by a
    whole number of hours: the mark of local wall-clock times written with a UTC offset. One odd item is no
    pattern (clamping handles it); two or more, all within the same whole-hour shift, are."""
    reference = built_at or now
    ahead = sorted((t - reference for t in times if t is not None and t - reference >= timedelta(minutes=50)),
                   reverse=True)
    if len(ahead) < 2:
        return None
    hours = math.ceil((ahead[0] - timedelta(minutes=10)) / timedelta(hours=1))
    if not 1 <= hours <= 14 or ahead[0] > timedelta(hours=hours, minutes=15):
        return None
    against = "the feed's own build time" if built_at else "the time of fetching"
    return (f"{len(ahead)} items dated up to {hours} h after {against}: its times look like local wall-clock time "
            f"written as UTC (set the source's wall_clock_zone, e.g. \"Asia/Seoul\", to read them so)")


def location_policy(source: SourceSettings) -> OutboundPolicy:
    """What fetching a source's own location may reach: its private network only when the operator says so, a
    local file only when the location is a configured path. What its content names gets `.for_content`."""
    return OutboundPolicy(allow_private_network=source.allow_private_network, allow_files=source.path is not None)


def backoff(interval: timedelta, failures: int, failure_limit: int = 5,
            rand: Callable[[], float] = random.random) -> timedelta:
    """Delay before the next check after `failures` consecutive failures: doubling, ±20 % jitter, capped;
    from the failure limit on, the cap."""
    if failures >= failure_limit:
        return max(MAX_BACKOFF, interval)
    base = min(interval * (2 ** max(failures - 1, 0)), max(MAX_BACKOFF, interval))
    return base * (0.8 + 0.4 * rand())


def ingest_source(source: SourceSettings, *, store: ArticleStore, fetcher: Fetcher, now: datetime,
                  policy: IngestPolicy = IngestPolicy(), force: bool = True,
                  state: SourceState | None = None) -> IngestResult:
    """Poll one source. `force=False` (the scheduler) respects the source's backoff; the CLI forces.
    `state` saves a query when the caller read every source's state at once."""
    state = state or store.source(source.name)
    if state is None:
        raise FeedsError(f"source {source.name!r} is not in the store; run the configuration sync first")
    empty = UpsertCounts()
    if state.disabled_reason:
        return IngestResult(source.name, "error", empty, f"disabled: {state.disabled_reason}")
    # Only a failing source waits longer than its job's interval; a healthy one runs whenever its job fires.
    if not force and state.consecutive_failures and state.next_check_at is not None and state.next_check_at > now:
        until = state.next_check_at.astimezone(policy.timezone) if policy.timezone else state.next_check_at
        return IngestResult(source.name, "skipped", empty,
                            notes=(f"backing off after {state.consecutive_failures} failures until "
                                   f"{until.isoformat(timespec='minutes')}",))
    try:
        return _ingest(source, state, store=store, fetcher=fetcher, now=now, policy=policy)
    except Stopping:  # the process is stopping: the source did nothing wrong, and is read on the next run
        return IngestResult(source.name, "skipped", empty, notes=("stopped before it was read",))
    except GoneError as exc:
        store.disable(state.id, str(exc), now=now)
        log.warning("source %s disabled: %s", source.name, exc)
        return IngestResult(source.name, "error", empty, f"{exc} (source disabled until its location changes)")
    except Exception as exc:  # one bad source must not stop the batch; a bug is logged with its traceback
        reason = str(exc) if isinstance(exc, FeedsError) else f"unexpected {type(exc).__name__}: {exc}"
        if not isinstance(exc, FeedsError):
            log.exception("source %s: unexpected error", source.name)
        failures = state.consecutive_failures + 1
        next_check_at = now + backoff(source.interval, failures, policy.failure_limit)
        store.record_failure(state.id, reason, now=now, next_check_at=next_check_at)
        log.warning("source %s failed (%d in a row): %s", source.name, failures, reason)
        shown = next_check_at.astimezone(policy.timezone) if policy.timezone else next_check_at
        return IngestResult(source.name, "error", empty, reason, failures=failures, next_check_at=shown)


def _ingest(source: SourceSettings, state: SourceState, *, store: ArticleStore, fetcher: Fetcher, now: datetime,
            policy: IngestPolicy) -> IngestResult:
    location = state.fetch_url or source.location
    fetched = fetcher.fetch(location, Validators(state.etag, state.last_modified), location_policy(source))
    notes: list[str] = []
    if fetched.moved_to:
        notes.append(f"moved permanently to {fetched.moved_to}")
    body_hash = None
    counts = UpsertCounts()
    clock_note: str | None = None  # None: nothing read, the last verdict on the source's clock stands
    if not fetched.is_not_modified:
        assert fetched.body is not None
        body_hash = hashlib.sha256(fetched.body).hexdigest()
        if body_hash == state.body_hash:
            notes.append("same bytes as last time")
        else:
            parsed = _parse(source, fetched.body, fetched.url, fetched.content_type, fetcher=fetcher,
                            known=store.known_urls, policy=policy, now=now)
            if parsed.problems:
                notes.append(f"{len(parsed.problems)} unreadable items skipped (first: {parsed.problems[0]})")
            if parsed.clamped:
                notes.append(f"{parsed.clamped} dates in the future set to the time of fetching")
            if parsed.clock_warning:
                notes.append(parsed.clock_warning)
            notes += parsed.notes
            counts = store.upsert_articles(parsed.articles, source_id=state.id, now=now,
                                           touch_unchanged=source.kind == "html")
            clock_note = parsed.clock_warning or ""
    store.record_success(state.id, etag=fetched.validators.etag, last_modified=fetched.validators.last_modified,
                         now=now, next_check_at=now + source.interval, body_hash=body_hash, moved_to=fetched.moved_to,
                         clock_warning=clock_note)
    status = "new" if counts.new else "updated" if counts.updated else "unchanged"
    read = "not modified (304)" if fetched.is_not_modified else "; ".join(notes)
    log.info("source %s: %s new, %s updated, %s unchanged%s", source.name, counts.new, counts.updated,
             counts.unchanged, f" ({read})" if read else "")
    return IngestResult(source.name, status, counts, notes=tuple(notes))


def _parse(source: SourceSettings, body: bytes, url: str, content_type: str | None, *, fetcher: Fetcher,
           known: Callable[[list[str]], Mapping[str, datetime]], policy: IngestPolicy, now: datetime,
           page_limit: int = PAGE_LIMIT) -> Parsed:
    reading = Reading.of(source, policy, now)
    if source.kind == "html":  # fetches article pages as it goes: stays in this thread
        content = location_policy(source).for_content(source.location, source.allow_hosts)
        listing = candidates(body, url, content_type, fetcher=fetcher, timezone=reading.timezone, policy=content)
        refused = [f"{len(listing.refused)} links off the source's site left out (first: {listing.refused[0][:200]}; "
                   "allow_hosts lists other hosts to read)"] if listing.refused else []
        if not listing.found:
            raise FeedsError("no article links found on the page (is it a section page or a sitemap?)"
                             + (f"; {refused[0]}" if refused else ""))
        entries, problems = read_pages(listing.found, fetcher=fetcher, known=known, timezone=reading.timezone,
                                       policy=content, limit=page_limit)
        if not entries and problems:
            raise FeedsError(f"no article page could be read; first error: {problems[0]}")
        return replace(_normalise_all(entries, problems, url, reading), notes=tuple(refused))
    if policy.parse_pool is not None:
        try:
            try:
                future = policy.parse_pool.submit(parse_body, source.kind, body, url, content_type, reading)
            except BrokenProcessPool:
                raise
            except RuntimeError as exc:  # shut down: the command is ending (SIGTERM, Ctrl-C) as this thread reads
                raise Stopping(str(exc)) from exc
            return future.result()
        except BrokenProcessPool:  # a parse process died (killed, out of memory): parse here rather than fail
            log.error("the parse process pool is broken; parsing %s in this thread", source.name)
        except CancelledError as exc:  # the shutdown cancelled it before a process took it
            raise Stopping("the parse was cancelled") from exc
    return parse_body(source.kind, body, url, content_type, reading)


PREVIEW_ITEMS = 10


@dataclass(frozen=True)
class Preview:
    """A source read now and stored nowhere: its first articles as a poll would store them, and what the poll would
    have noted."""

    source: str
    url: str  # where the bytes came from, after redirects
    articles: tuple[Article, ...]  # the first `PREVIEW_ITEMS`, in the source's order
    total: int  # articles read (an html source reads at most `PREVIEW_ITEMS` pages)
    notes: tuple[str, ...] = ()


def preview_source(source: SourceSettings, *, fetcher: Fetcher, now: datetime, policy: IngestPolicy = IngestPolicy(),
                   limit: int = PREVIEW_ITEMS) -> Preview:
    """Fetch and read `source` as `ingest_source` does (the same fetcher, outbound policy, parsers and
    normalisation) without its state or the store: no validators sent, no article page skipped as known, nothing
    written. Raises FetchError (502) when it cannot be fetched or the policy refuses it, ParseError (422) when it
    cannot be read as its kind."""
    fetched = fetcher.fetch(source.location, Validators(), location_policy(source))
    if fetched.body is None:
        raise FetchError(f"{source.location[:200]} answered 304 Not Modified to a request without validators")
    try:
        parsed = _parse(source, fetched.body, fetched.url, fetched.content_type, fetcher=fetcher,
                        known=lambda urls: {}, policy=replace(policy, parse_pool=None), now=now, page_limit=limit)
    except (FetchError, ParseError):
        raise
    except FeedsError as exc:  # not readable as its kind: the definition's doing (422), not the server's
        raise ParseError(str(exc)) from exc
    notes = [f"{len(parsed.problems)} unreadable items skipped (first: {parsed.problems[0]})"] if parsed.problems else []
    if parsed.clamped:
        notes.append(f"{parsed.clamped} dates in the future set to the time of fetching")
    if parsed.clock_warning:
        notes.append(parsed.clock_warning)
    if fetched.moved_to:
        notes.append(f"moved permanently to {fetched.moved_to}")
    return Preview(source=source.name, url=fetched.url, articles=parsed.articles[:limit], total=len(parsed.articles),
                   notes=(*notes, *parsed.notes))


class Stopping(Exception):
    """The process is stopping while a source was being read: not the source's failure."""


def _clamp_future(entries: list[RawEntry], now: datetime) -> tuple[list[RawEntry], int]:
    limit = now + FUTURE_TOLERANCE
    out, clamped = [], 0
    for entry in entries:
        changes = {}
        if entry.published_at is not None and entry.published_at > limit:
            changes["published_at"] = now
        if entry.updated_at is not None and entry.updated_at > limit:
            changes["updated_at"] = now
        if changes:
            clamped += 1
            entry = replace(entry, **changes)
        out.append(entry)
    return out, clamped


def ingest_all(sources: Sequence[SourceSettings], *, store: ArticleStore, fetcher: Fetcher,
               clock: Callable[[], datetime], policy: IngestPolicy = IngestPolicy(), workers: int = 1,
               force: bool = True,
               on_result: Callable[[IngestResult], None] = lambda result: None) -> list[IngestResult]:
    """Poll `sources` with up to `workers` at once; results in the order of `sources`, `on_result` as they end."""
    states = {state.name: state for state in store.sources()}

    def one(source: SourceSettings) -> IngestResult:
        return ingest_source(source, store=store, fetcher=fetcher, now=clock(), policy=policy, force=force,
                             state=states.get(source.name))

    if workers <= 1 or len(sources) <= 1:
        results = []
        for source in sources:
            results.append(one(source))
            on_result(results[-1])
        return results
    by_name: dict[str, IngestResult] = {}
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gazette-ingest")
    try:
        for future in as_completed([pool.submit(one, source) for source in sources]):
            result = future.result()
            by_name[result.source] = result
            on_result(result)
    except BaseException:  # SIGTERM or Ctrl-C: finish the sources being read, leave the rest for the next run
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [by_name[source.name] for source in sources]
