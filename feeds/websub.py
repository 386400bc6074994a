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
        self._wake = threading.Condition()
        self._stopping = False
        self._idle = threading.Event()
        self._idle.set()
        self.sent: list[tuple[str, str]] = []  # (hub, topic) accepted, for the admin view and tests
        self.failed: list[tuple[str, str, str]] = []  # (hub, topic, reason) given up on
        self._thread = threading.Thread(target=self._run, name="gazette-websub", daemon=True)
        self._thread.start()

    def publish(self, topics: Sequence[str]) -> None:
        with self._wake:
            for hub in self.hubs:
                for topic in topics:
                    heapq.heappush(self._queue, (time.monotonic(), next(self._order), hub, topic, 1))
            if self._queue:
                self._idle.clear()
            self._wake.notify()

    def wait_idle(self, timeout: float) -> bool:
        """Block until every notice is sent or given up on (tests, shutdown)."""
        return self._idle.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self.wait_idle(timeout)
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout)
        self._client.close()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and (not self._queue or self._queue[0][0] > time.monotonic()):
                    if not self._queue:
                        self._idle.set()
                    self._wake.wait(None if not self._queue else max(self._queue[0][0] - time.monotonic(), 0))
                if self._stopping:
                    return
                _, _, hub, topic, attempt = heapq.heappop(self._queue)
            reason = self._send(hub, topic)
            with self._wake:
                if reason is None:
                    self.sent.append((hub, topic))
                elif attempt < self._attempts:
                    delay = self._first_delay * 2 ** (attempt - 1)
                    log.warning("WebSub hub %s refused %s (%s); retry %d in %.0f s", hub, topic, reason, attempt, delay)
                    heapq.heappush(self._queue, (time.monotonic() + delay, next(self._order), hub, topic, attempt + 1))
                else:
                    log.error("WebSub hub %s: giving up on %s after %d attempts: %s", hub, topic, attempt, reason)
                    self.failed.append((hub, topic, reason))
                if not self._queue:
                    self._idle.set()

    def _send(self, hub: str, topic: str) -> str | None:
        try:
            response = self._client.post(hub, data={"hub.mode": "publish", "hub.url": topic})
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"
