"""Reading an `html` source: a sitemap or a section page -> its newest article pages -> RawEntry items.

The source's own URL is fetched by ingest like any other (validators, redirects, caps); this module decides
which article pages to fetch and reads them. To stay polite and cheap it fetches at most `limit` pages a run,
newest first, and skips pages already stored, unless a sitemap says a page changed after we stored it (an
edit). A page that fails is reported and skipped; the rest of the run goes on. URLs the source's content policy
refuses (another site, a private address, a local path) are left out before anything is fetched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Callable, Mapping, Sequence

from .errors import FeedsError
from .fetch import Fetcher, Validators
from .outbound import OutboundPolicy, RefusedError
from .html import SitemapEntry, parse_article_page, parse_link_page, parse_sitemap
from .model import RawEntry
from .normalise import canonical_url
from .parse import charset_of

PAGE_LIMIT = 30
SITEMAP_CHILDREN = 2  # of a sitemap index, the first children (newest, by convention) are read


@dataclass(frozen=True)
class Candidate:
    url: str
    changed_at: datetime | None  # what the sitemap says, if it does


def is_sitemap(body: bytes) -> bool:
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<?xml") and (b"<urlset" in body[:4096].lower() or b"<sitemapindex" in body[:4096].lower())


@dataclass(frozen=True)
class Listing:
    """What a sitemap or section page offers: candidates newest first, and the URLs the policy left out."""

    found: list[Candidate]
    refused: tuple[str, ...] = ()


def candidates(body: bytes, url: str, content_type: str | None, *, fetcher: Fetcher, timezone: tzinfo,
               policy: OutboundPolicy) -> Listing:
    """Article URLs a listing offers, newest first, deduplicated; those `policy` refuses are left out."""
    refused: list[str] = []
    if is_sitemap(body):
        entries = parse_sitemap(body, url, timezone=timezone)
        children = [e for e in entries if e.is_index][:SITEMAP_CHILDREN]
        for child in children:
            if not _is_allowed(child.loc, policy):
                refused.append(child.loc)
                continue
            fetched = fetcher.fetch(child.loc, Validators(), policy)
            if fetched.body is not None:
                entries += parse_sitemap(fetched.body, child.loc, timezone=timezone)
        pages = [e for e in entries if not e.is_index]
        pages.sort(key=_newest_first)
        found = [Candidate(e.loc, e.lastmod or e.published_at) for e in pages]
    else:
        found = [Candidate(link, None) for link in parse_link_page(body, url, encoding=charset_of(content_type))]
    seen: set[str] = set()
    unique = []
    for candidate in found:
        if not _is_allowed(candidate.url, policy):
            refused.append(candidate.url)
            continue
        key = canonical_url(candidate.url) or candidate.url
        if key not in seen:
            seen.add(key)
            unique.append(candidate)
    return Listing(unique, tuple(refused))


def _is_allowed(url: str, policy: OutboundPolicy) -> bool:
    try:
        policy.check_url(url)
    except RefusedError:
        return False
    return True


def _newest_first(entry: SitemapEntry) -> float:
    when = entry.lastmod or entry.published_at
    return -when.timestamp() if when else float("inf")


def read_pages(found: Sequence[Candidate], *, fetcher: Fetcher, known: Callable[[list[str]], Mapping[str, datetime]],
               timezone: tzinfo, policy: OutboundPolicy, limit: int = PAGE_LIMIT) -> tuple[list[RawEntry], list[str]]:
    """Fetch and parse the pages worth fetching; returns the entries and one reason per page that failed."""
    stored = known([canonical_url(c.url) or c.url for c in found[:limit * 3]])
    chosen = []
    for candidate in found:
        stored_at = stored.get(canonical_url(candidate.url) or candidate.url)
        if stored_at is None or (candidate.changed_at is not None and candidate.changed_at > stored_at):
            chosen.append(candidate)
        if len(chosen) == limit:
            break
    entries, problems = [], []
    for candidate in chosen:
        try:
            fetched = fetcher.fetch(candidate.url, Validators(), policy)
            if fetched.body is None:
                continue
            entries.append(parse_article_page(fetched.body, fetched.url, timezone=timezone,
                                              encoding=charset_of(fetched.content_type)))
        except FeedsError as exc:
            problems.append(f"{candidate.url}: {exc}")
    return entries, problems
