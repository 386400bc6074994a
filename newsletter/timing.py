"""When an edition is due in a reader's own time zone: its cron schedule read on their wall clock.

An edition's schedule ("0 7 * * *") means 07:00 where the reader lives, in any IANA zone, half-hour and 45-minute
offsets included. The scheduler runs one job every TICK; each run sends the editions whose local time came, in
any zone a reader chose, since the run before (`due_runs`). A send then takes the readers of the zones that fire
at that instant (`zones_firing`).

Wall-clock times are matched in naive local time and placed on the time line afterwards, so that a change of the
clocks neither repeats nor loses a day (APScheduler's cron trigger, read in a zone, fires twice on the night
clocks go back and skips the day in zones that change at midnight):
- a time that happens twice (clocks back) is the first of the two;
- a time that does not exist (clocks forward) is moved on by the length of the gap: 02:30 on a night that skips
  from 02:00 to 03:00 is 03:30, once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from apscheduler.triggers.cron import CronTrigger

TICK = timedelta(minutes=15)
_MARGIN = timedelta(hours=3)  # more than any shift of the clocks, so no wall time near the window is missed


def fire_times(schedule: str, zone: ZoneInfo, after: datetime, until: datetime) -> list[datetime]:
    """The instants (UTC) in (after, until] at which `schedule`, read on `zone`'s wall clock, fires."""
    first = (after - _MARGIN).astimezone(zone).date()
    last = (until + _MARGIN).astimezone(zone).date()
    found = {at for n in range((last - first).days + 1)
             for at in _day(schedule, zone.key, first + timedelta(days=n)) if after < at <= until}
    return sorted(found)


@lru_cache(maxsize=16384)
def _day(schedule: str, zone_key: str, day: date) -> tuple[datetime, ...]:
    """The instants of one local day's wall-clock times of `schedule` (cached: the scheduler asks every tick)."""
    trigger = _wall_trigger(schedule)
    zone = _zone(zone_key) or ZoneInfo(zone_key)
    wall = datetime.combine(day, time(), UTC)  # naive wall time, carried as if it were UTC
    end = wall + timedelta(days=1)
    out, previous = [], None
    while (wall := trigger.get_next_fire_time(previous, wall)) is not None and wall < end:
        out.append(_instant(wall, zone))
        previous, wall = wall, wall + timedelta(microseconds=1)
    return tuple(out)


@lru_cache(maxsize=256)
def _wall_trigger(schedule: str) -> CronTrigger:
    return CronTrigger.from_crontab(schedule, timezone=UTC)


def fires_at(schedule: str, zone: ZoneInfo, at: datetime) -> bool:
    """Whether `schedule`, read on `zone`'s wall clock, fires at the instant `at`."""
    return bool(fire_times(schedule, zone, at - timedelta(microseconds=1), at))


def zone_of(name: str | None, site_zone: ZoneInfo) -> ZoneInfo:
    """A reader's zone; none chosen (or a name this system does not know) is the site's."""
    return (_zone(name) if name else None) or site_zone


ZONE_NAMES = frozenset(available_timezones())


def is_zone(name: str) -> bool:
    """A name of the time zone database. Not ZoneInfo(name) alone: "Asia" or "posix" are folders, and reading them
    raises IsADirectoryError."""
    return name in ZONE_NAMES


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    """ZoneInfo keeps only the last few zones it read: with readers in dozens of zones, each tick read files."""
    if not is_zone(name):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def due_runs(schedule: str, zone_names: Iterable[str | None], site_zone: ZoneInfo, after: datetime,
             until: datetime) -> list[datetime]:
    """The instants in (after, until] at which the edition is due for readers of any of these zones."""
    zones = {zone_of(name, site_zone) for name in zone_names} | {site_zone}
    return sorted({at for zone in zones for at in fire_times(schedule, zone, after, until)})


def zones_firing(schedule: str, zone_names: Iterable[str | None], site_zone: ZoneInfo,
                 at: datetime) -> list[str | None]:
    """Of the zone names readers chose (None: no choice), those whose wall clock says it is the edition's time."""
    verdicts: dict[str, bool] = {}
    out: list[str | None] = []
    for name in zone_names:
        zone = zone_of(name, site_zone)
        if zone.key not in verdicts:
            verdicts[zone.key] = fires_at(schedule, zone, at)
        if verdicts[zone.key]:
            out.append(name)
    return out


@lru_cache(maxsize=256)
def half_period(schedule: str, zone: ZoneInfo) -> timedelta:
    """Half the shortest gap between two runs of `schedule` (over the next five weeks): two runs of one edition for
    one reader closer than this are the same run seen from two zones, never two periods."""
    start = datetime(2026, 1, 5, tzinfo=UTC)  # a fixed span, so the answer is the same every time it is asked
    runs = fire_times(schedule, zone, start, start + timedelta(days=35))
    gaps = [b - a for a, b in zip(runs, runs[1:])]
    return min(gaps) / 2 if gaps else timedelta(days=3)


def next_runs(schedule: str, zones: Sequence[ZoneInfo], now: datetime) -> list[tuple[ZoneInfo, datetime]]:
    """Each zone's next run after `now` (for `gazette check`): at most 8 days ahead, as every cron has one by then."""
    out = []
    for zone in zones:
        upcoming = fire_times(schedule, zone, now, now + timedelta(days=8))
        if upcoming:
            out.append((zone, upcoming[0]))
    return out


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=UTC, fold=0)


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in `zone` as an instant: the first of two (fold 0), or moved on past a gap."""
    local = wall.replace(tzinfo=zone, fold=0)
    return local.astimezone(UTC)
