"""Attacks on the state shared in Redis (`feeds.core.shared`): hostile keys (huge, CR/LF, NUL, glob characters in
addresses, e-mail addresses and partner keys) never reach Redis as sent and cannot reach another key's count; a
flood of keys costs memory only until their TTLs; nothing secret lands in a log."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Iterator

import pytest

from feeds.core import database
from feeds.core.clock import utc_now
from feeds.core.shared import SharedLimits, SharedState, SharedVisits, TokenBucket
from feeds.readership import ViewCounter, ViewRules
from feeds.store import ArticleStore
from tests.conftest import free_port, migrated_sqlite_url, wait_until
from tests.test_shared_state import forget, fresh_state, keys_of, redis_or_skip
from tests.test_views import BROWSER

HOSTILE = [
    "*", "?", "[a-z]", "10.0.0.*", "10.0.0.[0-9]", "203.0.113.?", "\\*", "user*@example.com", "*@example.com",
    "a\r\nFLUSHALL\r\n", "k\x00ey", "key with spaces", "키-한국어", "x" * 100_000, "", " ",
    "gazette:limit:share-ip:*", "{hash-tag}",
]
KEY = re.compile(r"gazette-test-[0-9a-f]{8}:[0-9a-f]{12}:[a-z:-]+:[0-9a-f]{32}")


@pytest.fixture
def shared() -> Iterator[SharedState]:
    state = fresh_state(redis_or_skip())
    yield state
    forget(state)


def test_hostile_keys_never_reach_redis_as_sent(shared) -> None:  # type: ignore[no-untyped-def]
    limits = SharedLimits(shared, utc_now)
    window = limits.limiter("share-recipient", 3, timedelta(minutes=1))
    steady = limits.limiter("partner-feeds", 3, timedelta(minutes=1), refill="steady")
    visits = SharedVisits(shared)
    for hostile in HOSTILE:
        assert window.hit(hostile) == 0
        assert steady.hit(hostile, 5) == 0
        assert visits.visit("views", (hostile.encode(), hostile), timedelta(minutes=1), (hostile,), cap=5) == "counted"
    TokenBucket(shared, "smtp://user:relay-password@relay.example.com:25", 0.01).wait()  # its key lives 100 s
    keys = keys_of(shared)
    assert len(keys) == 4 * len(HOSTILE) + 1  # each its own keys (and the bucket's), none merged
    for key in keys:  # only the namespace, the site, the kind and a hash: nothing of what was sent
        assert KEY.fullmatch(key), repr(key)
        assert not any(fragment in key for fragment in ("example", "FLUSHALL", "relay", "password", "10.0.0", "user"))


@pytest.mark.parametrize("wild, tame", [
    pytest.param("*", "198.51.100.1", id="star"),
    pytest.param("198.51.100.*", "198.51.100.1", id="star-in-an-address"),
    pytest.param("198.51.100.?", "198.51.100.1", id="question-mark"),
    pytest.param("198.51.100.[0-9]", "198.51.100.1", id="bracket"),
    pytest.param("*@example.com", "reader@example.com", id="star-in-an-address-of-mail"),
])
def test_a_glob_in_a_key_limits_only_itself(shared, wild, tame) -> None:  # type: ignore[no-untyped-def]
    limiter = SharedLimits(shared, utc_now).limiter("share-ip", 1, timedelta(minutes=1))
    assert limiter.hit(wild) == 0
    assert limiter.hit(wild) == 60  # the glob's own count is used up...
    assert limiter.hit(tame) == 0  # ...and no other key's
    assert limiter.hit(tame) == 60
    assert limiter.hit(wild + "x") == 0


def test_hostile_visitors_count_only_for_themselves(shared, tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = database.make_engine(migrated_sqlite_url(tmp_path))
    counter = ViewCounter(ArticleStore(engine), ViewRules(per_ip_cap=1), utc_now, lambda article_id: True,
                          shared=SharedVisits(shared))
    assert counter.record("a1", "*", "*") == "counted"
    assert counter.record("a1", "*", "*") == "repeat"
    assert counter.record("a1", "*", BROWSER) == "capped"  # the cap of the address "*"...
    assert counter.record("a1", "203.0.113.1", BROWSER) == "counted"  # ...is not anyone else's
    assert counter.record("a1", "203.0.113.1", "*") == "capped"
    assert counter.record("*", "203.0.113.1", BROWSER) == "counted"  # an article id "*" is only that id
    assert counter.record("a1\r\n*", "203.0.113.2", BROWSER) == "counted"
    assert counter.is_click("*", "*", BROWSER) is True
    assert counter.is_click("a1/email//daily-1", "*", BROWSER) is True
    engine.dispose()


def test_memory_is_bounded_by_ttls(shared) -> None:  # type: ignore[no-untyped-def]
    """A flood of made-up keys: every key has a TTL no longer than its window, and all are gone after it."""
    window = timedelta(milliseconds=400)
    limits = SharedLimits(shared, utc_now)
    by_window = limits.limiter("share-ip", 2, window)
    steady = limits.limiter("partner-feeds", 2, window, refill="steady")
    visits = SharedVisits(shared)
    bucket = TokenBucket(shared, "relay", 10_000, burst=10)
    for i in range(300):
        by_window.hit(f"10.{i}.0.1")
        steady.hit(f"key-{i}")
        visits.visit("views", (f"visitor-{i}", "a1"), window, (f"ip-{i}", "a1"), cap=3, until=window)
        visits.visit("clicks", (f"visitor-{i}", "link"), window)
        bucket.wait()
    keys = keys_of(shared)
    assert 0 < len(keys) <= 5 * 300 + 1  # the first may be gone already
    ttls = [ttl for ttl in (shared.client.pttl(key) for key in keys) if ttl != -2]  # -2: gone meanwhile
    assert all(0 <= ttl <= 400 for ttl in ttls), sorted(ttls)[:3] + sorted(ttls)[-3:]  # -1 would be no TTL
    wait_until(lambda: not keys_of(shared), 5, message="keys outlived their TTLs")


def test_redis_credentials_stay_out_of_the_log(caplog) -> None:  # type: ignore[no-untyped-def]
    state = SharedState(f"redis://gazette:redis-password@127.0.0.1:{free_port()}/0", secret="s", timeout=0.2)
    with caplog.at_level(logging.WARNING, logger="feeds.core.shared"):
        assert SharedLimits(state, utc_now).limiter("share-ip", 1, timedelta(minutes=1)).hit("k") == 0
    assert "is away" in caplog.text and "127.0.0.1" in caplog.text
    assert "redis-password" not in caplog.text and "gazette:" not in caplog.text
    state.close()
