"""Editions as readers' choices, and every edition at its hour on each reader's own clock, in any zone."""

from __future__ import annotations

import email
import mailbox
from collections import Counter
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from feeds.core.errors import ConfigError
from newsletter.errors import SubscriberError
from newsletter.settings import load_settings
from newsletter.timing import TICK, due_runs, fire_times, zones_firing
from tests.conftest import NOW, Clock, migrate, write_config
from tests.test_store import make_article

SEOUL = ZoneInfo("Asia/Seoul")

# 30 zones: whole, half-hour and 45-minute offsets, both hemispheres' clock changes, zones that change at midnight.
ZONES = (
    "Asia/Seoul", "Asia/Tokyo", "Asia/Shanghai", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Tehran", "Asia/Kabul",
    "Asia/Yangon", "Australia/Adelaide", "Australia/Eucla", "Australia/Lord_Howe", "Australia/Sydney",
    "Pacific/Chatham", "Pacific/Auckland", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Pacific/Marquesas",
    "America/St_Johns", "America/New_York", "America/Havana", "America/Santiago", "America/Sao_Paulo",
    "America/Los_Angeles", "Atlantic/Azores", "Europe/London", "Europe/Berlin", "Africa/Cairo", "Asia/Beirut",
    "UTC", "America/Caracas",
)
EDITIONS = {"daily": ("0 7 * * *", lambda local: local.date()),
            "weekly": ("0 8 * * mon", lambda local: local.isocalendar()[:2])}
# Three weeks that hold the spring change of the north (US 8 March, EU 29 March) and the autumn one of the south.
STARTS = (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 23, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC))


@pytest.mark.parametrize("edition", sorted(EDITIONS))
@pytest.mark.parametrize("start", STARTS, ids=lambda d: d.date().isoformat())
def test_each_reader_gets_each_edition_once_per_local_period_at_its_local_time(edition: str, start: datetime) -> None:
    """The scheduler's ticks over 21 days: every zone fires once per local day (or week), within one tick of 07:00
    (08:00 on Mondays) on its own clock, never twice around a change of the clocks and never zero times."""
    schedule, period_of = EDITIONS[edition]
    hour = 7 if edition == "daily" else 8
    days = 21
    sent: Counter[tuple[str, object]] = Counter()
    late: list[str] = []
    tick = start
    while tick < start + timedelta(days=days):
        for at in due_runs(schedule, ZONES, SEOUL, tick - TICK, tick):
            for name in zones_firing(schedule, ZONES, SEOUL, at):
                local = at.astimezone(ZoneInfo(name))
                sent[(name, period_of(local))] += 1
                wanted = local.replace(hour=hour, minute=0, second=0)
                # the tick is at most one TICK after the local time (or the end of a gap the time fell in)
                if not timedelta(0) <= tick - at < TICK or not timedelta(0) <= local - wanted <= timedelta(hours=1):
                    late.append(f"{name} {local.isoformat()} sent at tick {tick.isoformat()}")
        tick += TICK
    assert not late, late[:5]
    assert max(sent.values()) == 1, [k for k, v in sent.items() if v > 1][:5]
    for name in ZONES:  # every local period wholly inside the 21 days got its mail
        zone = ZoneInfo(name)
        first, last = start.astimezone(zone), (start + timedelta(days=days)).astimezone(zone)
        periods = {period_of(first + timedelta(hours=h)) for h in range(24 * days)}
        periods -= {period_of(first), period_of(last)}  # the ends may be cut
        missing = [p for p in periods if sent[(name, p)] != 1]
        assert not missing, (name, missing[:3])


@pytest.mark.parametrize(("schedule", "zone", "after", "expected"), [
    # clocks forward: 02:30 does not exist on 8 March in New York; it is 03:30, once
    ("30 2 * * *", "America/New_York", datetime(2026, 3, 7, 12, tzinfo=UTC),
     ["2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"]),
    # clocks back: 01:30 happens twice on 1 November; the first only
    ("30 1 * * *", "America/New_York", datetime(2026, 10, 31, 12, tzinfo=UTC),
     ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]),
    # Havana skips midnight on 8 March: the day still has its run, at 01:00
    ("0 0 * * *", "America/Havana", datetime(2026, 3, 7, 12, tzinfo=UTC),
     ["2026-03-08T01:00:00-04:00", "2026-03-09T00:00:00-04:00"]),
    ("0 7 * * *", "Asia/Kathmandu", datetime(2026, 3, 7, 12, tzinfo=UTC),
     ["2026-03-08T07:00:00+05:45", "2026-03-09T07:00:00+05:45"]),
])
def test_wall_clock_times_across_clock_changes(schedule: str, zone: str, after: datetime, expected: list[str]) -> None:
    z = ZoneInfo(zone)
    found = [at.astimezone(z).isoformat() for at in fire_times(schedule, z, after, after + timedelta(days=2))]
    assert found == expected


# --- end to end: the configured editions, the store, the scheduler's tick, the mail -----------------------------

