"""Who is asking: a User-Agent sorted into reader or crawler, in time bounded by a small constant.

crawlerdetect keeps the maintained list of crawler patterns, and its own matcher runs them through Python's
backtracking `re`: one alternative, `[a-z0-9\\-_]*(bot|crawl|…)`, rescans a run of letters from every position, so
the cost grows with the square of the agent's length (a 16 KB User-Agent held the event loop for 14 s). Here the
same patterns run on RE2 (google-re2), whose matching is linear in the input, and an agent longer than
MAX_AGENT characters is a crawler without being read: no browser sends one that long. The few patterns RE2 cannot
compile (lookarounds; today only `Yandex(?!Search)`) run on `re` over at most MAX_AGENT characters, where their
literal prefixes keep them linear.

Verdicts are remembered per agent in a bounded LRU: readers share a few thousand agents, and a visitor who rotates
the header only pays the bounded cost each time.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import re2
from crawlerdetect.providers.crawlers import data as CRAWLER_PATTERNS
from crawlerdetect.providers.exclusions import data as EXCLUSION_PATTERNS

MAX_AGENT = 512  # real browsers' agents are 100-350 characters; in-app browsers reach about 400
MEMORY = 50_000


# Lookarounds and back-references: what RE2 leaves out (it would log an error for each such pattern).
_NEEDS_BACKTRACKING = re.compile(r"\(\?<?[=!]|\\[1-9]")


def _union(patterns: list[str]) -> tuple[Any, re.Pattern[str] | None]:
    """The patterns as one RE2 alternation, but for those only `re` can read, which form one `re` alternation."""
    options = re2.Options()
    options.case_sensitive = False
    options.max_mem = 64 << 20  # the crawler list's automaton needs more than RE2's default 8 MB
    linear = [p for p in patterns if not _NEEDS_BACKTRACKING.search(p)]
    other = [p for p in patterns if _NEEDS_BACKTRACKING.search(p)]
    return (re2.compile("(?:" + "|".join(linear) + ")", options=options) if linear else None,
            re.compile("(?:" + "|".join(other) + ")", re.IGNORECASE) if other else None)


class CrawlerCheck:
    """`check(user_agent)` -> True for a crawler (or an empty or oversized agent), the same verdict as
    crawlerdetect's for every agent of up to MAX_AGENT characters."""

    def __init__(self, memory: int = MEMORY) -> None:
        self._exclusions, self._other_exclusions = _union(list(EXCLUSION_PATTERNS))
        self._crawlers, self._other_crawlers = _union(list(CRAWLER_PATTERNS))
        self._remembered = lru_cache(maxsize=memory)(self._classify)

    def __call__(self, user_agent: str) -> bool:
        if len(user_agent) > MAX_AGENT:
            return True
        return self._remembered(user_agent)

    def _classify(self, user_agent: str) -> bool:
        agent = user_agent.strip()
        if not agent:
            return True  # no agent at all: scripts, not readers
        # crawlerdetect first removes what browsers also carry ("Mozilla/5.0", "Safari/537.36"), then searches.
        for exclusions in (self._exclusions, self._other_exclusions):
            if exclusions is not None:
                agent = exclusions.sub("", agent)
        if not agent:
            return False
        return any(pattern is not None and pattern.search(agent) is not None
                   for pattern in (self._crawlers, self._other_crawlers))
