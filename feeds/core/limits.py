"""Rate limits per key: the one limiter of the subscription forms, "email this article", the console's login and the
partner feeds. `RateLimiter` keeps its buckets in this process's memory; `Limits` makes the named limiters a process
uses, in memory here and in one Redis with `feeds.core.shared.SharedLimits` (`[queue] redis_url`), so that the
callers never know which. Not HTTP: the workflows that need it (newsletter.sharing) import no web framework."""

from __future__ import annotations

import math
import threading
from collections import deque
from datetime import datetime, timedelta
from typing import Callable, Literal, Protocol

Refill = Literal["window", "steady"]


class Limiter(Protocol):
    """What a caller of a rate limit needs: `RateLimiter` and `feeds.core.shared.SharedRateLimiter` are both one."""

    def hit(self, key: str, limit: int | None = None) -> int: ...


class RateLimiter:
    """`limit` requests per `per` and key (an IP, an address, a partner), in this process's memory.

    Each key has a bucket of `limit` tokens; a request takes one. How tokens come back is `refill`:
    - "window": each comes back `per` after it was taken, so no key ever gets more than `limit` in any `per` (forms
      guarded against floods: at most 10 subscriptions from one IP in any ten minutes);
    - "steady": one every `per / limit`, so bursts of up to `limit`, then `limit` per `per` on average (partner
      feeds: `rate_limit` requests a minute).
    A limit of 0 or less is no limit. Behind several processes each keeps its own buckets (unless `[queue] redis_url`
    puts them in Redis: `feeds.core.shared.SharedLimits`), and a restart forgets them: limits that must hold across
    restarts (one confirmation mail per address an hour) live in the database.
    Past `max_keys` keys, those whose bucket is full again are forgotten, so a flood of keys costs bounded memory.
    """

    def __init__(self, limit: int, per: timedelta, clock: Callable[[], datetime], *,
                 refill: Refill = "window", max_keys: int = 100_000) -> None:
        self.limit = limit
        self.per = per
        self.refill = refill
        self._clock = clock
        self._max_keys = max_keys
        self._taken: dict[str, deque[datetime]] = {}  # "window": when each token in use was taken
        self._buckets: dict[str, tuple[float, datetime]] = {}  # "steady": tokens left, when counted
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int | None = None) -> int:
        """Count one request of `key` (under `limit` instead of the limiter's own, when given: each partner has its
        own); 0 when it may go ahead, else the whole seconds (at least 1) until one would."""
        limit = self.limit if limit is None else limit
        if limit <= 0:
            return 0
        now = self._clock()
        with self._lock:
            wait = self._window(key, limit, now) if self.refill == "window" else self._steady(key, limit, now)
            if len(self._taken) + len(self._buckets) > self._max_keys:
                self._forget_idle(now)
        return 0 if wait <= 0 else max(1, math.ceil(wait))

    def _window(self, key: str, limit: int, now: datetime) -> float:
        taken = self._taken.setdefault(key, deque())
        while taken and taken[0] <= now - self.per:
            taken.popleft()
        if len(taken) >= limit:
            return (taken[0] + self.per - now).total_seconds()
        taken.append(now)
        return 0.0

    def _steady(self, key: str, limit: int, now: datetime) -> float:
        per_second = limit / self.per.total_seconds()
        tokens, at = self._buckets.get(key, (float(limit), now))
        tokens = min(float(limit), tokens + max(0.0, (now - at).total_seconds()) * per_second)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / per_second

    def _forget_idle(self, now: datetime) -> None:
        for key in [k for k, v in self._taken.items() if not v or v[-1] <= now - self.per]:
            del self._taken[key]
        for key in [k for k, (_, at) in self._buckets.items() if at <= now - self.per]:
            del self._buckets[key]


class Limits:
    """Makes a process's rate limiters, each under a name of its own (`partner-feeds`, `share-ip`, ...): the name
    keeps one limit's keys apart from another's where they are shared. This one keeps them in the process's memory;
    `feeds.core.shared.SharedLimits` keeps them in Redis, for every process at once."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock

    def limiter(self, name: str, limit: int, per: timedelta, *, refill: Refill = "window") -> Limiter:
        return RateLimiter(limit, per, self.clock, refill=refill)