EVENING = """
[digests.daily]
schedule = "0 7 * * *"
window = "24h"

[digests.evening]
schedule = "0 18 * * *"
window = "12h"
label = { ko = "저녁 브리핑", en = "Evening briefing" }
description = "하루를 마무리하는 저녁 뉴스"

[digests.offers]
schedule = "0 12 * * *"
window = "24h"
ad = true
label = "제휴 소식"
"""


@pytest.fixture
def services(tmp_path: Path, database_url: str, clock: Clock):  # type: ignore[no-untyped-def]
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url,
                                          mail_url=f"maildir://{tmp_path / 'outbox'}", extra=EVENING), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    yield services
    services.close()


def mails(path: Path) -> list[email.message.EmailMessage]:
    if not path.exists():
        return []
    box = mailbox.Maildir(str(path), create=False)
    return [email.message_from_bytes(box.get_bytes(key), policy=policy.default) for key in sorted(box.keys())]


def test_an_edition_added_by_configuration_reaches_its_readers_in_their_zones(services, clock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`[digests.evening]`: chosen by readers in Seoul, Kolkata (+05:30), Kathmandu (+05:45) and St John's
    (−03:30), sent by the scheduler's 15-minute tick at 18:00 on each one's clock, once a day, over three days with
    ticks that look back two hours (so each run is seen eight times)."""
    subs = services.subscribers
    zones = {"seoul@example.com": None, "kolkata@example.com": "Asia/Kolkata",
             "kathmandu@example.com": "Asia/Kathmandu", "stjohns@example.com": "America/St_Johns"}
    for address, zone in zones.items():
        _, s = subs.add(address, categories=["politics", "economy"], editions=["evening"], now=clock(),
                        confirmed=True, method="admin")
        if zone:
            subs.update_preferences(s.id, s.public_id, _choices(s, timezone=zone), is_paused=False, now=clock())
    subs.add("morning@example.com", categories=["politics"], editions=["daily"], now=clock(), confirmed=True,
             method="admin")
    start = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    for hour in range(72):  # an article an hour, so no run finds nothing new
        at = start - timedelta(hours=12) + timedelta(hours=hour)
        services.store.upsert_articles([make_article(100 + hour, published_at=at)], source_id=None, now=at)
    tick = start
    while tick < start + timedelta(days=3):
        clock.now = tick
        services.audience_jobs.send_due(tick)
        tick += TICK
    got = Counter(m["To"].addresses[0].addr_spec for m in mails(tmp_path / "outbox"))
    assert got == {**{address: 3 for address in zones}, "morning@example.com": 3}
    for m in mails(tmp_path / "outbox"):
        to = m["To"].addresses[0].addr_spec
        zone = ZoneInfo(zones.get(to) or "Asia/Seoul")
        local = m["Date"].datetime.astimezone(zone)
        assert (local.hour, local.minute) == ((18, 0) if to in zones else (7, 0)), (to, local)


def test_a_reader_of_an_edition_that_left_the_configuration_is_reported(services, clock, tmp_path, database_url):  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    import service

    services.subscribers.add("evening@example.com", categories=["politics"], editions=["evening"], now=clock(),
                             confirmed=True, method="admin")
    services.close()
    config = write_config(tmp_path / "less.toml", database_url=database_url,
                          mail_url=f"maildir://{tmp_path / 'outbox'}")  # only the default daily and weekly
    result = CliRunner().invoke(service.main, ["--config", str(config), "check"])
    assert result.exit_code == 0, result.output
    assert "1 reader(s) chose edition 'evening', which is not configured" in result.output
    assert "next in Asia/Kolkata:" in result.output and "next in Asia/Kathmandu:" in result.output


def test_editions_are_checked_against_the_configuration(services, clock) -> None:  # type: ignore[no-untyped-def]
    subs = services.subscribers
    with pytest.raises(SubscriberError, match="unknown edition"):
        subs.add("a@example.com", categories=["politics"], editions=["hourly"], now=clock(), confirmed=True,
                 method="admin")
    with pytest.raises(SubscriberError, match="at least one edition"):
        subs.add("a@example.com", categories=["politics"], editions=[], now=clock(), confirmed=True, method="admin")
    _, s = subs.add("a@example.com", categories=["politics"], editions=["evening", "daily", "evening"], now=clock(),
                    confirmed=True, method="admin")
    assert s is not None and s.editions == ("daily", "evening")


def test_an_advertising_edition_goes_only_to_readers_who_consented(services, clock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    subs = services.subscribers
    for address in ("yes@example.com", "no@example.com"):
        _, s = subs.add(address, categories=["politics"], editions=["offers"], now=clock(), confirmed=True,
                        method="admin")
        if address.startswith("yes"):
            subs.update_preferences(s.id, s.public_id, _choices(s, ads=True), is_paused=False, now=clock())
    services.store.upsert_articles([make_article(1, published_at=NOW - timedelta(hours=1))], source_id=None,
                                   now=clock())
    noon = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 12:00 in Seoul: not a quiet hour
    clock.now = noon
    report = services.send("offers", noon)
    assert (report.recipients, report.sent) == (1, 1)
    [mail] = mails(tmp_path / "outbox")
    assert mail["To"].addresses[0].addr_spec == "yes@example.com"
    assert mail["Subject"].startswith("(광고)")


@pytest.mark.parametrize(("raw", "key"), [
    ('[digests.evening]\nschedule = "0 18 * * *"\nlabel = { fr = "Soir" }\n', "digests.evening.label.fr"),
    ('[digests.evening]\nschedule = "0 18 * * *"\nlabel = { ko = "" }\n', "digests.evening.label.ko"),
    ('[digests.evening]\nschedule = "0 18 * * *"\nlabel = 3\n', "digests.evening.label"),
    ('[digests.evening]\nschedule = "0 18 * * *"\nad = true\nads = true\n', "digests.evening.ads"),
    ('[site]\nname = "x"\nprivacy_url = "javascript:alert(1)"\n', "site.privacy_url"),
])
def test_bad_edition_words_stop_the_start_with_the_key(tmp_path: Path, raw: str, key: str) -> None:
    path = write_config(tmp_path / "g.toml", database_url="sqlite:///x.db", extra=raw)
    text = path.read_text().replace('[site]\nname = "한빛일보"', "[site]\nname = \"한빛일보\"", 1)
    if raw.startswith("[site]"):  # the base config has a [site]: put the key there instead of a second table
        text = text.replace(raw, "").replace("[site]\n", "[site]\nprivacy_url = \"javascript:alert(1)\"\n", 1)
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert caught.value.key == key


def _choices(s, **changes):  # type: ignore[no-untyped-def]
    from newsletter.records import Choices

    values = {"categories": s.categories, "editions": s.editions, "language": s.language, "timezone": s.timezone,
              "ads": None}
    return Choices(**{**values, **changes})


def test_a_reader_who_moves_west_gets_the_day_s_edition_once(services, clock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """07:00 in Seoul (22:00 UTC) is sent; then the reader moves to London, whose 07:00 of the same date comes nine
    hours later with new stories: that is the same local day, so no second mail; London's next 07:00 is theirs."""
    subs = services.subscribers
    _, s = subs.add("mover@example.com", categories=["politics"], editions=["daily"], now=clock(), confirmed=True,
                    method="admin")
    seoul_seven = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)  # 25 November, 07:00 KST
    services.store.upsert_articles([make_article(1, published_at=seoul_seven - timedelta(hours=3))], source_id=None,
                                   now=clock())
    clock.now = seoul_seven
    services.audience_jobs.send_due(seoul_seven)
    subs.update_preferences(s.id, s.public_id, _choices(s, timezone="Europe/London"), is_paused=False, now=clock())
    services.store.upsert_articles([make_article(2, published_at=seoul_seven + timedelta(hours=3))], source_id=None,
                                   now=clock())
    london_seven = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)  # 25 November, 07:00 in London
    for tick in (london_seven, london_seven + TICK):
        clock.now = tick
        services.audience_jobs.send_due(tick)
    assert len(mails(tmp_path / "outbox")) == 1
    services.store.upsert_articles([make_article(3, published_at=london_seven + timedelta(hours=3))], source_id=None,
                                   now=clock())
    clock.now = london_seven + timedelta(days=1)  # 26 November in London: theirs
    services.audience_jobs.send_due(clock.now)
    assert len(mails(tmp_path / "outbox")) == 2


