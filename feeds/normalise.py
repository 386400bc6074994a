"""Normalising: RawEntry -> Article. Pure functions; the clock comes in as `fetched_at`.

- Identity: a trusted guid, else the canonical URL (tracking parameters dropped), else a content hash; the
  article id is a short stable hash of that identity, safe in URLs.
- Content: sanitised with nh3 to the allow-list below; relative URLs resolved against the article URL.
- Summary: plain text, cut on a character budget at a sentence or word boundary (Korean has spaces between
  words, so a word boundary is a space; a sentence ends in 다. 요. . ! ?).
- Byline: the reporter's name without the role word ("홍길동 기자" -> "홍길동").
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
_TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid|ref_src)$", re.IGNORECASE)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
ROLES = (r"(?:선임|수석|객원|인턴|수습|전문|사진|영상|취재)?기자|특파원|논설위원|편집위원|통신원|앵커|에디터|칼럼니스트"
          r"|reporter|correspondent")
ROLE_END = re.compile(rf"(?:{ROLES})$", re.IGNORECASE)
_CREDIT = re.compile(r"^(?:by\s+|(?:글|사진|영상|그래픽|취재|정리)(?:\s*[·/,]\s*(?:글|사진|영상|그래픽|취재|정리))*"
                     r"\s*[:=]?\s*)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?다요])[\"'”’)]?\s")
_SPACES = re.compile(r"\s+")


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


def parse_byline(text: str | None) -> str | None:
    """Reporter names without role words, comma-joined: "[한빛일보=홍길동·김철수 기자]" -> "홍길동, 김철수"."""
    text = re.sub(r"[\[\]()<>{}【】]", " ", EMAIL.sub(" ", text or ""))
    text = _CREDIT.sub("", text.rsplit("=", 1)[-1].strip())  # "매체=이름 기자", "사진=이름 기자"
    names: list[str] = []
    for part in re.split(r"\s*(?:[,·/&|;]|\s및\s|\sand\s)\s*", text):
        named = re.fullmatch(rf"(.*?)\s*(?:{ROLES})", part.strip(), re.IGNORECASE)
        # With a role word, the name is the word just before it ("한빛일보 홍길동 기자" -> "홍길동").
        name = named.group(1).split()[-1:] if named else part.split()
        if name and " ".join(name) not in names:
            names.append(" ".join(name))
    return ", ".join(names) or None


def clean_byline(byline: str | None) -> str | None:
    """A byline as a source gave it (text or HTML) -> the reporters' names."""
    return parse_byline(html_to_text(byline)) if byline else None


def canonical_url(url: str | None) -> str | None:
    """Absolute http(s) URL without tracking parameters or fragment; None if it is not one."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)])
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", query, ""))


def article_id(identity: str) -> str:
    """12 characters of base32 over SHA-256: stable, URL-safe, collision-free at newsroom scale."""
    digest = hashlib.sha256(identity.encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii")[:12].lower()


def _hash(*parts: object) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(repr(part).encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def normalise(entry: RawEntry, *, source_url: str | None, default_category: str | None,
              category_map: Mapping[str, str], fetched_at: datetime) -> Article:
    url = canonical_url(urljoin(source_url, entry.url) if source_url and entry.url else entry.url)
    base = url or source_url
    title = html_to_text(entry.title) or "(제목 없음)"
    content_html = sanitise_html(entry.content_html or entry.summary_html, base)
    summary = cut_text(html_to_text(entry.summary_html) or html_to_text(content_html))
    byline = clean_byline(entry.byline)

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

    published_at = entry.published_at or entry.updated_at or fetched_at
    updated_at = max(entry.updated_at or published_at, published_at)
    content_hash = _hash(title, summary, content_html, byline, entry.author_email, category, tuple(tags), image)
    if entry.guid and entry.is_guid_trusted:
        identity = "guid:" + entry.guid.strip()
    elif url:
        identity = "url:" + url
    else:
        identity = "hash:" + _hash(title, content_html)
    return Article(
        id=article_id(identity), identity=identity, guid=entry.guid, url=url, title=title, summary=summary,
        content_html=content_html, byline=byline, author_email=entry.author_email, category=category,
        tags=tuple(tags), image_url=image, published_at=published_at, updated_at=updated_at,
        content_hash=content_hash, external_views=entry.views,
    )
