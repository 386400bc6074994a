"""Parsers: bytes of a source -> RawEntry items. Pure functions, no I/O.

- `parse_feed`: RSS 0.9x/1.0/2.0 and Atom through feedparser, JSON Feed 1.0/1.1 through json.
- `parse_jsonl`: a CMS export, one JSON object per line (fields in docs/sources.md).

feedparser's own sanitiser and relative-URL resolution are switched off: they cost a large share of its time
and the normaliser sanitises every item once anyway. A malformed but readable feed still yields its items;
one that yields nothing raises ParseError with feedparser's reason.
"""

from __future__ import annotations

import calendar
import codecs
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Iterator

import feedparser

from .dates import parse_date
from .errors import ParseError
from .model import RawEntry

_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/avif")


_EUC_KR_NAMES = {"euc-kr", "euc_kr", "euckr", "cp949", "ms949", "uhc", "x-windows-949", "windows-949",
                 "ks_c_5601-1987", "ks_c_5601", "ksc5601", "ksc_5601", "korean"}
_PROLOG = re.compile(rb"^(\s*<\?xml[^>]*?encoding\s*=\s*)([\"'])([A-Za-z0-9._:-]+)\2", re.IGNORECASE)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)


def charset_of(content_type: str | None) -> str | None:
    match = _CHARSET.search(content_type or "")
    return match.group(1).lower() if match else None


def decode_document(body: bytes, declared: str | None = None) -> str:
    """Bytes of an XML or JSON document -> text, right for Korean sources.

    Order: a byte-order mark; the HTTP charset, else the XML prolog's encoding; else strict UTF-8, then CP949.
    EUC-KR is read as CP949, its superset, because Korean CMSs that declare EUC-KR emit CP949's extra
    syllables (똠, 햏, …) that a strict EUC-KR decoder rejects.
    """
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if body.startswith(bom):
            return body[len(bom):].decode(codec, errors="replace")
    if declared is None:
        match = _PROLOG.match(body[:200])
        declared = match.group(3).decode("ascii").lower() if match else None
    if declared in _EUC_KR_NAMES:
        return body.decode("cp949", errors="replace")
    if declared and declared not in ("utf-8", "utf8"):
        try:
            return body.decode(declared)
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown label: fall back to what the bytes say
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return body.decode("cp949")
    except UnicodeDecodeError:
        return body.decode("utf-8", errors="replace")


def to_utf8_xml(body: bytes, declared: str | None = None) -> bytes:
    """The document re-encoded as UTF-8, its prolog saying so, for a parser that trusts the prolog."""
    text = decode_document(body, declared)
    data = text.encode("utf-8")
    return _PROLOG.sub(lambda m: m.group(1) + m.group(2) + b"utf-8" + m.group(2), data, count=1)


_ENTITY_DECLARATION = re.compile(rb"<!DOCTYPE[^\[>]*\[.*?<!ENTITY", re.IGNORECASE | re.DOTALL)


def refuse_entities(data: bytes, where: str = "document") -> None:
    """No feed needs its own entity declarations; they are how XML bombs and external-entity attacks work.

    Expat already caps entity amplification and never reads external entities, but feedparser then falls back
    to a lenient parser that yields garbage items; refusing up front gives a clear reason instead.
    """
    if _ENTITY_DECLARATION.search(data[:65536]):
        raise ParseError(f"{where} declares XML entities (an XML bomb or an external entity): refused")


@dataclass(frozen=True)
class FeedDocument:
    entries: list[RawEntry]
    built_at: datetime | None  # the feed's own time (RSS lastBuildDate or pubDate, Atom updated, JSON Feed none)


def parse_feed(body: bytes, *, content_type: str | None = None, timezone: tzinfo = UTC) -> list[RawEntry]:
    """`timezone` reads dates that name no zone ("2022-11-18 16:55:02" in a pubDate): the site's."""
    return parse_feed_document(body, content_type=content_type, timezone=timezone).entries


def parse_feed_document(body: bytes, *, content_type: str | None = None, timezone: tzinfo = UTC) -> FeedDocument:
    """The feed's entries and its own time, against which the entries' times can be checked."""
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head in (b"{", b"["):
        return FeedDocument(parse_json_feed(decode_document(body, charset_of(content_type)).encode("utf-8"),
                                            timezone=timezone), None)
    utf8 = to_utf8_xml(body, charset_of(content_type))
    refuse_entities(utf8, "feed")
    parsed = feedparser.parse(utf8, sanitize_html=False, resolve_relative_uris=False,
                              response_headers={"content-type": "application/xml; charset=utf-8"})
    if not parsed.entries:
        if parsed.get("bozo"):
            raise ParseError(f"not a readable feed: {parsed.get('bozo_exception')}")
        if not parsed.get("version"):
            raise ParseError("not a feed: no RSS, Atom or JSON Feed document found")
    feed = parsed.get("feed") or {}
    built_at = _entry_date(feed, "updated", timezone) or _entry_date(feed, "published", timezone)
    return FeedDocument([_from_feedparser(e, timezone) for e in parsed.entries], built_at)


def _entry_date(e: Any, key: str, timezone: tzinfo) -> datetime | None:
    """Our reading of the raw string first (Korean forms, no zone = the site's), then feedparser's.

    dict.get: FeedParserDict.get would fall back from updated to published with a DeprecationWarning.
    """
    raw = dict.get(e, key)
    if raw and (value := parse_date(raw, timezone)) is not None:
        return value.astimezone(UTC)
    parsed = dict.get(e, key + "_parsed")
    return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC) if parsed else None


