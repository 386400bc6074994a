"""`BackgroundLoop`: the one background-thread loop of a server process.

Every periodic job a process runs beside its requests (the feed refresh, the view counter's flush, partner pushes,
WebSub notices, the scheduler lease) is a `BackgroundLoop` over one `step`, in the shape of miniflux's worker pool:
start, wake it, shut it down. The loop runs `step` once at `start()`, then every `interval` (or, with no interval,
only when poked); `poke()` wakes it early, now or within a given delay. A step that raises is logged and the next
round tries again: a database hiccup never ends the loop. `stop()` wakes it, lets the step under way finish, runs a
last step if asked (a buffer that must reach the database before the process ends), and joins the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

log = logging.getLogger(__name__)


class BackgroundLoop:
    """Runs `step` in a daemon thread named `name`: at start, then every `interval` (None: only when poked).

    `failure` is the message logged, with the traceback, to `logger` when a step raises. With `last_step`, `stop()`
    runs the step once more after the loop ends (in the caller's thread if the loop never started).
    """

    def __init__(self, name: str, step: Callable[[], object], interval: timedelta | None, *, failure: str,
                 last_step: bool = False, logger: logging.Logger = log) -> None:
        self._step = step
        self._interval = None if interval is None else interval.total_seconds()
        self._failure = failure
        self._last_step = last_step
        self._log = logger
        self._wake = threading.Condition()
        self._wake_at: float | None = None  # time.monotonic() by which a poke wants a step
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def is_stopping(self) -> bool:
        """True once `stop()` was called: a long step checks it to end early."""
        return self._stopping

    def start(self) -> None:
        self._thread.start()

    def poke(self, after: float = 0.0) -> None:
        """Have a step run within `after` seconds (now by default), sooner than the interval would."""
        with self._wake:
            at = time.monotonic() + after
            self._wake_at = at if self._wake_at is None else min(self._wake_at, at)
            self._wake.notify()

    def stop(self, timeout: float = 10.0) -> None:
        """End the loop: the step under way finishes, then the last step if asked; waits up to `timeout` seconds
        for the thread. Stopping twice is harmless."""
        with self._wake:
            was_stopping, self._stopping = self._stopping, True
            self._wake.notify()
        if self._thread.ident is None:  # never started: nobody else will run the last step
            if self._last_step and not was_stopping:
                self._run_step()
        elif self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping:
            self._run_step()
            self._wait()
        if self._last_step:
            self._run_step()

    def _run_step(self) -> None:
        try:
            self._step()
        except Exception:  # noqa: BLE001  (whatever went wrong, the next round tries again)
            self._log.exception(self._failure)

    def _wait(self) -> None:
        """Until the interval has passed since now, a poke's time has come, or `stop()`."""
        with self._wake:
            due = None if self._interval is None else time.monotonic() + self._interval
            while not self._stopping:
                wake = min((t for t in (due, self._wake_at) if t is not None), default=None)
                if wake is None:
                    self._wake.wait()
                    continue
                left = wake - time.monotonic()
                if left <= 0:
                    break
                self._wake.wait(left)
            if self._wake_at is not None and self._wake_at <= time.monotonic():
                self._wake_at = None  # this step answers the poke
