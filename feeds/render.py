"""Feed rendering: a format-neutral `FeedDoc` -> the bytes of RSS 2.0, Atom 1.0 or JSON Feed 1.1.

Pure functions; feedgen writes RSS and Atom, json writes JSON Feed. Each format gets its own FeedGenerator so
that no value meant for one leaks into the other (feedgen shares fields between them). Specs followed:
RSS 2.0 (rssboard.org/rss-specification), RFC 4287 (Atom), jsonfeed.org/version/1.1.

Traps handled here rather than by callers:
- feedgen makes the RSS channel <link> the *last* link added, so the site link is added after the self link;
- feedgen fills `updated`/`lastBuildDate` with the current time when unset, which would change the bytes
  (and the ETag) on every build: they are always set from the items;
- feedgen prepends entries by default; items are appended to keep newest-first order;
- entries keep the order they are given in and their real times: `updated` is the last change of the story and
  never earlier than `published` (stories that share a timestamp are not shifted apart);
- RSS readers read <description> as HTML (RSS Best Practices, 2009), so the plain-text summary goes in escaped as
  HTML, then as XML: upstream text `&lt;script&gt;` reaches a reader as that text, never as a tag. JSON Feed's
  `content_html` falls back to the summary the same way;
- XML 1.0 cannot carry most control characters (nor U+FFFE/U+FFFF, nor lone surrogates): they are dropped from
  every text before rendering, so that no stored value can make a feed unrenderable.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, tzinfo
from typing import Callable, Sequence
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from feedgen.feed import FeedGenerator
from lxml import etree

from .model import StoredArticle
from .normalise import xml_text

FORMATS = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}
# Partner feeds' ninjs (feeds/ninjs.py) is no public format; it has no registered media type (IANA lists none), so
# it goes as JSON.
CONTENT_TYPES = {**FORMATS, "sitemap": "application/xml; charset=utf-8", "ninjs": "application/json; charset=utf-8"}
ATOM_NS = "http://www.w3.org/2005/Atom"
TOMBSTONES_NS = "http://purl.org/atompub/tombstones/1.0"  # RFC 6721
HISTORY_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005


@dataclass(frozen=True)
class FeedItem:
    id: str  # permanent, not a URL that may change: see item_id()
    url: str | None
    title: str
    summary: str
    content_html: str | None  # None: summary only
    byline: str | None
    author_email: str | None
    category: str | None
    category_label: str | None
    tags: tuple[str, ...]
    image_url: str | None
    published_at: datetime
    updated_at: datetime
    source_id: int | None = None  # whose health an item that cannot be rendered is reported on


@dataclass(frozen=True)
class DeletedItem:
    """An entry withdrawn from the feed (a killed story): Atom says so with an RFC 6721 tombstone."""

    id: str  # the entry's id as the feed gave it
    deleted_at: datetime
    comment: str = ""


@dataclass(frozen=True)
class FeedDoc:
    slug: str
    title: str
    description: str
    home_url: str
    language: str
    author: str
    timezone: tzinfo
    items: tuple[FeedItem, ...]
    hubs: tuple[str, ...] = field(default_factory=tuple)
    links: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (rel, href): RFC 5005 paging
    is_archive: bool = False  # an RFC 5005 archive document: <fh:archive/>
    deleted: tuple[DeletedItem, ...] = ()  # Atom only: RFC 6721 at:deleted-entry, newest first

    @property
    def updated_at(self) -> datetime | None:
        return max([*(max(i.updated_at, i.published_at) for i in self.items), *(d.deleted_at for d in self.deleted)],
                   default=None)


def _xml_safe(value: object) -> object:
    """A FeedDoc or FeedItem with every text field made XML-safe (tuples of texts too)."""
    changes: dict[str, object] = {}
    for f in fields(value):  # type: ignore[arg-type]
        current = getattr(value, f.name)
        if isinstance(current, str):
            cleaned: object = xml_text(current)
        elif isinstance(current, tuple) and current and all(isinstance(x, str) for x in current):
            cleaned = tuple(xml_text(x) for x in current)
        elif f.name in ("items", "deleted"):
            cleaned = tuple(_xml_safe(item) for item in current)
        else:
            continue
        if cleaned != current:
            changes[f.name] = cleaned
    return replace(value, **changes) if changes else value  # type: ignore[type-var]


def item_id(base_url: str, article_id: str, published_at: datetime) -> str:
    """An RFC 4151 tag URI: stable when the article's URL changes, the same in every format."""
    host = urlsplit(base_url).hostname or "localhost"
    return f"tag:{host},{published_at.date().isoformat()}:article/{article_id}"


