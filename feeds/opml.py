"""The list of public feeds as readers see it: each feed with its formats and URLs (the index page's list and its
`<link rel="alternate">` discovery), and the same list as an OPML 2.0 document (`/opml`) for feed readers to import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence
from xml.sax.saxutils import escape, quoteattr

from .publish import FeedInfo, feed_url
from .render import FORMATS
from .settings import Settings

FORMAT_NAMES = {"rss": "RSS 2.0", "atom": "Atom 1.0", "json": "JSON Feed 1.1"}


@dataclass(frozen=True)
class FeedFormat:
    fmt: str  # rss | atom | json
    name: str  # as readers know it: "RSS 2.0"
    type: str  # the media type, without parameters
    url: str


@dataclass(frozen=True)
class FeedLinks:
    """One public feed and where to get it in each format (RSS first)."""

    slug: str
    title: str
    description: str
    formats: tuple[FeedFormat, ...]


def feed_links(settings: Settings, feeds: Sequence[FeedInfo]) -> list[FeedLinks]:
    return [FeedLinks(info.slug, info.title, info.description,
                      tuple(FeedFormat(fmt, FORMAT_NAMES[fmt], FORMATS[fmt].split(";")[0], feed_url(settings, info.slug, fmt))
                            for fmt in FORMATS))
            for info in feeds]


def build_opml(site_name: str, site_url: str, feeds: Sequence[FeedLinks]) -> bytes:
    """OPML 2.0: one `rss` outline per feed, pointing at its first format (RSS), every attribute escaped."""
    outlines = "\n".join(
        f"    <outline type=\"rss\" text={quoteattr(feed.title)} title={quoteattr(feed.title)} "
        f"xmlUrl={quoteattr(feed.formats[0].url)} htmlUrl={quoteattr(site_url)}/>"
        for feed in feeds)
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">\n  <head>\n'
            f"    <title>{escape(site_name)}</title>\n  </head>\n  <body>\n{outlines}\n  </body>\n</opml>\n")
    return body.encode("utf-8")
