"""State that several processes must share, kept in one Redis (`[queue] redis_url`): the rate limits, which visits
were already counted (view and click dedupe, per-IP caps) and the mail rate of a relay. Without `redis_url` none of
this is built and `redis` is never imported: each process keeps that state in its own memory, as it always did.

Every key is `<namespace>:<site>:<kind>:<hash>`: `<site>` is a fingerprint of the signing key (two sites on one
Redis never meet), `<hash>` a keyed BLAKE2b of whatever the key is about (an IP address, an address, a partner's
key), so nothing a client sends reaches Redis as it was sent, and nothing can be recomputed from Redis alone. Every
key has a TTL: the whole of it is bounded by the traffic of the longest window (a day for the per-IP caps).

When Redis is away (refused, timed out, out of memory), each use decides (`SharedState.run` raises
`SharedUnavailable`, logged at most once a minute, and Redis is left alone for `pause` seconds): rate limits and
view dedupe fall back to this process's memory, as without Redis; the mail rate waits and asks again, so mail never
goes faster than the limit.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, TypeVar
from urllib.parse import urlsplit

from .limits import Limiter, Limits, RateLimiter, Refill

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger(__name__)

T = TypeVar("T")
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")  # a limiter's or a bucket's name: ours, never a client's
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WARN_EVERY = 60.0  # seconds between two warnings that Redis is away

# A sliding window: KEYS[1] is a sorted set of when each token in use was taken (microseconds). ARGV: limit, the
# window (microseconds), a unique member, the time (microseconds; empty: Redis's clock). Returns 0 (go ahead) or
# the seconds until a token comes back, as text (a Lua number would come back cut to an integer):
# `feeds.core.limits.RateLimiter._window` in one atomic step, with the same arithmetic, so the same answers.
WINDOW = """
local limit, per = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = tonumber(ARGV[4])
if not now then local t = redis.call('TIME'); now = tonumber(t[1]) * 1000000 + tonumber(t[2]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.17g', now - per))
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return string.format('%.17g', (tonumber(oldest[2]) + per - now) / 1000000)
end
redis.call('ZADD', KEYS[1], string.format('%.17g', now), ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(per / 1000))
return '0'
"""

# A steady refill: KEYS[1] is a hash (tokens left, when counted). ARGV: limit, the time `limit` tokens take to come
# back (microseconds), the time (microseconds; empty: Redis's clock). `RateLimiter._steady` in one atomic step (the
# wait in seconds, as text); the key lives as long as a bucket takes to fill up again, then it is the same as none.
STEADY = """
local limit, per = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if not now then local t = redis.call('TIME'); now = tonumber(t[1]) * 1000000 + tonumber(t[2]) end
local per_second = limit / (per / 1000000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or limit, tonumber(state[2]) or now
tokens = math.min(limit, tokens + math.max(0, (now - at) / 1000000) * per_second)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / per_second end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(per / 1000))
return string.format('%.17g', wait)
"""

# A mail rate (GCRA, the cell rate algorithm, with reservations): KEYS[1] holds when the next turn is due
# (microseconds, Redis's clock, so the machines' clocks do not matter). ARGV: the interval between turns and the
# burst's tolerance ((burst - 1) intervals), in microseconds. Each call takes the next turn and returns the
# microseconds until it comes; the key lives until the turns reserved so far are over.
BUCKET = """
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local count = tonumber(ARGV[3]) or 1
local due = math.max(tonumber(redis.call('GET', KEYS[1]) or '0') or 0, now)
local turn = math.max(now, due - tolerance)
local after = due + interval * count
redis.call('SET', KEYS[1], string.format('%.17g', after), 'PX', math.ceil((after - now) / 1000) + 1)
return math.ceil(turn - now)
"""

# A visit: KEYS[1] marks the visitor's visit for `ARGV[1]` milliseconds; KEYS[2], when given, counts the day's visits
# of one address (up to the cap ARGV[2], the counter living ARGV[3] milliseconds). `feeds.readership.ViewCounter`'s
# rule, in one atomic step: a repeat, else capped, else counted.
VISIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'repeat' end
if KEYS[2] and tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[2]) then return 'capped' end
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 'repeat' end
if KEYS[2] and redis.call('INCR', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return 'counted'
"""


class SharedUnavailable(Exception):
    """Redis did not answer (or answered with an error): the caller falls back or waits."""


def microseconds(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


class SharedState:
    """One Redis for one process: a client made from `url` with short timeouts, no retries of its own and a health
    check of idle connections; the keys (`key`), the scripts, and what happens when Redis is away (`run`).

    `secret` (the signing key) keys the hashes and names the site. `namespace` sets the keys' first part (tests
    give each their own). `timeout` is each command's connect and read timeout in seconds; after failing to reach
    it, Redis is not asked again for `pause` seconds, so a Redis that hangs costs one timeout per pause, not one per
    request."""

    def __init__(self, url: str, *, secret: str, namespace: str = "gazette", timeout: float = 0.5, pause: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.client: Redis = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                                  health_check_interval=30, retry=Retry(NoBackoff(), 0))
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        # Unreachable, not an error of one command (a key of another type, a full memory): only these pause Redis.
        self._away: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, OSError)
        self._key = hashlib.blake2b(secret.encode(), digest_size=32, person=b"gazette-shared").digest()
        self.prefix = f"{namespace}:{self.hash('site')[:12]}"
        parts = urlsplit(url)
        self.where = f"{parts.hostname or parts.path}:{parts.port or 6379}" if parts.scheme != "unix" else parts.path
        self._pause, self._monotonic = pause, monotonic
        self._lock = threading.Lock()
        self._away_until = 0.0
        self._is_away = False
        self._failures = 0
        self._warned_at: float | None = None
        self.scripts = {name: self.client.register_script(lua) for name, lua in
                        (("window", WINDOW), ("steady", STEADY), ("bucket", BUCKET), ("visit", VISIT))}

    def hash(self, *parts: str | bytes) -> str:
        """A keyed hash of `parts` (each length-prefixed, so no two different lists of parts hash alike)."""
        h = hashlib.blake2b(key=self._key, digest_size=16)
        for part in parts:
            data = part.encode() if isinstance(part, str) else part
            h.update(len(data).to_bytes(8, "big") + data)
        return h.hexdigest()

    def key(self, kind: str, *parts: str | bytes) -> str:
        """The Redis key of `parts` under `kind` (ours: `limit:share-ip`, `views:seen`, ...)."""
        return f"{self.prefix}:{kind}:{self.hash(kind, *parts)}"

    def run(self, call: Callable[[], T], *, fallback: str) -> T:
        """`call()`, or SharedUnavailable when Redis is away; `fallback` says in the warning what happens then."""
        if self._monotonic() < self._away_until:
            raise SharedUnavailable(f"Redis at {self.where} is away")
        try:
            result = call()
        except self._errors as exc:
            self._failed(exc, fallback, is_away=isinstance(exc, self._away))
            raise SharedUnavailable(f"Redis at {self.where}: {type(exc).__name__}: {exc}") from exc
        if self._is_away:
            with self._lock:
                self._is_away, self._warned_at = False, None
            log.warning("shared state: Redis at %s answers again", self.where)
        return result

    def _failed(self, exc: BaseException, fallback: str, *, is_away: bool) -> None:
        now = self._monotonic()
        with self._lock:
            if is_away:
                self._away_until, self._is_away = now + self._pause, True
            self._failures += 1
            if self._warned_at is not None and now - self._warned_at < WARN_EVERY:
                return
            self._warned_at, failures, self._failures = now, self._failures, 0
        log.warning("shared state: Redis at %s %s (%s: %s; %d failure(s) since the last warning): %s%s", self.where,
                    "is away" if is_away else "refused a command", type(exc).__name__, exc, failures, fallback,
                    f"; asked again in {self._pause:.0f} s" if is_away else "")

    def ping(self) -> bool:
        try:
            return bool(self.run(self.client.ping, fallback="nothing is shared until it answers"))
        except SharedUnavailable:
            return False

    def close(self) -> None:
        self.client.close()


class SharedRateLimiter:
    """`feeds.core.limits.RateLimiter`'s contract (`hit(key, limit)`: 0, or the whole seconds to wait) over Redis,
    for every process at once: the same two refills, each one atomic Lua script, on Redis's clock unless `clock` is
    given (tests drive both limiters with one clock). While Redis is away, `fallback` (this process's own limiter)
    answers instead."""

    def __init__(self, state: SharedState, name: str, limit: int, per: timedelta, *, refill: Refill = "window",
                 fallback: Limiter, clock: Callable[[], datetime] | None = None) -> None:
        if not NAME.match(name):
            raise ValueError(f"a limiter's name is lower-case letters, digits and dashes: {name!r}")
        self.state, self.name, self.limit, self.per, self.refill = state, name, limit, per, refill
        self._fallback, self._clock = fallback, clock
        self._per_us = per // timedelta(microseconds=1)

    def hit(self, key: str, limit: int | None = None) -> int:
        limit = self.limit if limit is None else limit
        if limit <= 0:
            return 0
        now = "" if self._clock is None else str(microseconds(self._clock()))
        keys = [self.state.key(f"limit:{self.name}", self.refill, key)]  # the two refills keep different types
        if self.refill == "window":
            script, args = self.state.scripts["window"], [limit, self._per_us, secrets.token_hex(8), now]
        else:
            script, args = self.state.scripts["steady"], [limit, self._per_us, now]
        try:
            wait = float(self.state.run(lambda: script(keys=keys, args=args),
                                        fallback="rate limits count in each process's memory"))
        except SharedUnavailable:
            return self._fallback.hit(key, limit)
        return 0 if wait <= 0 else max(1, math.ceil(wait))


class SharedLimits(Limits):
    """The named rate limiters of `feeds.core.limits.Limits`, in Redis, each with its in-process twin to fall back
    on."""

    def __init__(self, state: SharedState, clock: Callable[[], datetime]) -> None:
        super().__init__(clock)
        self.state = state

    def limiter(self, name: str, limit: int, per: timedelta, *, refill: Refill = "window") -> Limiter:
        return SharedRateLimiter(self.state, name, limit, per, refill=refill,
                                 fallback=RateLimiter(limit, per, self.clock, refill=refill))


class TokenBucket:
    """The mail rate of one relay (`name`), shared by every worker of every machine: `wait()` returns when it is
    the caller's turn, as `newsletter.outbox.RateGate.wait()` does in one process. At most `rate` turns a second
    on average, the first `burst` at once; turns are taken on Redis's clock, in one atomic script, so the
    machines' clocks do not matter. While Redis is away it waits and asks again (every `retry` seconds): mail is
    late, never faster than the limit."""

    def __init__(self, state: SharedState, name: str, rate: float, *, burst: int = 1, retry: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a rate above 0 and a burst of at least 1")
        self.state, self.rate, self.burst = state, rate, burst
        self._key = state.key("mail-rate", name)  # a relay's URL may hold a password: hashed like the rest
        self._interval = 1_000_000 / rate
        self._retry, self._sleep = retry, sleep

    def reserve(self, count: int = 1) -> float:
        """Take the next `count` turns (one after another, 1/rate apart); the seconds until the first comes.
        SharedUnavailable when Redis is away."""
        script, args = self.state.scripts["bucket"], [self._interval, (self.burst - 1) * self._interval, count]
        wait = self.state.run(lambda: script(keys=[self._key], args=args), fallback="mail waits for it")
        return max(0, int(wait)) / 1_000_000

    def turns(self, count: int) -> list[float]:
        """Take `count` turns in one call (a worker's claim of rows): when each comes, on `time.monotonic()`'s clock.
        One round trip to Redis for them all; while Redis is away, it waits and asks again."""
        while True:
            try:
                first = time.monotonic() + self.reserve(count)
                break
            except SharedUnavailable:
                self._sleep(self._retry)
        return [first + i / self.rate for i in range(count)]

    def wait(self) -> None:
        """Return when it is this caller's turn."""
        while True:
            try:
                wait = self.reserve()
                break
            except SharedUnavailable:
                self._sleep(self._retry)
        if wait > 0:
            self._sleep(wait)


class SharedVisits:
    """Which visits were counted, for every process: the day's salt of `feeds.readership.ViewCounter` (one for all,
    or the same visitor would hash differently in each process), and its dedupe and per-address caps."""

    def __init__(self, state: SharedState) -> None:
        self.state = state

    def salt(self, day: date, now: datetime) -> bytes | None:
        """The salt of `day` (made by whichever process asks first); None when Redis is away. It lives until an hour
        after the day ends, then no one can tie that day's hashes to an address."""
        key = self.state.key("views:salt", day.isoformat())
        ttl = max(1000, (datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1, hours=1) - now)
                  // timedelta(milliseconds=1))
        client = self.state.client

        def fetch() -> Any:
            client.set(key, secrets.token_bytes(32), nx=True, px=ttl)
            return client.get(key)
        try:
            salt = self.state.run(fetch, fallback="views are deduplicated in each process's memory")
        except SharedUnavailable:
            return None
        return bytes(salt) if salt else None

    def visit(self, kind: str, seen: tuple[bytes | str, ...], window: timedelta,
              counted: tuple[bytes | str, ...] | None = None, *, cap: int = 0, until: timedelta = timedelta(days=1),
              ) -> str | None:
        """counted | repeat | capped: `seen` (the visitor's visit) not marked in the last `window`, and the count of
        `counted` (an address's visits of the day) under `cap`; None when Redis is away."""
        keys = [self.state.key(f"{kind}:seen", *seen)]
        if counted is not None:
            keys.append(self.state.key(f"{kind}:count", *counted))
        args = [max(1, window // timedelta(milliseconds=1)), cap, max(1, until // timedelta(milliseconds=1))]
        script = self.state.scripts["visit"]
        try:
            verdict = self.state.run(lambda: script(keys=keys, args=args),
                                     fallback="views are deduplicated in each process's memory")
        except SharedUnavailable:
            return None
        return verdict.decode() if isinstance(verdict, bytes) else str(verdict)
