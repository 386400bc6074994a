"""Normalising: RawEntry -> Article. Pure functions; the clock comes in as `fetched_at`.

- Text XML cannot carry (C0 controls but tab, LF and CR; U+FFFE/U+FFFF; lone surrogates) is removed from every
  field, and so are character references to it, complete (`&#3;`) or cut off where a CMS truncated a summary
  (`…&#1`): one upstream byte must never make a feed unrenderable.
- Entities: text escaped twice at the source (`&amp;lt;우영우&amp;gt;`) is unescaped once, the same way in titles,
  summaries and bodies.
- Identity: a trusted guid (a URL-shaped guid compared as a canonical URL), else the canonical URL (tracking
  parameters dropped: `utm_*`, `fbclid`, `gclid` and a configurable list), else a content hash; the article id is
  a short stable hash of that identity, safe in URLs.
- Content: sanitised with nh3 to the allow-list below; relative URLs resolved against the article URL.
- Summary: plain text, cut on a character budget at a sentence or word boundary (Korean has spaces between
  words, so a word boundary is a space; a sentence ends in 다. 요. . ! ?).
- Byline: the reporters as data (`bylines`): from the author field, else from the text's lead or last line; the
  content hash, which decides whether a sighting is an edit, covers only the story (title, body, summary,
  byline, image), not where it was seen (category, tags).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from datetime import datetime
from typing import Mapping
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import nh3

from .bylines import byline_in_text, byline_text, merge_bylines, parse_byline
from .model import Article, RawEntry

SUMMARY_BUDGET = 200

# Tags and attributes that survive sanitising. No script, style, forms or event handlers; iframes only when
# their src is an embed URL on one of VIDEO_HOSTS (others lose their src and are then dropped).
ALLOWED_TAGS = frozenset({
    "iframe",
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dl", "dt", "em",
    "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li", "mark", "ol", "p",
    "pre", "q", "s", "small", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr",
    "u", "ul",
})
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "iframe": {"src", "width", "height", "title", "allowfullscreen"},
}
VIDEO_HOSTS = frozenset({
    "www.youtube.com", "youtube.com", "www.youtube-nocookie.com", "player.vimeo.com", "tv.naver.com",
    "play-tv.kakao.com", "tv.kakao.com", "serviceapi.nmv.naver.com",
})
_EMPTY_IFRAME = re.compile(r"<iframe(?![^>]*\ssrc=)[^>]*>.*?</iframe>", re.IGNORECASE | re.DOTALL)
_FIRST_IMG = re.compile(r'<img\b[^>]*\ssrc="(https?://[^"]+)"', re.IGNORECASE)
URL_SCHEMES = frozenset({"http", "https", "mailto"})
TRACKING_PARAMETERS = frozenset({"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "ref_src", "igshid"})
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NUMERIC_REFERENCE = re.compile(r"&#(?:([xX][0-9a-fA-F]{1,8})|([0-9]{1,10}))(;?)")
_DOUBLE_ESCAPED = re.compile(r"&amp;(#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[a-zA-Z][a-zA-Z0-9]{1,9};)")
_SENTENCE_END = re.compile(r"(?<=[.!?다요])[\"'”’)]?\s")
_SPACES = re.compile(r"\s+")


def is_xml_char(code: int) -> bool:
    return code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 forbids."""
    return _NOT_XML.sub("", text)


def xml_clean(text: str) -> str:
    """`text` without what XML 1.0 cannot carry, written as characters or as numeric references; a reference cut
    off at the end of the text (a truncated summary) goes too."""
    def reference(match: re.Match[str]) -> str:
        if not match[3] and match.end() == len(text):
            return ""  # "…&#1": cut off mid-reference
        try:
            code = int(match[1][1:], 16) if match[1] else int(match[2])
        except ValueError:
            return ""
        return match[0] if is_xml_char(code) else ""

    if "&#" in text:
        text = _NUMERIC_REFERENCE.sub(reference, text)
    return xml_text(text)


def unescape_twice_escaped(text: str) -> str:
    """`&amp;lt;` -> `&lt;`: markup that a source escaped once too often, undone once."""
    return _DOUBLE_ESCAPED.sub(r"&\1", text) if "&amp;" in text else text


def clean_entry(entry: RawEntry) -> RawEntry:
    """Every text of an entry made XML-safe, and its HTML texts unescaped once where they were escaped twice."""
    def text(value: str | None, *, is_html: bool = False) -> str | None:
        if value is None:
            return None
        value = xml_clean(value)
        return unescape_twice_escaped(value) if is_html else value

    return RawEntry(guid=text(entry.guid), is_guid_trusted=entry.is_guid_trusted, url=text(entry.url),
                    title=text(entry.title, is_html=True) or "", summary_html=text(entry.summary_html, is_html=True) or "",
                    content_html=text(entry.content_html, is_html=True) or "", byline=text(entry.byline),
                    author_email=text(entry.author_email), categories=tuple(xml_clean(c) for c in entry.categories),
                    image_url=text(entry.image_url), published_at=entry.published_at, updated_at=entry.updated_at,
                    views=entry.views)