def render_each(doc: FeedDoc, fmt: str, self_url: str, fallback_updated: datetime,
                on_skip: Callable[[FeedItem, Exception], None]) -> bytes:
    """`render`, but an item that cannot be rendered is left out (and handed to `on_skip`) rather than the feed."""
    try:
        return render(doc, fmt, self_url, fallback_updated)
    except Exception:
        kept = []
        for item in doc.items:  # the slow way, only when something is wrong
            try:
                render(replace(doc, items=(item,)), fmt, self_url, fallback_updated)
            except Exception as exc:
                on_skip(item, exc)
            else:
                kept.append(item)
        return render(replace(doc, items=tuple(kept)), fmt, self_url, fallback_updated)


def render(doc: FeedDoc, fmt: str, self_url: str, fallback_updated: datetime) -> bytes:
    doc = _xml_safe(doc)  # type: ignore[assignment]
    if fmt == "rss":
        return render_rss(doc, self_url, fallback_updated)
    if fmt == "atom":
        return render_atom(doc, self_url, fallback_updated)
    if fmt == "json":
        return render_json(doc, self_url)
    raise ValueError(f"unknown feed format {fmt!r}")


def render_rss(doc: FeedDoc, self_url: str, fallback_updated: datetime) -> bytes:
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.load_extension("media", atom=False, rss=True)
    fg.title(doc.title)
    fg.description(doc.description or doc.title)
    fg.language(doc.language)
    fg.link(href=self_url, rel="self", type=FORMATS["rss"].split(";")[0])
    fg.link(href=doc.home_url, rel="alternate")  # last: feedgen's RSS <link> is the last link added
    fg.lastBuildDate((doc.updated_at or fallback_updated).astimezone(doc.timezone))
    fg.generator("Gazette")
    for item in doc.items:
        fe = fg.add_entry(order="append")
        fe.title(item.title)
        if item.url:
            fe.link(href=item.url)
        fe.guid(item.id, permalink=False)
        fe.pubDate(item.published_at.astimezone(doc.timezone))
        fe.description(html.escape(item.summary or item.title, quote=False))
        if item.content_html:
            fe.content(item.content_html, type="CDATA")
        if item.byline:
            fe.dc.dc_creator(item.byline)
        if item.category_label:
            fe.category(term=item.category_label)
        if item.image_url:
            fe.media.content(url=item.image_url, medium="image")
    body = fg.rss_str(pretty=True, encoding="UTF-8", xml_declaration=True)
    if doc.hubs:  # feedgen writes only the self atom:link into RSS; WebSub discovery wants the hubs too
        root = etree.fromstring(body)
        channel = root.find("channel")
        self_link = channel.find(f"{{{ATOM_NS}}}link")
        for position, hub in enumerate(doc.hubs, start=channel.index(self_link) + 1):
            link = etree.Element(f"{{{ATOM_NS}}}link", href=hub, rel="hub")
            channel.insert(position, link)
        etree.indent(root, space="  ")
        body = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return body