def test_the_migration_makes_each_frequency_an_edition_and_keeps_the_consent(empty_database_url: str) -> None:
    import sqlalchemy as sa

    from feeds import db
    from feeds.core import database

    engine = database.make_engine(empty_database_url)
    db.upgrade_legacy(engine, "0010")
    at = NOW - timedelta(days=3)
    with engine.begin() as conn:
        for i, (frequency, confirmed, text) in enumerate([("daily", at, "동의합니다"), ("weekly", at, "agreed"),
                                                          ("daily", None, None)], start=1):
            conn.execute(sa.text("INSERT INTO subscribers (id, email, email_hash, status, categories, frequency, "
                                 "created_at, confirmed_at, consent_method, consent_text, bounces) VALUES (:id, :e, :h, "
                                 ":s, '[]', :f, :at, :c, 'form', :t, 0)"),
                         {"id": i, "e": f"r{i}@example.com", "h": f"h{i}", "s": "confirmed" if confirmed else "pending",
                          "f": frequency, "at": at, "c": confirmed, "t": text})
    migrate(engine)
    with engine.connect() as conn:
        editions = conn.execute(sa.text("SELECT subscriber_id, edition FROM subscriber_editions ORDER BY 1")).all()
        consents = conn.execute(sa.text("SELECT subscriber_id, kind, text FROM consents ORDER BY 1")).all()
        ids = conn.execute(sa.text("SELECT public_id FROM subscribers")).scalars().all()
    engine.dispose()
    assert [tuple(r) for r in editions] == [(1, "daily"), (2, "weekly"), (3, "daily")]
    assert [tuple(r) for r in consents] == [(1, "privacy", "동의합니다"), (2, "privacy", "agreed")]
    assert len(set(ids)) == 3 and all(len(i) >= 20 for i in ids)
