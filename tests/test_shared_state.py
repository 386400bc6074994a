"""State shared in Redis (`[queue] redis_url`, `feeds.core.shared`): the rate limiters against their in-process
twins, two view counters (two processes) counting a visitor once, the mail rate's token bucket across three real
processes, what happens while Redis is away, and two real `gazette serve` processes counting one view.

Redis is $GAZETTE_TEST_REDIS_URL, else 127.0.0.1:6379; where none answers, these tests skip and say so. Each test
has a namespace of its own (and a random signing key: a site of its own), its keys deleted afterwards, so tests
running at once never meet.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from typing import Callable, Iterator

import httpx
import pytest

from feeds.core.clock import utc_now
from feeds.core.limits import RateLimiter
from feeds.core.shared import SharedLimits, SharedRateLimiter, SharedState, SharedVisits, TokenBucket
from feeds.core import database
from feeds.readership import ViewCounter, ViewRules
from feeds.store import ArticleStore
from newsletter.settings import load_settings
from tests.conftest import (
    NOW,
    ROOT,
    Clock,
    free_port,
    gazette_command,
    migrated_sqlite_url,
    wait_healthy,
    wait_until,
    write_config,
)
from tests.test_store import make_article
from tests.test_views import BROWSER, OTHER_BROWSER, total_views

REDIS_URL = os.environ.get("GAZETTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_or_skip() -> str:
    """The test Redis's URL, or a skip saying that none answers."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2).ping()
    except (redis.RedisError, OSError) as exc:
        pytest.skip(f"no Redis answers at {REDIS_URL} ({exc}): the shared state is not tested here")
    return REDIS_URL