def render_atom(doc: FeedDoc, self_url: str, fallback_updated: datetime) -> bytes:
    fg = FeedGenerator()
    fg.id(self_url)
    fg.title(doc.title)
    if doc.description:
        fg.subtitle(doc.description)
    fg.language(doc.language)
    fg.author(name=doc.author)
    fg.link(href=doc.home_url, rel="alternate", type="text/html")
    fg.link(href=self_url, rel="self", type=FORMATS["atom"].split(";")[0])
    for hub in doc.hubs:
        fg.link(href=hub, rel="hub")
    for rel, href in doc.links:
        fg.link(href=href, rel=rel, type=FORMATS["atom"].split(";")[0])
    fg.updated((doc.updated_at or fallback_updated).replace(microsecond=0).astimezone(doc.timezone))
    fg.generator("Gazette")
    for item in doc.items:  # in the document's order, as given: no timestamp is bent to keep an order
        fe = fg.add_entry(order="append")
        fe.id(item.id)
        fe.title(item.title)
        if item.url:
            fe.link(href=item.url, rel="alternate", type="text/html")
        published = item.published_at.replace(microsecond=0)
        fe.published(published.astimezone(doc.timezone))
        fe.updated(max(item.updated_at.replace(microsecond=0), published).astimezone(doc.timezone))
        if item.byline:
            author = {"name": item.byline}
            if item.author_email:
                author["email"] = item.author_email
            fe.author(author)
        if item.category:
            fe.category(term=item.category, label=item.category_label or item.category)
        if item.summary:
            fe.summary(item.summary, type="text")
        if item.content_html:
            fe.content(item.content_html, type="html")
    body = fg.atom_str(pretty=True, encoding="UTF-8", xml_declaration=True)
    if doc.is_archive or doc.deleted:
        nsmap = {"at": TOMBSTONES_NS} if doc.deleted else {}
        old = etree.fromstring(body)
        root = etree.Element(old.tag, nsmap={**old.nsmap, **nsmap}, attrib=dict(old.attrib))
        root.text = old.text
        root.extend(list(old))  # the namespaces declared once, on <feed>, as readers and validators expect
        # Extension elements go before the entries: RFC 4287's schema puts every atom:entry last in atom:feed.
        first_entry = next((i for i, child in enumerate(root) if child.tag == f"{{{ATOM_NS}}}entry"), len(root))
        if doc.is_archive:
            root.insert(first_entry, etree.Element(f"{{{HISTORY_NS}}}archive", nsmap={"fh": HISTORY_NS}))
            first_entry += 1
        for position, gone in enumerate(doc.deleted, start=first_entry):  # RFC 6721 §2: ref and when
            tombstone = etree.Element(f"{{{TOMBSTONES_NS}}}deleted-entry", ref=gone.id,
                                      when=gone.deleted_at.replace(microsecond=0).astimezone(doc.timezone).isoformat())
            if gone.comment:
                etree.SubElement(tombstone, f"{{{TOMBSTONES_NS}}}comment").text = gone.comment
            root.insert(position, tombstone)
        etree.indent(root, space="  ")
        body = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return body


def render_news_sitemap(articles: Sequence[StoredArticle], *, publication: str, language: str,
                        timezone: tzinfo) -> bytes:
    """A Google News sitemap (sitemaps.org urlset with the news: extension)."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
             'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">']
    for a in articles:
        lines += ["  <url>", f"    <loc>{escape(xml_text(a.url or ''))}</loc>", "    <news:news>",
                  "      <news:publication>", f"        <news:name>{escape(publication)}</news:name>",
                  f"        <news:language>{escape(language)}</news:language>", "      </news:publication>",
                  f"      <news:publication_date>{a.published_at.replace(microsecond=0).astimezone(timezone).isoformat()}"
                  "</news:publication_date>",
                  f"      <news:title>{escape(xml_text(a.title))}</news:title>", "    </news:news>", "  </url>"]
    lines.append("</urlset>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def render_json(doc: FeedDoc, self_url: str) -> bytes:
    items = []
    for item in doc.items:
        entry: dict[str, object] = {"id": item.id}
        if item.url:
            entry["url"] = item.url
        entry["title"] = item.title
        entry["content_html"] = item.content_html if item.content_html else html.escape(item.summary, quote=False)
        if item.summary:
            entry["summary"] = item.summary
        if item.image_url:
            entry["image"] = item.image_url
        entry["date_published"] = item.published_at.replace(microsecond=0).astimezone(doc.timezone).isoformat()
        entry["date_modified"] = max(item.updated_at, item.published_at).replace(microsecond=0).astimezone(
            doc.timezone).isoformat()
        if item.byline:
            entry["authors"] = [{"name": item.byline}]
        tags = ([item.category_label] if item.category_label else []) + list(item.tags)
        if tags:
            entry["tags"] = tags
        items.append(entry)
    feed: dict[str, object] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": doc.title,
        "home_page_url": doc.home_url,
        "feed_url": self_url,
        "language": doc.language,
    }
    if doc.description:
        feed["description"] = doc.description
    if doc.hubs:
        feed["hubs"] = [{"type": "WebSub", "url": hub} for hub in doc.hubs]
    feed["authors"] = [{"name": doc.author}]
    feed["items"] = items
    return json.dumps(feed, ensure_ascii=False, indent=2).encode("utf-8")
