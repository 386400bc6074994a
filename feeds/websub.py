"""WebSub publishing: tell each configured hub when a feed changed (`hub.mode=publish`), with retries.

Hubs then fetch the feed and push it to their subscribers. Notices go out from a background thread so that
neither a slow hub nor a refresh waits on another; a failed notice is retried with exponential backoff and,
after the last attempt, logged with the reason (the next change announces the feed again).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Callable, Sequence

import httpx

from .core.loops import BackgroundLoop

log = logging.getLogger(__name__)


class HubNotifier:
    def __init__(self, hubs: Sequence[str], client: httpx.Client | None = None, *, attempts: int = 5,
                 first_delay: float = 1.0, sleep: Callable[[float], None] | None = None) -> None:
        self.hubs = tuple(hubs)
        self._client = client or httpx.Client(timeout=10.0, headers={"User-Agent": "Gazette/0.1 (WebSub publisher)"})
        self._attempts = attempts
        self._first_delay = first_delay
        self._queue: list[tuple[float, int, str, str, int]] = []  # (due, order, hub, topic, attempt)
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self.sent: list[tuple[str, str]] = []  # (hub, topic) accepted, for the admin view and tests
        self.failed: list[tuple[str, str, str]] = []  # (hub, topic, reason) given up on
        # No interval: it wakes when a feed is published and when a retry comes due.
        self._loop = BackgroundLoop("gazette-websub", self._send_due, None, failure="sending WebSub notices failed",
                                    logger=log)
        self._loop.start()

    def publish(self, topics: Sequence[str]) -> None:
        with self._lock:
            for hub in self.hubs:
                for topic in topics:
                    heapq.heappush(self._queue, (time.monotonic(), next(self._order), hub, topic, 1))
            if self._queue:
                self._idle.clear()
        self._loop.poke()

    def wait_idle(self, timeout: float) -> bool:
        """Block until every notice is sent or given up on (tests, shutdown)."""
        return self._idle.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self.wait_idle(timeout)
        self._loop.stop(timeout)
        self._client.close()

    def _send_due(self) -> None:
        """Send every notice that is due, one at a time; then sleep until the next retry is due."""
        while not self._loop.is_stopping:
            with self._lock:
                if not self._queue:
                    self._idle.set()
                    return
                wait = self._queue[0][0] - time.monotonic()
                if wait > 0:
                    self._loop.poke(after=wait)
                    return
                _, _, hub, topic, attempt = heapq.heappop(self._queue)
            reason = self._send(hub, topic)
            with self._lock:
                if reason is None:
                    self.sent.append((hub, topic))
                elif attempt < self._attempts:
                    delay = self._first_delay * 2 ** (attempt - 1)
                    log.warning("WebSub hub %s refused %s (%s); retry %d in %.0f s", hub, topic, reason, attempt, delay)
                    heapq.heappush(self._queue, (time.monotonic() + delay, next(self._order), hub, topic, attempt + 1))
                else:
                    log.error("WebSub hub %s: giving up on %s after %d attempts: %s", hub, topic, attempt, reason)
                    self.failed.append((hub, topic, reason))

    def _send(self, hub: str, topic: str) -> str | None:
        try:
            response = self._client.post(hub, data={"hub.mode": "publish", "hub.url": topic})
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"