def sanitise_html(fragment: str, base_url: str | None = None) -> str:
    """Untrusted HTML -> HTML safe to show in a reader's browser, with absolute link and image URLs."""
    if not fragment:
        return ""
    def resolve(tag: str, attribute: str, value: str) -> str | None:
        if attribute in ("href", "src", "cite"):
            absolute = urljoin(base_url, value.strip()) if base_url else value.strip()
            parts = urlsplit(absolute)
            if parts.scheme.lower() not in URL_SCHEMES:
                return None
            if tag == "iframe" and (parts.scheme != "https" or parts.hostname not in VIDEO_HOSTS):
                return None
            return absolute
        return value

    cleaned = nh3.clean(fragment, tags=set(ALLOWED_TAGS), attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
                        url_schemes=set(URL_SCHEMES), link_rel="noopener noreferrer", attribute_filter=resolve,
                        strip_comments=True)
    if "<iframe" in cleaned:
        cleaned = _EMPTY_IFRAME.sub("", cleaned)
    return cleaned.strip()


def html_to_text(fragment: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed."""
    if not fragment:
        return ""
    spaced = re.sub(r"(?i)<\s*(br|/p|/div|/li|/h[1-6])\b[^>]*>", " ", fragment)
    return _SPACES.sub(" ", html.unescape(nh3.clean(spaced, tags=set()))).strip()


def cut_text(text: str, budget: int = SUMMARY_BUDGET) -> str:
    """At most `budget` characters, ending at a sentence end if one is in the second half, else a space."""
    text = _SPACES.sub(" ", text).strip()
    if len(text) <= budget:
        return text
    window = text[: budget + 1]
    ends = [m.end() for m in _SENTENCE_END.finditer(window) if m.end() >= budget // 2]
    if ends:
        return window[: ends[-1]].rstrip()
    space = window.rfind(" ", budget // 2, budget - 1)  # room for the ellipsis
    cut = window[:space] if space > 0 else text[: budget - 1]
    return cut.rstrip(" ,.;:·") + "…"


def clean_byline(byline: str | None) -> str | None:
    """A byline as a source gave it (text or HTML) -> the reporters as readers see them, roles kept."""
    return byline_text(parse_byline(html_to_text(byline))) if byline else None


def canonical_url(url: str | None, tracking: frozenset[str] = TRACKING_PARAMETERS) -> str | None:
    """Absolute http(s) URL without tracking parameters (`utm_*` and `tracking`) or fragment; None if it is not one."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if not k.lower().startswith("utm_") and k.lower() not in tracking])
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", query, ""))


def article_id(identity: str) -> str:
    """12 characters of base32 over SHA-256: stable, URL-safe, collision-free at newsroom scale."""
    digest = hashlib.sha256(identity.encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii")[:12].lower()


def _plausible(moment: datetime | None) -> datetime | None:
    """A date a news item can have: not a CMS's empty date (0001-01-01, 1900-01-01), which means none."""
    return moment if moment is not None and moment.year > 1900 else None


def _hash(*parts: object) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(repr(part).encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def normalise(entry: RawEntry, *, source_url: str | None, default_category: str | None,
              category_map: Mapping[str, str], fetched_at: datetime,
              tracking: frozenset[str] = TRACKING_PARAMETERS) -> Article:
    entry = clean_entry(entry)
    url = canonical_url(urljoin(source_url, entry.url) if source_url and entry.url else entry.url, tracking)
    base = url or source_url
    title = html_to_text(entry.title) or "(제목 없음)"
    content_html = sanitise_html(entry.content_html or entry.summary_html, base)
    text = html_to_text(entry.summary_html) or html_to_text(content_html)
    # A feed without author elements carries the byline in its text: the lead "[서울=뉴시스] 박진희 기자 =" or the
    # last line "홍길동 기자 hong@…". The author field, when there is one, wins.
    declared = parse_byline(html_to_text(entry.byline)) if entry.byline else ()
    in_text, text = byline_in_text(text)
    if not declared and not in_text and entry.summary_html and content_html:  # the body's last line, when needed
        in_text = byline_in_text(html_to_text(content_html))[0]
    reporters = merge_bylines(declared, in_text)
    summary = cut_text(text)
    byline = byline_text(reporters)

    category = default_category
    tags: list[str] = []
    mapped = False
    for term in entry.categories:
        term = term.strip()
        if not mapped and term in category_map:
            category, mapped = category_map[term], True
        elif term and term not in tags:
            tags.append(term)

    image = entry.image_url
    if not image:  # the lead image is the first picture of the body when the source names none
        first = _FIRST_IMG.search(content_html)
        image = html.unescape(first.group(1)) if first else None
    if image:
        image = urljoin(base, image) if base else image
        if urlsplit(image).scheme not in ("http", "https"):
            image = None

    published_at = _plausible(entry.published_at) or _plausible(entry.updated_at) or fetched_at
    updated_at = max(_plausible(entry.updated_at) or published_at, published_at)
    # What the story is, not where it was seen: another section's feed (category, tags) is no edit.
    content_hash = _hash(title, summary, content_html, byline, image)
    guid = (entry.guid or "").strip()
    if guid and entry.is_guid_trusted:
        is_url = guid.lower().startswith(("http://", "https://"))
        identity = "guid:" + ((canonical_url(guid, tracking) or guid) if is_url else guid)
    elif url:
        identity = "url:" + url
    else:
        identity = "hash:" + _hash(title, content_html)
    return Article(
        id=article_id(identity), identity=identity, guid=entry.guid, url=url, title=title, summary=summary,
        content_html=content_html, byline=byline, author_email=entry.author_email, category=category,
        tags=tuple(tags), image_url=image, published_at=published_at, updated_at=updated_at,
        content_hash=content_hash, external_views=entry.views, reporters=reporters,
    )