def fresh_state(url: str) -> SharedState:
    """A SharedState of its own (namespace and site) on the test Redis."""
    return SharedState(url, secret=uuid.uuid4().hex, namespace=f"gazette-test-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return redis_or_skip()


def forget(state: SharedState) -> None:
    keys = list(state.client.scan_iter(match=f"{state.prefix}:*", count=1000))
    if keys:
        state.client.delete(*keys)
    state.close()


@pytest.fixture
def shared(redis_url: str) -> Iterator[SharedState]:
    """A SharedState of its own on the test Redis; its keys are deleted afterwards."""
    state = fresh_state(redis_url)
    yield state
    forget(state)


def keys_of(state: SharedState) -> list[str]:
    return sorted(k.decode() for k in state.client.scan_iter(match=f"{state.prefix}:*", count=1000))


# --- the rate limiters: the same answers as in this process, for every process ---------------------------------

# (seconds to move the clock, key, limit given to hit() or None) -> the answers of both twins
LIMITER_CASES = [
    pytest.param(2, timedelta(minutes=10), "window",
                 [(0, "a", None), (0, "a", None), (300, "a", None), (0, "b", None), (300, "a", None),
                  (0, "a", None), (0, "a", None)], id="window-never-more-than-limit-in-any-window"),
    pytest.param(1, timedelta(seconds=10), "window",
                 [(0, "k", 0), (0, "k", 0), (0, "k", None), (9.5, "k", None), (0.5, "k", None)],
                 id="window-zero-is-no-limit-and-waits-round-up"),
    pytest.param(3, timedelta(seconds=60), "window",
                 [(0, "x", None), (10, "x", None), (10, "x", None), (10, "x", None), (30, "x", None),
                  (0.000001, "x", None), (10, "x", None)], id="window-slides"),
    pytest.param(1, timedelta(seconds=8), "steady",
                 [(0, "p", 4)] * 5 + [(1, "p", 4), (1, "p", 4), (0, "q", None), (0, "q", None)],
                 id="steady-burst-then-average-and-own-limits"),
    pytest.param(60, timedelta(minutes=1), "steady",
                 [(0, "partner", 2), (0, "partner", 2), (0, "partner", 2), (0.25, "partner", 2), (30, "partner", 2),
                  (0, "partner", 2), (0, "partner", 2)], id="steady-partner-per-minute"),
    pytest.param(5, timedelta(hours=1), "steady", [(0, "ip", 0)] * 3 + [(3600, "ip", None)],
                 id="steady-zero-is-no-limit"),
]


@pytest.mark.parametrize("limit, per, refill, steps", LIMITER_CASES)
def test_shared_limiter_answers_as_the_in_process_one(  # type: ignore[no-untyped-def]
        shared, limit, per, refill, steps) -> None:
    clock = Clock()
    local = RateLimiter(limit, per, clock, refill=refill)
    twin = SharedRateLimiter(shared, "twin", limit, per, refill=refill, clock=clock,
                             fallback=RateLimiter(limit, per, clock, refill=refill))
    for seconds, key, given in steps:
        clock.now += timedelta(seconds=seconds)
        assert twin.hit(key, given) == local.hit(key, given), (clock.now - Clock().now, key, given)
    assert keys_of(shared), "the shared limiter kept nothing in Redis"


def test_two_processes_share_one_limit(shared) -> None:  # type: ignore[no-untyped-def]
    """Two processes' limiters of one name are one limit (on Redis's clock, as in production); another name is
    another limit."""
    first = SharedLimits(shared, utc_now).limiter("share-ip", 3, timedelta(minutes=1))
    second = SharedLimits(shared, utc_now).limiter("share-ip", 3, timedelta(minutes=1))
    other = SharedLimits(shared, utc_now).limiter("subscribe-forms", 3, timedelta(minutes=1))
    assert [first.hit("198.51.100.7"), second.hit("198.51.100.7"), first.hit("198.51.100.7")] == [0, 0, 0]
    assert second.hit("198.51.100.7") == 60
    assert first.hit("198.51.100.7") == 60
    assert other.hit("198.51.100.7") == 0


# --- views and clicks: two processes, one count ------------------------------------------------------------------

@pytest.fixture
def two_counters(shared, tmp_path):  # type: ignore[no-untyped-def]
    """Two ViewCounters on one store and one Redis, as two `serve` processes have them."""
    engine = database.make_engine(migrated_sqlite_url(tmp_path))
    store = ArticleStore(engine)
    article = make_article(1)
    store.upsert_articles([article], source_id=None, now=NOW)

    def counter(rules: ViewRules) -> ViewCounter:
        return ViewCounter(store, rules, utc_now, {article.id}.__contains__, shared=SharedVisits(shared))
    yield counter, article.id, engine
    engine.dispose()


def test_two_processes_count_a_visitor_once(two_counters) -> None:  # type: ignore[no-untyped-def]
    counter, article, engine = two_counters
    first, second = counter(ViewRules()), counter(ViewRules())
    assert first.record(article, "203.0.113.5", BROWSER) == "counted"
    assert second.record(article, "203.0.113.5", BROWSER) == "repeat"
    assert first.record(article, "203.0.113.5", BROWSER) == "repeat"
    assert second.record(article, "203.0.113.5", OTHER_BROWSER) == "counted"  # another visitor on that address
    assert first.flush() + second.flush() == 2
    assert total_views(engine) == 2


def test_the_per_ip_cap_holds_across_processes(two_counters) -> None:  # type: ignore[no-untyped-def]
    counter, article, engine = two_counters
    counters = [counter(ViewRules(per_ip_cap=3)), counter(ViewRules(per_ip_cap=3))]
    outcomes = [counters[i % 2].record(article, "203.0.113.9", f"{BROWSER} agent-{i}") for i in range(6)]
    assert outcomes == ["counted"] * 3 + ["capped"] * 3
    assert counters[0].flush() + counters[1].flush() == 3
    assert total_views(engine) == 3


def test_the_dedupe_window_is_shared_and_ends(two_counters) -> None:  # type: ignore[no-untyped-def]
    counter, article, _ = two_counters
    rules = ViewRules(dedupe=timedelta(milliseconds=300))
    first, second = counter(rules), counter(rules)
    assert first.record(article, "203.0.113.6", BROWSER) == "counted"
    assert second.record(article, "203.0.113.6", BROWSER) == "repeat"
    wait_until(lambda: second.record(article, "203.0.113.6", BROWSER) == "counted", 5,
               message="the visit was still marked after its window")


def test_clicks_count_once_across_processes(two_counters) -> None:  # type: ignore[no-untyped-def]
    counter, _, _ = two_counters
    first, second = counter(ViewRules()), counter(ViewRules())
    assert first.is_click("article/email//daily-1", "203.0.113.8", BROWSER) is True
    assert second.is_click("article/email//daily-1", "203.0.113.8", BROWSER) is False
    assert second.is_click("article/email//daily-2", "203.0.113.8", BROWSER) is True


def test_a_salt_lost_with_redis_is_replaced_in_every_process(shared, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Redis restarted empty: a new salt is made by whoever asks first, and every process takes it within a
    minute, so two processes never go on hashing one visitor two ways."""
    clock = Clock(utc_now())
    engine = database.make_engine(migrated_sqlite_url(tmp_path))

    def process() -> ViewCounter:
        return ViewCounter(ArticleStore(engine), ViewRules(), clock, {"a1", "a2"}.__contains__,
                           shared=SharedVisits(shared))
    running = process()
    assert running.record("a1", "203.0.113.4", BROWSER) == "counted"
    shared.client.delete(*keys_of(shared))  # Redis restarted empty
    started = process()
    assert started.record("a2", "203.0.113.4", BROWSER) == "counted"  # it made the new salt
    clock.now += timedelta(seconds=61)
    assert running.record("a2", "203.0.113.4", BROWSER) == "repeat"  # the running process took it
    engine.dispose()


def test_every_process_hashes_with_one_salt_a_day(shared) -> None:  # type: ignore[no-untyped-def]
    visits = SharedVisits(shared)
    today = utc_now()
    salts = {visits.salt(today.date(), today) for _ in range(3)} | {SharedVisits(shared).salt(today.date(), today)}
    assert len(salts) == 1 and len(next(iter(salts))) == 32  # type: ignore[arg-type]
    assert visits.salt((today + timedelta(days=1)).date(), today) not in salts
    ttl = shared.client.pttl(shared.key("views:salt", today.date().isoformat()))
    assert 0 < ttl <= timedelta(hours=25) // timedelta(milliseconds=1)  # gone an hour after its day


# --- the mail rate: one token bucket, three processes -------------------------------------------------------------

TAKER = """
import json, sys, time
from feeds.core.shared import SharedState, TokenBucket
url, secret, namespace, rate, burst, seconds = sys.argv[1:7]
bucket = TokenBucket(SharedState(url, secret=secret, namespace=namespace), "smtp://relay.example.com:25",
                     float(rate), burst=int(burst))
print("ready", flush=True)
sys.stdin.readline()
turns, end = [], time.time() + float(seconds)
while True:
    bucket.wait()
    now = time.time()
    if now >= end:
        break
    turns.append(now)
print(json.dumps(turns), flush=True)
"""


@pytest.mark.alone
@pytest.mark.parametrize("burst", [1, 5])
def test_the_token_bucket_holds_the_rate_across_three_processes(  # type: ignore[no-untyped-def]
        redis_url, burst) -> None:
    rate, seconds, secret, namespace = 100.0, 4.0, uuid.uuid4().hex, f"gazette-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    takers = [subprocess.Popen([sys.executable, "-c", TAKER, redis_url, secret, namespace, str(rate), str(burst),
                                str(seconds)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
              for _ in range(3)]
    try:
        for taker in takers:
            assert taker.stdout.readline().strip() == "ready"  # type: ignore[union-attr]
        for taker in takers:
            taker.stdin.write("go\n")  # type: ignore[union-attr]
            taker.stdin.flush()  # type: ignore[union-attr]
        turns = sorted(t for taker in takers for t in json.loads(taker.communicate(timeout=60)[0]))
    finally:
        for taker in takers:
            if taker.poll() is None:
                taker.kill()
                taker.wait()
        forget(SharedState(redis_url, secret=secret, namespace=namespace))
    measured = (len(turns) - 1) / (turns[-1] - turns[0])
    busiest = max(sum(1 for t in turns[i:] if t < start + 1.0) for i, start in enumerate(turns))
    print(f"3 processes, rate {rate}/s, burst {burst}: {len(turns)} turns in {turns[-1] - turns[0]:.2f} s = "
          f"{measured:.1f}/s; busiest second {busiest}")
    assert measured <= rate * 1.05, f"{measured:.1f} turns a second over a limit of {rate}"
    assert busiest <= rate * 1.05 + burst
    assert measured >= rate * 0.8, f"only {measured:.1f} turns a second: the bucket starves its takers"


# --- Redis away --------------------------------------------------------------------------------------------------

@pytest.fixture
def away() -> Iterator[SharedState]:
    """A SharedState pointing at a closed port: Redis is away."""
    state = SharedState(f"redis://127.0.0.1:{free_port()}/0", secret="s", timeout=0.2, pause=0.0)  # asked each time
    yield state
    state.close()


def test_limits_fall_back_to_the_process_while_redis_is_away(away, caplog) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    shared = SharedLimits(away, clock).limiter("share-ip", 2, timedelta(minutes=10))
    local = RateLimiter(2, timedelta(minutes=10), clock)
    with caplog.at_level(logging.WARNING, logger="feeds.core.shared"):
        for _ in range(5):
            assert shared.hit("198.51.100.1") == local.hit("198.51.100.1")  # each hit asks Redis, and fails
    warnings = [r for r in caplog.records if "is away" in r.getMessage()]
    assert len(warnings) == 1, "one warning a minute, however many failures"
    assert "rate limits count in each process's memory" in warnings[0].getMessage()


def test_views_fall_back_to_the_process_while_redis_is_away(away, tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = database.make_engine(migrated_sqlite_url(tmp_path))
    store = ArticleStore(engine)
    counter = ViewCounter(store, ViewRules(per_ip_cap=2), utc_now, {"a1"}.__contains__, shared=SharedVisits(away))
    assert [counter.record("a1", "203.0.113.1", f"{BROWSER} {i % 3}") for i in range(4)] == \
           ["counted", "counted", "capped", "repeat"]
    assert counter.is_click("link", "203.0.113.1", BROWSER) is True
    assert counter.is_click("link", "203.0.113.1", BROWSER) is False
    engine.dispose()


def test_the_token_bucket_waits_while_redis_is_away(away) -> None:  # type: ignore[no-untyped-def]
    naps: list[float] = []

    class GaveUp(Exception):
        pass

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 5:
            raise GaveUp

    bucket = TokenBucket(away, "relay", 10, retry=0.5, sleep=sleep)
    with pytest.raises(GaveUp):
        bucket.wait()  # never returns (never sends) while Redis is away: it waits and asks again
    assert naps == [0.5] * 5


def test_a_refused_command_falls_back_without_leaving_redis(shared, caplog) -> None:  # type: ignore[no-untyped-def]
    """A command Redis refuses (here a key of another type; in production a full memory) is answered by this
    process for that hit, logged, and the next hit asks Redis again: Redis is not taken for away."""
    limiter = SharedLimits(shared, utc_now).limiter("share-ip", 1, timedelta(minutes=1))
    shared.client.set(shared.key("limit:share-ip", "window", "broken"), "not a sorted set", px=60_000)
    with caplog.at_level(logging.WARNING, logger="feeds.core.shared"):
        assert [limiter.hit("broken"), limiter.hit("broken")] == [0, 60]  # the process's own limiter
        assert [limiter.hit("sound"), limiter.hit("sound")] == [0, 60]
    assert shared.client.exists(shared.key("limit:share-ip", "window", "sound")) == 1
    assert "refused a command" in caplog.text and "is away" not in caplog.text


@pytest.fixture
def private_redis(tmp_path) -> Iterator[tuple[str, Callable[[bool], None]]]:
    """A redis-server of this test's own, which the test may stop and start again on the same port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server binary to stop and start: Redis going away and coming back is not tested here")
    port = free_port()
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        processes.append(subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                           "--appendonly", "no", "--dir", str(tmp_path)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        import redis
        client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False
        wait_until(answers, 10, message="redis-server did not start")
        client.close()

    def stop() -> None:
        processes[-1].terminate()
        processes[-1].wait(10)

    start()
    yield f"redis://127.0.0.1:{port}/0", lambda up: start() if up else stop()
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_redis_going_away_and_coming_back(private_redis, caplog) -> None:  # type: ignore[no-untyped-def]
    url, switch = private_redis
    state = SharedState(url, secret="s", timeout=0.2, pause=0.1)
    bucket = TokenBucket(state, "relay", 1000, retry=0.05)
    limiter = SharedLimits(state, utc_now).limiter("share-ip", 1, timedelta(minutes=1))
    bucket.wait()
    assert [limiter.hit("k"), limiter.hit("k")] == [0, 60]
    switch(False)
    with caplog.at_level(logging.WARNING, logger="feeds.core.shared"):
        assert limiter.hit("k") == 0  # this process's own limiter answers meanwhile
        assert limiter.hit("k") == 60
        waited = threading.Thread(target=bucket.wait)
        waited.start()
        waited.join(0.5)
        assert waited.is_alive(), "the mail rate went on without Redis"
        switch(True)
        waited.join(10)
        assert not waited.is_alive(), "the mail rate did not go on once Redis was back"
        fresh = (f"again-{n}" for n in itertools.count())

        def shared_again() -> bool:  # two hits of a new key: limited by the second only if Redis counted both
            key = next(fresh)
            stored = state.key("limit:share-ip", "window", key)
            return limiter.hit(key) == 0 and limiter.hit(key) == 60 and state.client.exists(stored) == 1
        wait_until(shared_again, 5, message="the limits did not go back to Redis")
    messages = [r.getMessage() for r in caplog.records]
    assert any("is away" in m for m in messages) and any("answers again" in m for m in messages)
    state.close()


# --- two real `gazette serve` processes, one Redis ---------------------------------------------------------------

@pytest.mark.slow
def test_two_serve_processes_count_one_view(redis_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    database_url = migrated_sqlite_url(tmp_path)
    config = write_config(tmp_path / "gazette.toml", database_url=database_url,
                          extra=f'\n[queue]\nredis_url = "{redis_url}"\n')
    secret = uuid.uuid4().hex  # a site of its own on the test Redis
    engine = database.make_engine(database_url)
    store = ArticleStore(engine)
    settings = load_settings(config, {})
    store.sync_config(settings.categories, (), (), NOW)
    article = make_article(1)
    store.upsert_articles([article], source_id=None, now=NOW)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GAZETTE_SECRETS_SIGNING_KEY": secret}
    ports = [free_port(), free_port()]
    servers = []
    for i, port in enumerate(ports):
        with open(tmp_path / f"serve-{i}.log", "wb") as log:
            servers.append(subprocess.Popen(gazette_command() + ["--config", str(config), "serve", "--port", str(port)],
                                            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True))
    try:
        for port, server in zip(ports, servers):
            wait_healthy(port, server)
        visitor = {"User-Agent": BROWSER, "X-Forwarded-For": "198.51.100.23"}  # loopback is a trusted proxy
        with httpx.Client() as client:
            for port in ports:
                assert client.post(f"http://127.0.0.1:{port}/v/{article.id}", headers=visitor).status_code == 204
            other = {"User-Agent": OTHER_BROWSER, "X-Forwarded-For": "198.51.100.24"}
            assert client.get(f"http://127.0.0.1:{ports[1]}/v/{article.id}.gif", headers=other).status_code == 200
        for server in servers:
            server.send_signal(signal.SIGTERM)  # a graceful stop writes what each process buffered
        for server in servers:
            server.wait(timeout=30)
    finally:
        for server in servers:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        forget(SharedState(redis_url, secret=secret))
    logs = "".join((tmp_path / f"serve-{i}.log").read_text(errors="replace") for i in range(2))
    assert "is away" not in logs, logs
    assert total_views(engine) == 2, "one visitor seen by two processes counts once (plus the other visitor)"
    engine.dispose()


# --- without redis_url, nothing changes ---------------------------------------------------------------------------

WIRING = """
import sys, tempfile
from pathlib import Path
from tests.conftest import write_config
from newsletter.settings import load_settings
from newsletter.components import Components
import service
folder = Path(tempfile.mkdtemp())
extra = sys.argv[1]
components = Components(load_settings(write_config(folder / "g.toml", database_url=f"sqlite:///{folder}/g.db",
                                                   extra=extra), {}))
service.create_app(components)
print(type(components.limits).__name__, components.view_counter._shared is not None, "redis" in sys.modules)
"""


@pytest.mark.parametrize("extra, expected", [
    pytest.param("", "Limits False False", id="without-redis-url-redis-is-not-even-imported"),
    pytest.param('\n[queue]\nredis_url = "redis://127.0.0.1:1/0"\n', "SharedLimits True True", id="with-redis-url"),
])
def test_the_wiring_follows_redis_url(extra, expected) -> None:  # type: ignore[no-untyped-def]
    """The app of a process (built in a fresh interpreter: other tests have imported redis in this one)."""
    done = subprocess.run([sys.executable, "-c", WIRING, extra], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == expected


def test_two_apps_share_the_partner_and_form_limits(redis_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two apps (two processes' worth, in this one) on one database and one Redis: a partner's `rate_limit` and the
    subscribe form's limit per address are each one limit for both."""
    import service
    from tests.conftest import InProcessClient, filled
    from tests.test_partners import CONFIG, TINY_KEY

    secret = uuid.uuid4().hex
    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path),
                          mail_url=f"maildir://{tmp_path}/outbox",
                          extra=CONFIG + f'\n[queue]\nredis_url = "{redis_url}"\n')
    settings = load_settings(config, {"GAZETTE_SECRETS_SIGNING_KEY": secret})
    apps = [service.Components(settings) for _ in range(2)]
    apps[0].prepare_database(migrate=False)
    apps[0].store.upsert_articles([make_article(1)], source_id=None, now=NOW)
    clients = [InProcessClient(service.create_app(c)) for c in apps]
    try:
        tiny = {"Authorization": f"Bearer {TINY_KEY}"}
        statuses = [clients[i % 2].get("/partners/tiny/feeds/politics.json", headers=tiny).status_code
                    for i in range(3)]
        assert statuses == [200, 200, 429]  # rate_limit = 2 a minute, for both

        def subscribe(client: InProcessClient, n: int) -> int:
            form = filled(client.get("/subscribe").text)
            return client.post("/subscribe", data={**form, "email": f"reader{n}@example.com",
                                                   "categories": ["politics"]}).status_code
        assert [subscribe(clients[n % 2], n) for n in range(11)] == [200] * 10 + [429]  # 10 in 10 minutes
    finally:
        for client in clients:
            client.close()
        for c in apps:
            c.close()
        forget(SharedState(redis_url, secret=secret))