def _from_feedparser(e: Any, timezone: tzinfo) -> RawEntry:
    content = ""
    for part in e.get("content") or ():
        if part.get("value"):
            content = part["value"]
            break
    guid = e.get("id") or None
    # RSS guids default to isPermaLink="true"; feedparser reports guidislink when the guid is the link.
    is_trusted = bool(guid) and not (e.get("guidislink") and guid == e.get("link"))
    author = e.get("author_detail") or {}
    return RawEntry(
        guid=guid,
        is_guid_trusted=is_trusted,
        url=e.get("link") or None,
        title=e.get("title") or "",
        summary_html=e.get("summary") or "",
        content_html=content,
        byline=author.get("name") or e.get("author") or None,
        author_email=author.get("email") or None,
        categories=tuple(t["term"] for t in e.get("tags") or () if t.get("term")),
        image_url=_feedparser_image(e),
        published_at=_entry_date(e, "published", timezone),
        updated_at=_entry_date(e, "updated", timezone),
    )


def _feedparser_image(e: Any) -> str | None:
    for enclosure in e.get("enclosures") or ():
        if (enclosure.get("type") or "").lower() in _IMAGE_TYPES and enclosure.get("href"):
            return enclosure["href"]
    for media in [*(e.get("media_content") or ()), *(e.get("media_thumbnail") or ())]:
        if media.get("url") and (media.get("medium") in (None, "image") or "image" in (media.get("type") or "")):
            return media["url"]
    for link in e.get("links") or ():
        if link.get("rel") == "enclosure" and (link.get("type") or "").lower() in _IMAGE_TYPES:
            return link.get("href")
    return None


def _date(value: Any, where: str, timezone: tzinfo) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ParseError(f"{where}: a date must be a string, not {type(value).__name__}")
    parsed = parse_date(value, timezone)
    if parsed is None:
        raise ParseError(f'{where}: "{value}" is not a date')
    return parsed.astimezone(UTC)


def parse_json_feed(body: bytes, *, timezone: tzinfo = UTC) -> list[RawEntry]:
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ParseError(f"not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith("https://jsonfeed.org/version/"):
        raise ParseError("not a JSON Feed: no jsonfeed.org version")
    items = doc.get("items")
    if not isinstance(items, list):
        raise ParseError("JSON Feed has no items array")
    feed_authors = doc.get("authors") or ([doc["author"]] if isinstance(doc.get("author"), dict) else [])
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        authors = item.get("authors") or ([item["author"]] if isinstance(item.get("author"), dict) else feed_authors)
        first = authors[0] if authors and isinstance(authors[0], dict) else {}
        out.append(RawEntry(
            guid=str(item["id"]) if item.get("id") not in (None, "") else None,
            is_guid_trusted=True,
            url=item.get("url") or None,
            title=str(item.get("title") or ""),
            summary_html=str(item.get("summary") or ""),
            content_html=str(item.get("content_html") or item.get("content_text") or ""),
            byline=first.get("name"),
            author_email=None,
            categories=tuple(str(t) for t in item.get("tags") or ()),
            image_url=item.get("image") or item.get("banner_image") or None,
            published_at=_date(item.get("date_published"), f"items[{i}].date_published", timezone),
            updated_at=_date(item.get("date_modified"), f"items[{i}].date_modified", timezone),
        ))
    return out


def parse_jsonl(body: bytes, declared: str | None = None, *, timezone: tzinfo = UTC) -> list[RawEntry]:
    """A CMS export: one article object per line. A bad line is skipped and reported, never fatal."""
    entries, errors = parse_jsonl_lines(body, declared, timezone=timezone)
    if not entries and errors:
        raise ParseError(f"no readable line; first error: {errors[0]}")
    return entries


def parse_jsonl_lines(body: bytes, declared: str | None = None, *,
                      timezone: tzinfo = UTC) -> tuple[list[RawEntry], list[str]]:
    entries: list[RawEntry] = []
    errors: list[str] = []
    for number, line in _lines(body, declared):
        try:
            entries.append(_from_jsonl(json.loads(line), number, timezone))
        except json.JSONDecodeError as exc:
            errors.append(f"line {number}: not JSON ({exc.msg})")
        except ParseError as exc:
            errors.append(str(exc))
    return entries, errors


def _lines(body: bytes, declared: str | None) -> Iterator[tuple[int, str]]:
    text = decode_document(body, declared)
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def _from_jsonl(obj: Any, number: int, timezone: tzinfo) -> RawEntry:
    where = f"line {number}"
    if not isinstance(obj, dict):
        raise ParseError(f"{where}: not a JSON object")
    if not obj.get("title"):
        raise ParseError(f"{where}: no title")
    tags = obj.get("tags") or []
    if not isinstance(tags, list):
        raise ParseError(f"{where}: tags must be an array")
    category = obj.get("category")
    views = obj.get("views")
    if views is not None and (not isinstance(views, int) or isinstance(views, bool) or views < 0):
        raise ParseError(f"{where}: views must be a whole number, not {views!r}")
    return RawEntry(
        guid=str(obj["id"]) if obj.get("id") not in (None, "") else None,
        is_guid_trusted=True,
        url=obj.get("url") or None,
        title=str(obj["title"]),
        summary_html=str(obj.get("summary") or ""),
        content_html=str(obj.get("content_html") or ""),
        byline=obj.get("byline") or None,
        author_email=obj.get("author_email") or obj.get("email") or None,
        categories=((str(category),) if category else ()) + tuple(str(t) for t in tags),
        image_url=obj.get("image") or None,
        published_at=_date(obj.get("published_at"), f"{where}.published_at", timezone),
        updated_at=_date(obj.get("updated_at"), f"{where}.updated_at", timezone),
        views=views,
    )
