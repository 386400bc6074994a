"""The sending side's pure rules, table-driven: quiet hours, segments, where a digest starts, pacing, failures,
when a run is settled, a reader's links; and that the concrete stores fit the protocols the run declares."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from feeds.core.scheduling import Lease
from feeds.readership import Redirects
from feeds.store import ArticleStore
from newsletter import edition_run
from newsletter.deliveries import DeliveryStore
from newsletter.errors import DeliveryError
from newsletter.links import Links
from newsletter.outbox import RateGate, failure_outcome
from newsletter.records import Choices, Subscriber
from newsletter.segments import Outgoing, group_segments, segment_key, starts_after
from newsletter.send import is_quiet_hour, is_settled, next_morning
from newsletter.subscribers import SubscriberStore
from newsletter.tokens import Tokens

SEOUL, KOLKATA, KATHMANDU = ZoneInfo("Asia/Seoul"), ZoneInfo("Asia/Kolkata"), ZoneInfo("Asia/Kathmandu")
NEW_YORK, LORD_HOWE, CHATHAM = ZoneInfo("America/New_York"), ZoneInfo("Australia/Lord_Howe"), ZoneInfo("Pacific/Chatham")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def local(zone: ZoneInfo, *parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=zone, fold=fold)  # type: ignore[misc]


# --- quiet hours: 21:00 to 08:00 on the reader's wall clock -------------------------------------------------------

@pytest.mark.parametrize(("moment", "zone", "is_quiet"), [
    pytest.param(local(SEOUL, 2026, 5, 4, 20, 59), SEOUL, False, id="seoul-20:59-evening"),
    pytest.param(local(SEOUL, 2026, 5, 4, 21, 0), SEOUL, True, id="seoul-21:00-night-begins"),
    pytest.param(local(SEOUL, 2026, 5, 4, 23, 59), SEOUL, True, id="seoul-23:59"),
    pytest.param(local(SEOUL, 2026, 5, 5, 0, 0), SEOUL, True, id="seoul-midnight"),
    pytest.param(local(SEOUL, 2026, 5, 5, 7, 59), SEOUL, True, id="seoul-07:59"),
    pytest.param(local(SEOUL, 2026, 5, 5, 8, 0), SEOUL, False, id="seoul-08:00-morning"),
    pytest.param(utc(2026, 5, 4, 12, 0), SEOUL, True, id="utc-noon-is-seoul-21:00"),
    pytest.param(utc(2026, 5, 4, 15, 29), KOLKATA, False, id="kolkata-+05:30-20:59"),
    pytest.param(utc(2026, 5, 4, 15, 30), KOLKATA, True, id="kolkata-+05:30-21:00"),
    pytest.param(utc(2026, 5, 5, 2, 14), KATHMANDU, True, id="kathmandu-+05:45-07:59"),
    pytest.param(utc(2026, 5, 5, 2, 15), KATHMANDU, False, id="kathmandu-+05:45-08:00"),
    pytest.param(utc(2026, 1, 5, 7, 15), CHATHAM, True, id="chatham-+13:45-summer-21:00"),
    pytest.param(utc(2026, 7, 5, 7, 15), CHATHAM, False, id="chatham-+12:45-winter-20:00"),
    # New York springs forward on 2026-03-08 (02:00 -> 03:00) and falls back on 2026-11-01 (02:00 -> 01:00).
    pytest.param(utc(2026, 3, 8, 11, 59), NEW_YORK, True, id="new-york-spring-forward-07:59-edt"),
    pytest.param(utc(2026, 3, 8, 12, 0), NEW_YORK, False, id="new-york-spring-forward-08:00-edt"),
    pytest.param(utc(2026, 11, 1, 12, 59), NEW_YORK, True, id="new-york-fall-back-07:59-est"),
    pytest.param(utc(2026, 11, 1, 13, 0), NEW_YORK, False, id="new-york-fall-back-08:00-est"),
])
def test_is_quiet_hour(moment: datetime, zone: ZoneInfo, is_quiet: bool) -> None:
    assert is_quiet_hour(moment, zone) is is_quiet


@pytest.mark.parametrize(("moment", "zone", "expected"), [
    pytest.param(local(SEOUL, 2026, 5, 4, 21, 0), SEOUL, local(SEOUL, 2026, 5, 5, 8, 0), id="evening-to-tomorrow"),
    pytest.param(local(SEOUL, 2026, 5, 5, 3, 0), SEOUL, local(SEOUL, 2026, 5, 5, 8, 0), id="after-midnight-to-today"),
    pytest.param(local(SEOUL, 2026, 5, 5, 7, 59, 59), SEOUL, local(SEOUL, 2026, 5, 5, 8, 0), id="a-second-before"),
    pytest.param(local(SEOUL, 2026, 12, 31, 23, 30), SEOUL, local(SEOUL, 2027, 1, 1, 8, 0), id="across-the-year"),
    pytest.param(local(SEOUL, 2026, 5, 5, 12, 0), SEOUL, local(SEOUL, 2026, 5, 6, 8, 0), id="in-the-day-tomorrow"),
    pytest.param(utc(2026, 5, 4, 15, 30), KOLKATA, utc(2026, 5, 5, 2, 30), id="kolkata-+05:30"),
    pytest.param(utc(2026, 5, 4, 20, 0), KATHMANDU, utc(2026, 5, 5, 2, 15), id="kathmandu-+05:45-after-midnight"),
    pytest.param(local(NEW_YORK, 2026, 3, 7, 22, 0), NEW_YORK, utc(2026, 3, 8, 12, 0),
                 id="new-york-night-clocks-go-forward"),
    pytest.param(local(NEW_YORK, 2026, 10, 31, 23, 0), NEW_YORK, utc(2026, 11, 1, 13, 0),
                 id="new-york-night-clocks-go-back"),
    pytest.param(local(NEW_YORK, 2026, 11, 1, 1, 30, fold=1), NEW_YORK, utc(2026, 11, 1, 13, 0),
                 id="new-york-the-second-01:30"),
    pytest.param(local(LORD_HOWE, 2026, 4, 4, 22, 0), LORD_HOWE, utc(2026, 4, 4, 21, 30),
                 id="lord-howe-half-hour-shift"),
])
def test_next_morning(moment: datetime, zone: ZoneInfo, expected: datetime) -> None:
    morning = next_morning(moment, zone)
    assert morning == expected
    assert morning > moment and morning.astimezone(zone).hour == 8 and not is_quiet_hour(morning, zone)


# --- segments: who shares a digest --------------------------------------------------------------------------------

PERIOD_START = utc(2026, 5, 4, 22, 0)


def reader(id: int, *, categories: tuple[str, ...] = ("politics", "economy"), language: str | None = "ko",
           timezone: str | None = "Asia/Seoul", name: str | None = None,
           editions: tuple[str, ...] = ("daily",)) -> Subscriber:
    return Subscriber(id=id, email=f"r{id}@example.com", name=name, status="confirmed", categories=categories,
                      editions=editions, timezone=timezone, language=language, confirmed_at=None,
                      public_id=f"p{id}")


@pytest.mark.parametrize(("other", "high_waters", "is_shared"), [
    pytest.param(reader(2, name="다른 이름", editions=("daily", "weekly")), {}, True,
                 id="name-address-editions-do-not-split"),
    pytest.param(reader(2, timezone=None), {}, True, id="no-zone-is-the-site-zone"),
    pytest.param(reader(2), {1: PERIOD_START - timedelta(days=3), 2: PERIOD_START - timedelta(hours=1)}, True,
                 id="high-waters-before-the-period-both-start-with-it"),
    pytest.param(reader(2), {1: PERIOD_START + timedelta(hours=1), 2: PERIOD_START + timedelta(hours=1)}, True,
                 id="same-high-water"),
    pytest.param(reader(2, categories=("politics",)), {}, False, id="other-categories-split"),
    pytest.param(reader(2, categories=("economy", "politics")), {}, False, id="category-order-splits"),
    pytest.param(reader(2, language="en"), {}, False, id="other-language-splits"),
    pytest.param(reader(2, language=None), {}, False, id="no-language-chosen-is-its-own-key"),
    pytest.param(reader(2, timezone="Asia/Tokyo"), {}, False, id="same-offset-other-zone-splits"),
    pytest.param(reader(2), {2: PERIOD_START + timedelta(hours=1)}, False, id="a-later-high-water-splits"),
])
def test_what_makes_two_readers_share_a_segment(other: Subscriber, high_waters: dict[int, datetime],
                                                is_shared: bool) -> None:
    first = reader(1)
    segments = group_segments([first, other], site_zone=SEOUL, site_language="ko", period_start=PERIOD_START,
                              high_waters=high_waters)
    assert [[r.id for r in s.readers] for s in segments] == ([[1, 2]] if is_shared else [[1], [2]])


def test_a_segment_keeps_what_its_digest_is_made_of() -> None:
    readers = [reader(1, language=None, timezone=None), reader(2, language="en", timezone="Asia/Kolkata"),
               reader(3, language=None, timezone="Asia/Seoul")]
    after = PERIOD_START + timedelta(hours=2)
    first, second = group_segments(readers, site_zone=SEOUL, site_language="ko", period_start=PERIOD_START,
                                   high_waters={2: after})
    assert ([r.id for r in first.readers], first.language, first.zone, first.after) == ([1, 3], "ko", SEOUL,
                                                                                         PERIOD_START)
    assert ([r.id for r in second.readers], second.language, second.zone, second.after) == ([2], "en", KOLKATA, after)
    assert first.categories == ("politics", "economy")
    assert first.key == segment_key(readers[0], "Asia/Seoul", PERIOD_START)  # stored: a resumed run finds the row
    assert len(first.key) == 32 and first.key != second.key


@pytest.mark.parametrize(("high_water", "expected"), [
    pytest.param(None, PERIOD_START, id="never-sent-the-period"),
    pytest.param(PERIOD_START - timedelta(days=30), PERIOD_START, id="long-ago-the-period-not-older"),
    pytest.param(PERIOD_START, PERIOD_START, id="at-the-start"),
    pytest.param(PERIOD_START + timedelta(hours=3), PERIOD_START + timedelta(hours=3), id="within-after-it"),
])
def test_where_a_digest_starts(high_water: datetime | None, expected: datetime) -> None:
    assert starts_after(high_water, PERIOD_START) == expected


# --- pacing: the rate gate ---------------------------------------------------------------------------------------

@dataclass
class FakeTime:
    now: float = 1000.0
    slept: float = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


@pytest.mark.parametrize(("messages", "rate"), [
    pytest.param(1, 10.0, id="one-message-no-wait"),
    pytest.param(2, 10.0, id="two-at-10-per-second"),
    pytest.param(5, 10.0, id="five-at-10-per-second"),
    pytest.param(100, 50.0, id="hundred-at-50-per-second"),
    pytest.param(7, 0.5, id="slower-than-one-per-second"),
])
def test_n_messages_at_rate_r_take_n_minus_one_over_r(messages: int, rate: float) -> None:
    clock = FakeTime()
    gate = RateGate(rate, monotonic=clock.monotonic, sleep=clock.sleep)
    start = clock.now
    for _ in range(messages):
        gate.wait()
    assert clock.now - start == pytest.approx((messages - 1) / rate)


def test_an_idle_gate_saves_no_burst() -> None:
    clock = FakeTime()
    gate = RateGate(10.0, monotonic=clock.monotonic, sleep=clock.sleep)
    gate.wait()
    clock.now += 5.0  # nothing to send for a while
    gate.wait()
    gate.wait()
    gate.wait()
    assert clock.slept == pytest.approx(0.2)  # the first after the pause goes at once, the next two 0.1 s apart


# --- a failed hand-over -------------------------------------------------------------------------------------------

NOW = utc(2026, 5, 5, 7, 0)


def message(attempts: int) -> Outgoing:
    return Outgoing(7, "r7@example.com", None, None, attempts, "bounce@example.com")  # type: ignore[arg-type]


@pytest.mark.parametrize(("attempts", "is_permanent", "status", "retry_at", "is_hard_bounce"), [
    pytest.param(0, True, "failed", None, True, id="permanent-fails-at-once-hard-bounce"),
    pytest.param(2, True, "failed", None, True, id="permanent-on-a-retry"),
    pytest.param(0, False, "retry", NOW + timedelta(minutes=1), False, id="first-transient-waits-the-delay"),
    pytest.param(1, False, "retry", NOW + timedelta(minutes=2), False, id="second-waits-twice-as-long"),
    pytest.param(2, False, "retry", NOW + timedelta(minutes=4), False, id="third-four-times"),
    pytest.param(3, False, "failed", None, False, id="retries-spent-gives-up"),
])
def test_failure_outcome(attempts: int, is_permanent: bool, status: str, retry_at: datetime | None,
                         is_hard_bounce: bool) -> None:
    outcome = failure_outcome(message(attempts), DeliveryError("450 try later", is_permanent=is_permanent), now=NOW,
                              retries=3, retry_delay=timedelta(minutes=1))
    assert (outcome.status, outcome.at, outcome.is_hard_bounce, outcome.attempts) == (status, retry_at,
                                                                                       is_hard_bounce, attempts + 1)
    if status == "failed" and not is_permanent:
        assert outcome.error is not None and outcome.error.startswith("gave up after 4 attempts")


def test_no_retries_makes_a_transient_failure_final() -> None:
    outcome = failure_outcome(message(0), DeliveryError("421 busy", is_permanent=False), now=NOW, retries=0,
                              retry_delay=timedelta(minutes=1))
    assert outcome.status == "failed" and not outcome.is_hard_bounce


@pytest.mark.parametrize(("counts", "settled"), [
    pytest.param({}, True, id="no-rows"),
    pytest.param({"sent": 3, "skipped": 1, "failed": 2}, True, id="all-final"),
    pytest.param({"sent": 3, "queued": 1}, False, id="queued-interrupted"),
    pytest.param({"sent": 3, "retry": 1}, False, id="a-retry-waits"),
    pytest.param({"held": 1}, False, id="held-for-the-morning"),
])
def test_when_a_run_is_settled(counts: dict[str, int], settled: bool) -> None:
    assert is_settled(counts) is settled


# --- a reader's links -------------------------------------------------------------------------------------------

def test_a_readers_links_name_them_by_public_id_only() -> None:
    tokens = Tokens("k" * 32, clock=lambda: NOW)
    links = Links("https://news.example.com", tokens)
    made = links.for_reader("pub-1")
    for purpose, url in [("preferences", made.preferences), ("unsubscribe", made.unsubscribe),
                         ("consent", links.page("consent", "pub-1"))]:
        prefix = f"https://news.example.com/{purpose}/"
        assert url.startswith(prefix)
        assert tokens.subscriber_of(purpose, url.removeprefix(prefix)).public_id == "pub-1"
    web_copy = links.web_copy(12, 34)
    assert web_copy.startswith("https://news.example.com/archive/12/")
    assert tokens.web_copy_of(web_copy.rsplit("/", 1)[1]) == (12, 34)  # the segment, nobody's id
    confirm = links.confirmation("pub-1", "nonce", Choices(categories=("politics",), editions=("daily",),
                                                           timezone="Asia/Kolkata", ads=True), "en", agreed=False)
    assert tokens.read("confirm", confirm.removeprefix("https://news.example.com/confirm/")) == {
        "p": "pub-1", "k": "nonce", "c": ["politics"], "d": ["daily"], "l": "en", "z": "Asia/Kolkata", "a": True,
        "v": False}


# --- the stores fit the protocols the run declares ---------------------------------------------------------------

@pytest.mark.parametrize(("protocol", "concrete"), [
    pytest.param(edition_run.Ledger, DeliveryStore, id="ledger"),
    pytest.param(edition_run.Readers, SubscriberStore, id="readers"),
    pytest.param(edition_run.ArticlePicker, ArticleStore, id="articles"),
    pytest.param(edition_run.ArticleLinks, Redirects, id="article-links"),
    pytest.param(edition_run.RunLease, Lease, id="lease"),
])
def test_the_stores_fit_the_run_protocols(protocol: type, concrete: type) -> None:
    """Every method the protocol declares exists, takes the protocol's parameters the same way, and needs nothing
    more (a static checker would say the same; the project runs none)."""
    methods = [name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_")]
    assert methods
    for name in methods:
        wanted = inspect.signature(getattr(protocol, name)).parameters
        given = inspect.signature(getattr(concrete, name)).parameters
        for parameter in wanted.values():
            assert parameter.name in given, f"{concrete.__name__}.{name} lacks {parameter.name}"
            assert given[parameter.name].kind == parameter.kind, f"{concrete.__name__}.{name}({parameter.name})"
        extra = [p.name for p in given.values() if p.name not in wanted and p.default is inspect.Parameter.empty]
        assert not extra, f"{concrete.__name__}.{name} needs {extra}"
