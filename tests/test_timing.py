"""The zone rules of newsletter/timing.py, table-driven: an edition's cron read on each reader's wall clock, across
changes of the clocks (both ways, both hemispheres, a half-hour change) and odd offsets (+05:45, +08:45, -09:30,
+12:45/+13:45). Times are written as the reader's clock shows them, with the offset in force.

The scheduler's whole tick loop over three weeks of thirty zones is test_editions.py's; these are the single rules.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from newsletter.timing import due_runs, fire_times, fires_at, half_period, is_zone, next_runs, zone_of, zones_firing

SEOUL = ZoneInfo("Asia/Seoul")


def local(stamp: str) -> datetime:
    """An ISO time with its offset, as an aware datetime."""
    return datetime.fromisoformat(stamp)


def shown(instants: list[datetime], zone: str) -> list[str]:
    return [at.astimezone(ZoneInfo(zone)).isoformat() for at in instants]


# --- fire_times: the instants in (after, until] --------------------------------------------------------------

@pytest.mark.parametrize(("schedule", "zone", "after", "until", "expected"), [
    pytest.param("0 7 * * *", "Asia/Seoul", "2026-11-25T00:00+00:00", "2026-11-27T00:00+00:00",
                 ["2026-11-26T07:00:00+09:00", "2026-11-27T07:00:00+09:00"], id="seoul-no-change"),
    pytest.param("0 7 * * *", "Asia/Kathmandu", "2026-11-25T00:00+00:00", "2026-11-26T12:00+00:00",
                 ["2026-11-25T07:00:00+05:45", "2026-11-26T07:00:00+05:45"], id="kathmandu-plus-0545"),
    pytest.param("0 7 * * *", "Australia/Eucla", "2026-11-25T00:00+00:00", "2026-11-26T12:00+00:00",
                 ["2026-11-26T07:00:00+08:45"], id="eucla-plus-0845"),
    pytest.param("0 7 * * *", "Pacific/Marquesas", "2026-11-25T00:00+00:00", "2026-11-26T12:00+00:00",
                 ["2026-11-25T07:00:00-09:30"], id="marquesas-minus-0930"),
    pytest.param("0 7 * * *", "Asia/Kolkata", "2026-11-25T01:30+00:00", "2026-11-26T01:30+00:00",
                 ["2026-11-26T07:00:00+05:30"], id="after-is-excluded-until-included"),
    # London: 01:30 does not exist on 29 March (01:00 -> 02:00): moved on by the gap, to 02:30, once.
    pytest.param("30 1 * * *", "Europe/London", "2026-03-28T12:00+00:00", "2026-03-30T12:00+00:00",
                 ["2026-03-29T02:30:00+01:00", "2026-03-30T01:30:00+01:00"], id="london-forward-gap"),
    # London: 01:30 happens twice on 25 October (02:00 -> 01:00): the first only.
    pytest.param("30 1 * * *", "Europe/London", "2026-10-24T12:00+00:00", "2026-10-26T12:00+00:00",
                 ["2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00+00:00"], id="london-back-twice"),
    # Lord Howe moves by half an hour: 02:15 does not exist on 4 October (02:00 -> 02:30); it is 02:45.
    pytest.param("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00+00:00", "2026-10-05T00:00+00:00",
                 ["2026-10-04T02:45:00+11:00", "2026-10-05T02:15:00+11:00"], id="lord-howe-half-hour-gap"),
    # ... and 01:45 happens twice on 5 April (02:00 -> 01:30): the first, at +11:00.
    pytest.param("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00+00:00", "2026-04-06T00:00+00:00",
                 ["2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"], id="lord-howe-half-hour-twice"),
    # Chatham (+12:45 / +13:45): 03:00 does not exist on 27 September (02:45 -> 03:45); it is 04:00.
    pytest.param("0 3 * * *", "Pacific/Chatham", "2026-09-25T12:00+00:00", "2026-09-27T12:00+00:00",
                 ["2026-09-26T03:00:00+12:45", "2026-09-27T04:00:00+13:45"], id="chatham-forward-gap"),
    # ... and 03:00 happens twice on 5 April (03:45 -> 02:45): the first, at +13:45.
    pytest.param("0 3 * * *", "Pacific/Chatham", "2026-04-03T12:00+00:00", "2026-04-05T12:00+00:00",
                 ["2026-04-04T03:00:00+13:45", "2026-04-05T03:00:00+13:45"], id="chatham-back-twice"),
    # St John's (-03:30 / -02:30) and a weekly edition on the Monday after the change.
    pytest.param("0 8 * * mon", "America/St_Johns", "2026-03-01T00:00+00:00", "2026-03-17T00:00+00:00",
                 ["2026-03-02T08:00:00-03:30", "2026-03-09T08:00:00-02:30", "2026-03-16T08:00:00-02:30"],
                 id="st-johns-weekly-across-the-change"),
    # Havana changes at midnight: the day of the change still has its run, at 01:00.
    pytest.param("0 0 * * *", "America/Havana", "2026-03-07T12:00+00:00", "2026-03-09T12:00+00:00",
                 ["2026-03-08T01:00:00-04:00", "2026-03-09T00:00:00-04:00"], id="havana-midnight-gap"),
    # Every half hour through New York's gap: 02:00 and 02:30 fall on 03:00 and 03:30, which are runs anyway.
    pytest.param("0,30 1-3 * * *", "America/New_York", "2026-03-08T05:00+00:00", "2026-03-08T09:00+00:00",
                 ["2026-03-08T01:00:00-05:00", "2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00",
                  "2026-03-08T03:30:00-04:00"], id="new-york-gap-no-double"),
    # ... and through the night it goes back: 01:00 and 01:30 once each (the first), then 02:00.
    pytest.param("0,30 1-2 * * *", "America/New_York", "2026-11-01T04:00+00:00", "2026-11-01T09:00+00:00",
                 ["2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T02:00:00-05:00",
                  "2026-11-01T02:30:00-05:00"], id="new-york-back-no-double"),
    pytest.param("0 7 * * *", "Asia/Seoul", "2026-11-25T00:00+00:00", "2026-11-25T00:00+00:00", [], id="empty-window"),
])
def test_fire_times(schedule: str, zone: str, after: str, until: str, expected: list[str]) -> None:
    found = fire_times(schedule, ZoneInfo(zone), local(after), local(until))
    assert shown(found, zone) == expected
    assert all(at.tzinfo is not None and at.utcoffset() == timedelta(0) for at in found)  # instants, in UTC


@pytest.mark.parametrize(("schedule", "zone", "day", "runs"), [
    pytest.param("0,30 * * * *", "America/New_York", "2026-03-08", 46, id="short-day-loses-its-gap"),
    pytest.param("0,30 * * * *", "America/New_York", "2026-11-01", 48, id="long-day-repeats-nothing"),
    pytest.param("0,30 * * * *", "Australia/Lord_Howe", "2026-10-04", 47, id="half-hour-short-day"),
    pytest.param("0,30 * * * *", "Asia/Kathmandu", "2026-03-08", 48, id="no-change"),
])
def test_one_local_day_has_each_wall_time_at_most_once(schedule: str, zone: str, day: str, runs: int) -> None:
    z = ZoneInfo(zone)
    start = datetime.fromisoformat(day).replace(tzinfo=z)
    end = start + timedelta(days=1)  # wall-clock arithmetic: the next local midnight, however long the day
    found = fire_times(schedule, z, start - timedelta(microseconds=1), end - timedelta(microseconds=1))
    assert len(found) == runs
    assert len({at.astimezone(z).replace(tzinfo=None) for at in found}) == runs  # no wall time twice


@pytest.mark.parametrize(("zone", "at", "expected"), [
    pytest.param("Asia/Seoul", "2026-11-26T07:00+09:00", True, id="on-time"),
    pytest.param("Asia/Seoul", "2026-11-26T07:00:01+09:00", False, id="a-second-late"),
    pytest.param("America/New_York", "2026-03-08T03:30-04:00", True, id="moved-on-past-the-gap"),
    pytest.param("America/New_York", "2026-11-01T01:30-05:00", False, id="the-second-of-two-0130s"),
])
def test_fires_at(zone: str, at: str, expected: bool) -> None:
    schedule = "0 7 * * *" if zone == "Asia/Seoul" else "30 1,2 * * *"
    assert fires_at(schedule, ZoneInfo(zone), local(at)) is expected


# --- zone names --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    pytest.param("Asia/Seoul", True, id="zone"),
    pytest.param("UTC", True, id="utc"),
    pytest.param("Asia", False, id="a-folder"),
    pytest.param("posix", False, id="another-folder"),
    pytest.param("Mars/Olympus_Mons", False, id="unknown"),
    pytest.param("../etc/passwd", False, id="a-path"),
])
def test_is_zone(name: str, expected: bool) -> None:
    assert is_zone(name) is expected


@pytest.mark.parametrize(("name", "expected"), [
    pytest.param("Europe/London", "Europe/London", id="chosen"),
    pytest.param(None, "Asia/Seoul", id="none-chosen-is-the-sites"),
    pytest.param("", "Asia/Seoul", id="empty-is-the-sites"),
    pytest.param("Asia", "Asia/Seoul", id="a-folder-is-the-sites"),
])
def test_zone_of(name: str | None, expected: str) -> None:
    assert zone_of(name, SEOUL).key == expected


# --- due_runs: what the scheduler's tick sends ---------------------------------------------------------------

@pytest.mark.parametrize(("zones", "after", "until", "expected"), [
    pytest.param([], "2026-11-25T12:00+00:00", "2026-11-26T12:00+00:00", ["2026-11-25T22:00:00+00:00"],
                 id="no-reader-zone-the-sites-only"),
    pytest.param([None, "Asia/Seoul", "Asia/Tokyo"], "2026-11-25T12:00+00:00", "2026-11-26T12:00+00:00",
                 ["2026-11-25T22:00:00+00:00"], id="same-offset-one-instant"),
    pytest.param(["Europe/London", "Asia/Kolkata", "Asia/Kathmandu"], "2026-11-25T12:00+00:00",
                 "2026-11-26T12:00+00:00",
                 ["2026-11-25T22:00:00+00:00", "2026-11-26T01:15:00+00:00", "2026-11-26T01:30:00+00:00",
                  "2026-11-26T07:00:00+00:00"], id="each-zone-its-instant-sorted"),
    pytest.param(["Asia", "Mars/Olympus_Mons"], "2026-11-25T12:00+00:00", "2026-11-26T12:00+00:00",
                 ["2026-11-25T22:00:00+00:00"], id="unknown-names-are-the-sites"),
    pytest.param(["America/New_York"], "2026-03-08T11:45+00:00", "2026-03-08T12:00+00:00", [],
                 id="a-tick-with-nothing-due"),
    pytest.param(["America/New_York"], "2026-03-08T10:45+00:00", "2026-03-08T11:00+00:00",
                 ["2026-03-08T11:00:00+00:00"], id="a-tick-ending-on-the-time"),
])
def test_due_runs(zones: list[str | None], after: str, until: str, expected: list[str]) -> None:
    found = due_runs("0 7 * * *", zones, SEOUL, local(after), local(until))
    assert [at.isoformat() for at in found] == expected


# --- zones_firing: whose readers a run at one instant takes --------------------------------------------------

READERS: list[str | None] = [None, "Asia/Seoul", "Europe/London", "Asia/Tokyo", "Asia", "Asia/Kathmandu",
                             "America/New_York", "Asia/Seoul"]


@pytest.mark.parametrize(("at", "expected"), [
    pytest.param("2026-11-25T22:00+00:00", [None, "Asia/Seoul", "Asia/Tokyo", "Asia", "Asia/Seoul"],
                 id="seoul-time-keeps-order-names-and-repeats"),
    pytest.param("2026-11-26T01:15+00:00", ["Asia/Kathmandu"], id="kathmandu-time"),
    pytest.param("2026-11-26T07:00+00:00", ["Europe/London"], id="london-time"),
    pytest.param("2026-11-26T12:00+00:00", ["America/New_York"], id="new-york-time"),
    pytest.param("2026-11-26T12:00:01+00:00", [], id="nobodys-time"),
])
def test_zones_firing(at: str, expected: list[str | None]) -> None:
    assert zones_firing("0 7 * * *", READERS, SEOUL, local(at)) == expected


def test_zones_firing_across_a_gap() -> None:
    """New York's 02:30 on the night of the change is 03:30: its readers are taken then, Seoul's are not."""
    at = local("2026-03-08T03:30-04:00")
    assert zones_firing("30 2 * * *", ["America/New_York", "Asia/Seoul", None], SEOUL, at) == ["America/New_York"]


# --- next_runs (`gazette check`) and half_period -------------------------------------------------------------

@pytest.mark.parametrize(("schedule", "zones", "now", "expected"), [
    pytest.param("0 7 * * *", ["Asia/Seoul", "America/New_York"], "2026-11-25T00:00+00:00",
                 [("Asia/Seoul", "2026-11-26T07:00:00+09:00"), ("America/New_York", "2026-11-25T07:00:00-05:00")],
                 id="each-zone-in-the-order-given"),
    pytest.param("0 8 * * mon", ["Asia/Seoul"], "2026-11-25T00:00+00:00", [("Asia/Seoul", "2026-11-30T08:00:00+09:00")],
                 id="weekly"),
    pytest.param("30 2 * * *", ["America/New_York"], "2026-03-08T05:00+00:00",
                 [("America/New_York", "2026-03-08T03:30:00-04:00")], id="moved-past-the-gap"),
    pytest.param("0 7 29 2 *", ["Asia/Seoul", "UTC"], "2026-11-25T00:00+00:00", [], id="none-within-8-days"),
])
def test_next_runs(schedule: str, zones: list[str], now: str, expected: list[tuple[str, str]]) -> None:
    found = next_runs(schedule, [ZoneInfo(z) for z in zones], local(now))
    assert [(z.key, at.astimezone(z).isoformat()) for z, at in found] == expected


@pytest.mark.parametrize(("schedule", "zone", "expected"), [
    pytest.param("0 7 * * *", "Asia/Seoul", timedelta(hours=12), id="daily"),
    pytest.param("0 7,19 * * *", "Asia/Seoul", timedelta(hours=6), id="twice-a-day"),
    pytest.param("0 8 * * mon", "Asia/Seoul", timedelta(days=3, hours=12), id="weekly"),
    pytest.param("0 7 29 2 *", "Asia/Seoul", timedelta(days=3), id="none-in-five-weeks"),
])
def test_half_period(schedule: str, zone: str, expected: timedelta) -> None:
    assert half_period(schedule, ZoneInfo(zone)) == expected


def test_times_are_instants_whatever_zone_asks() -> None:
    """One instant, asked from two zones' windows written in their own offsets: the same answer."""
    seoul = fire_times("0 7 * * *", ZoneInfo("Asia/Seoul"), local("2026-11-25T09:00+09:00"),
                       local("2026-11-26T09:00+09:00"))
    london = fire_times("0 7 * * *", ZoneInfo("Asia/Seoul"), local("2026-11-25T00:00+00:00"),
                        local("2026-11-26T00:00+00:00"))
    assert seoul == london == [datetime(2026, 11, 25, 22, tzinfo=UTC)]
