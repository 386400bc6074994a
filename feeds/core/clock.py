"""The clock, as a plain callable that returns an aware UTC datetime.

Logic never reads the time itself: it is handed `now` or a `Clock`, so tests can pass a fixed one.
"""

from datetime import datetime, timezone
from typing import Callable

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
