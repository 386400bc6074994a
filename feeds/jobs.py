"""The content side's scheduled jobs: `ingest:<source>` for each configured source, every its interval; and the
shared layer's housekeeping, `console:sessions` (ended console sessions deleted, hourly) and `events:prune` (the event
log's events older than 90 days deleted, daily).

The wiring hands `ingest_jobs(...)` to the scheduler beside the audience side's jobs (`newsletter.jobs`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .core.scheduling import TaskSpec
from .settings import SourceSettings

SOURCE_MISFIRE_GRACE = timedelta(minutes=5)


def ingest_jobs(sources: Sequence[SourceSettings], timezone: ZoneInfo,
                poll: Callable[[str], str]) -> list[TaskSpec]:
    """One job per source, in configuration order: `poll(name)` (the ingest here, or its task put on the queue; a
    line of what happened) every `interval`, jittered by a tenth of it (at most 30 s) so that sources of one interval
    do not all fetch at once; the first run when the scheduler starts."""
    return [TaskSpec(key=f"ingest:{source.name}", name=f"ingest {source.name}",
                     trigger=IntervalTrigger(seconds=int(source.interval.total_seconds()), timezone=timezone,
                                             jitter=min(30, int(source.interval.total_seconds() * 0.1))),
                     run=lambda _at, name=source.name: poll(name),
                     misfire_grace=SOURCE_MISFIRE_GRACE, start_now=True)
            for source in sources]


def session_jobs(forget_ended: Callable[[], int], timezone: ZoneInfo) -> list[TaskSpec]:
    """Ended console sessions (logged out, idle, past their lifetime) deleted every hour: a row per abandoned browser
    would otherwise stay."""
    return [TaskSpec(key="console:sessions", name="console sessions", trigger=CronTrigger(minute=17, timezone=timezone),
                     run=lambda _at: f"{forget_ended()} ended sessions deleted", misfire_grace=timedelta(hours=1))]


def event_jobs(prune: Callable[[], int], timezone: ZoneInfo) -> list[TaskSpec]:
    """The event log's old events (and the webhook deliveries that went) deleted once a day, at 04:41."""
    return [TaskSpec(key="events:prune", name="event log housekeeping",
                     trigger=CronTrigger(hour=4, minute=41, timezone=timezone),
                     run=lambda _at: f"{prune()} old events deleted", misfire_grace=timedelta(hours=6))]
