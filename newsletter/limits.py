"""A sliding-window rate limit per key (an IP, an address), held in this process's memory.

Limits that must hold across processes and restarts (one confirmation mail per address an hour) live in the
database instead; these guard forms against floods from one client, where forgetting on restart is harmless.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta
from typing import Callable


class RateLimiter:
    def __init__(self, limit: int, per: timedelta, clock: Callable[[], datetime], max_keys: int = 100_000) -> None:
        self.limit = limit
        self.per = per
        self._clock = clock
        self._hits: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def hit(self, key: str) -> int:
        """Count one request; 0 if allowed, else the seconds until the next one would be."""
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.per:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, int((hits[0] + self.per - now).total_seconds()) + 1)
            hits.append(now)
            if len(self._hits) > self._max_keys:
                self._forget_idle(now)
            return 0

    def _forget_idle(self, now: datetime) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.per]:
            del self._hits[key]
