"""Parsers of the `html` source kind, a newsroom's own website: bytes in, data out, no I/O.

- `parse_sitemap`: <urlset> (plain or Google News) and <sitemapindex> -> `SitemapEntry`s, newest first.
- `parse_link_page`: the article links of a section/list page.
- `parse_article_page`: one article page -> `RawEntry`, trusting JSON-LD first, then OpenGraph/`article:*` meta
  and the page's own markup, then trafilatura (run only when nothing else gave a body).

The body HTML stays untrusted (the normaliser sanitises it once) but boilerplate is cut here: copyright
lines, share buttons, related-article lists, ads and the reporter box, whose name and email become the byline.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from html import escape
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit
from xml.etree.ElementTree import ParseError as XmlSyntaxError

import lxml.html
import trafilatura
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_xml_fromstring
from lxml import etree

from .dates import KOREAN_DATE, parse_date
from .errors import ParseError
from .model import RawEntry
from .bylines import KOREAN_ROLES, byline_text, parse_byline
from .normalise import EMAIL

# "입력 2022.11.18 16:55 | 수정 …": 입력/등록 = published, 승인 (approved) when nothing else, 수정 = modified.
_LABELLED = re.compile(r"(기사\s*입력|최초\s*입력|입력|등록|승인|최종\s*수정|수정|업데이트)\s*(?:일시|시간)?\s*[:：]?\s*"
                       r"(?=((?:19|20)\d{2}.{0,36}))")  # a lookahead: "입력 … 수정 …" are two matches
# A line of boilerplate: starts like a copyright notice, or holds a phrase only such notices use.
_COPYRIGHT = re.compile(r"^[\s\[<(]*(?:저작권자|copyright\b|[ⓒ©]|\(c\)\s)|무단\s*(?:전재|복제|배포)|재배포\s*금지"
                        r"|AI\s*학습|all rights reserved", re.IGNORECASE)
_RELATED = re.compile(r"^[\s\[【<]*(?:관련\s*(?:기사|뉴스)|추천\s*기사|함께\s*(?:보면|읽으면)|related\s+(?:articles|news|stories))",
                      re.IGNORECASE)
# class/id names of things that are never article text; matched as a word inside names like "article-share".
_BOILERPLATE_NAME = re.compile(
    r"(?:^|[\s_-])(?:ads?|adv|advert\w*|banner|dable|taboola|share|sharing|sns|social|related|relation|recommend\w*"
    r"|copyright|byline|reporter|writer|journalist|tags?|keywords?|comments?|reply|print|subscribe|btns?|util)\d*"
    r"(?=[\s_-]|$)", re.IGNORECASE)
_REPORTER_BOX = re.compile(r"(?:^|[\s_-])(?:byline|reporter|writer|journalist|author)(?=[\s_-]|$)", re.IGNORECASE)
# One whole class/id token of page chrome ("gnb", "user-nav", "footer-menu"); "entry-header" is none.
_CHROME_NAME = re.compile(r"^(?:(?:site|top|main|sub|global|user)[-_])?(?:gnb|lnb|snb|nav|navbar|navigation|menu"
                          r"|allmenu|footer|header|breadcrumbs?|util|family[-_]?site)(?:[-_](?:wrap|area|box|inner|list"
                          r"|menu))?$", re.IGNORECASE)
_DROP_TAGS = frozenset({"script", "style", "noscript", "template", "form", "button", "input", "select", "textarea",
                        "nav", "aside", "footer", "header", "ins", "svg", "h1"})
_MEDIA_TAGS = frozenset({"img", "picture", "video", "audio", "iframe", "table", "br", "hr"})
_ARTICLE_LINK = re.compile(r"articleView|idxno=|/articles?/|[?&](?:aid|article_?id|news_?id|no|idx|seq)=\d"
                           r"|/news/\S*\d{3,}|/20\d{2}/\d{2}/\d{2}/|/\d{5,}(?:\.html?)?$", re.IGNORECASE)
_LIST_LINK = re.compile(r"articleList|/list\b|[?&]page=|/(?:section|category|tag|search|member|login)s?(?:[/?.]|$)",
                        re.IGNORECASE)
_URL_ID_KEYS = ("idxno", "aid", "article_id", "articleid", "news_id", "newsid", "no", "idx", "seq")
_BODY_XPATHS = (
    '//*[@itemprop="articleBody"]', '//*[@id="article-view-content-div"]', '//*[@id="articleBody"]',
    '//*[contains(concat(" ", normalize-space(@class), " "), " article-body ")]',
    '//*[contains(concat(" ", normalize-space(@class), " "), " news_cnt_detail_wrap ")]', "//article",
)
_ARTICLE_TYPES = frozenset({"NewsArticle", "Article", "ReportageNews", "AnalysisNewsArticle", "OpinionNewsArticle",
                            "BackgroundNewsArticle", "ReviewNewsArticle", "BlogPosting"})
_KOREAN_CODEC = re.compile(r"(?:x-)?(?:euc[-_]?kr|ks_c_5601(?:-1987)?|ksc5601|windows-949|cp949|uhc)", re.IGNORECASE)
_DECLARED = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)|<\?xml[^>]+encoding\s*=\s*["']([\w.:-]+)""",
                       re.IGNORECASE)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
# <br>s the cuts left at the start, at the end, or before a block closes.
ROLE_END = re.compile(rf"(?:{'|'.join(KOREAN_ROLES)}|reporter|correspondent)$", re.IGNORECASE)
_EDGE_BREAKS = re.compile(r"^(?:\s*<br\s*/?>)+|(?:<br\s*/?>\s*)+(?=</(?:p|div|li|td|blockquote|article)>|$)", re.I)


@dataclass(frozen=True)
class SitemapEntry:
    """One <url> of a urlset or, with `is_index`, one child sitemap of a sitemapindex."""

    loc: str
    lastmod: datetime | None = None
    published_at: datetime | None = None  # news:publication_date
    title: str | None = None  # news:title
    is_index: bool = False


def parse_sitemap(body: bytes, base_url: str, *, timezone: tzinfo = UTC) -> list[SitemapEntry]:
    """A sitemap -> entries with a date newest first, then the undated in document order.

    Read with defusedxml and DTDs forbidden: a sitemap never needs one, and refusing it stops XML bombs and
    external entities before any expansion. Dates without a zone (a bare lastmod day) are read in `timezone`.
    """
    try:
        root = safe_xml_fromstring(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ParseError(f"sitemap {base_url}: refused a DTD or entity declaration (XML bomb or external "
                         f"entity?): {exc!r}") from None
    except XmlSyntaxError as exc:
        raise ParseError(f"sitemap {base_url}: not well-formed XML: {exc}") from None
    kind = _local(root.tag)
    if kind not in ("urlset", "sitemapindex"):
        raise ParseError(f"sitemap {base_url}: root element is <{kind}>, not <urlset> or <sitemapindex>")
    entries = []
    for item in root:  # direct children only: an <image:loc> is no <loc>
        fields = {_local(child.tag): (child.text or "").strip() for child in item}
        news = next((child for child in item if _local(child.tag) == "news"), None)
        news_fields = {_local(node.tag): (node.text or "").strip() for node in news.iter()} if news is not None else {}
        if _local(item.tag) not in ("url", "sitemap") or not fields.get("loc"):
            continue
        entries.append(SitemapEntry(
            loc=urljoin(base_url, fields["loc"]), lastmod=parse_date(fields.get("lastmod", ""), timezone),
            published_at=parse_date(news_fields.get("publication_date", ""), timezone),
            title=news_fields.get("title") or None, is_index=kind == "sitemapindex"))
    undated = datetime.min.replace(tzinfo=UTC)  # last, and in document order: the sort is stable
    return sorted(entries, key=lambda e: e.published_at or e.lastmod or undated, reverse=True)


def parse_link_page(body: bytes, base_url: str, *, encoding: str | None = None) -> list[str]:
    """The absolute article URLs of a section/list page, deduplicated, in page order.

    A link counts when it stays on base_url's host ("www." ignored), is http(s), and its path or query looks
    like an article of a news CMS: `articleView`, `idxno=`, `/article(s)/`, `aid=`/`article_id=`/`no=` with a
    number, `/news/` with a number, a `/YYYY/MM/DD/` path, or a path ending in a 5+ digit id; list, section,
    tag, search and paging links do not. Links inside navigation, menus, headers, footers and sidebars (<nav>,
    <footer>, <aside>, <header> outside an <article>, or ids/classes such as gnb, lnb, menu, footer, util) are
    skipped, as are javascript:, mailto: and #anchors. The fragment is dropped before deduplicating.
    """
    tree = _html_tree(_decode(body, encoding), base_url)
    host, seen, links = _host(base_url), set(), []
    for anchor in tree.iter("a"):
        href = (anchor.get("href") or "").strip()
        if not href or href.startswith("#") or _in_chrome(anchor):
            continue
        absolute = urljoin(base_url, href).split("#", 1)[0]
        parts = urlsplit(absolute)
        where = parts.path + ("?" + parts.query if parts.query else "")
        if (parts.scheme not in ("http", "https") or _host(absolute) != host or not _ARTICLE_LINK.search(where)
                or _LIST_LINK.search(where) or absolute in seen):
            continue
        seen.add(absolute)
        links.append(absolute)
    return links


def parse_article_page(body: bytes, url: str, *, timezone: tzinfo, encoding: str | None = None) -> RawEntry:
    """One article page -> RawEntry; `encoding` is the HTTP header's charset, if any. Each field comes from the
    first of: JSON-LD (NewsArticle and kin, also in @graph or lists), OpenGraph/`article:*`/Korean CMS meta, the
    page itself (body container, reporter box, "입력/수정" lines, <title>), trafilatura's extraction."""
    tree = _html_tree(_decode(body, encoding), url)
    ld, meta = _json_ld(tree), _metas(tree)
    etree.strip_elements(tree, etree.Comment, "script", "style", "noscript", "template", with_tail=False)
    page_text = " ".join(t.strip() for t in tree.itertext() if t.strip())
    site = _first(meta, "og:site_name", "application-name")
    page_title, (box_byline, box_email) = _page_title(tree, site), _reporter_box(tree)
    links = [_one(ld.get("url")), _one(ld.get("mainEntityOfPage"), "@id", "url"), _first(meta, "og:url"),
             *tree.xpath('//link[@rel="canonical"]/@href')]
    content, body_byline, body_email, found = _content(tree, ld, url)  # last: trafilatura may change the tree

    candidates = [_one(ld.get("headline")), _one(ld.get("name")), _first(meta, "og:title", "twitter:title"),
                  found.get("title"), page_title]
    title = next((t for t in candidates if t), "")
    if site and title != site:  # "제목 - 한빛일보" -> "제목"
        title = re.sub(rf"\s*[-|:<>·]+\s*{re.escape(site)}\s*$", "", title).strip()
    if not title:
        raise ParseError(f"{url}: no article found")
    persons = [a for a in _as_list(ld.get("author")) if not (isinstance(a, dict) and a.get("@type") == "Organization")]
    meta_authors = [a for key in ("article:author", "dable:author", "author") for a in meta.get(key, [])
                    if "://" not in a and a != site]  # article:author is often a Facebook page, author the paper
    bylines = (", ".join(_values(persons, "name")), *meta_authors, box_byline, body_byline, found.get("author"))
    labelled = _labelled_dates(page_text, timezone)
    published = (_date([_one(ld.get("datePublished")), _first(meta, "article:published_time", "datepublished")],
                       timezone) or labelled.get("published") or labelled.get("approved"))
    if not published and (day := parse_date(found.get("date", ""), timezone)):
        # htmldate knows the day only; a time on that day in the page text makes it exact.
        timed = (parse_date(m.group(), timezone) for m in KOREAN_DATE.finditer(page_text) if m["h"])
        published = next((d for d in timed if d and d.date() == day.date()), day)
    updated = _date([_one(ld.get("dateModified")), _first(meta, "article:modified_time", "og:updated_time",
                                                          "datemodified")], timezone) or labelled.get("updated")
    keywords = ld.get("keywords")
    tags = (_values(keywords.split(",") if isinstance(keywords, str) else keywords) or meta.get("article:tag")
            or (_first(meta, "news_keywords") or "").split(","))
    categories = [*(_values(ld.get("articleSection")) or meta.get("article:section", [])), *tags]
    # An og:url pointing at the home page is a common CMS slip: such a link is no article's address.
    canonical = next((urljoin(url, u) for u in links if u and urlsplit(urljoin(url, u)).path.strip("/")), url)
    image = _one(ld.get("image"), "url", "contentUrl") or _first(meta, "og:image", "twitter:image")
    summary = _one(ld.get("description")) or _first(meta, "og:description", "twitter:description", "description")
    guid = _guid([*_values(ld.get("identifier"), "value", "@value"), *meta.get("dable:item_id", [])], canonical)
    return RawEntry(
        guid=guid, is_guid_trusted=guid is not None, url=canonical, title=title,
        summary_html=escape(summary or "", quote=False), content_html=content,
        byline=next(filter(None, (byline_text(parse_byline(b)) for b in bylines)), None),
        author_email=(_one([p for p in persons if isinstance(p, dict)], "email") or "").removeprefix("mailto:")
        or box_email or body_email,
        categories=tuple(dict.fromkeys(c.strip() for c in categories if c.strip())),
        image_url=urljoin(url, image) if image else None, published_at=published, updated_at=updated)


def _content(tree: Any, ld: dict[str, Any], url: str) -> tuple[str, str | None, str | None, dict[str, str]]:
    """The body HTML, the byline and email of a reporter line in it, and what trafilatura found (if it ran):
    the body container, else JSON-LD articleBody, else trafilatura on the already parsed tree."""
    element = next((e for xpath in _BODY_XPATHS for e in tree.xpath(xpath) if e.text_content().strip()), None)
    if element is not None and (cleaned := _clean_body(element))[0]:
        return *cleaned, {}
    if text := _one(ld.get("articleBody")):
        if not re.search(r"<(?:p|br|div)\b", text):
            text = "".join(f"<p>{escape(line.strip())}</p>" for line in text.splitlines() if line.strip())
        if (cleaned := _clean_body(lxml.html.fragment_fromstring(text, create_parent="div")))[0]:
            return *cleaned, {}
    extracted = trafilatura.extract(tree, url=url, output_format="html", with_metadata=True,
                                    include_comments=False, include_images=True, include_links=True)
    if not extracted:
        return "", None, None, {}
    document = lxml.html.document_fromstring(extracted)
    found = {m.get("name", ""): m.get("content", "") for m in document.iter("meta") if m.get("content")}
    return *_clean_body(document.body), found


def _labelled_dates(page_text: str, timezone: tzinfo) -> dict[str, datetime]:
    """The first date after each label: published (입력, 등록), approved (승인), updated (수정)."""
    dates: dict[str, datetime] = {}
    for match in _LABELLED.finditer(page_text):
        label = ("updated" if "수정" in match[1] or "업데이트" in match[1]
                 else "approved" if match[1] == "승인" else "published")
        if label not in dates and (when := parse_date(match[2], timezone)):
            dates[label] = when
    return dates


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _decode(body: bytes, encoding: str | None) -> str:
    """The HTTP charset, else the page's own declaration, else strict UTF-8, else CP949. EUC-KR is read as
    CP949, its superset: real "EUC-KR" pages use CP949's extra syllables (똠, 햏)."""
    if body.startswith(codecs.BOM_UTF8):
        return body[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace")
    declared = _DECLARED.search(body[:4096])
    names = [encoding, (declared[1] or declared[2]).decode("ascii") if declared else None, "utf-8", "cp949"]
    for name in filter(None, names):
        try:
            return body.decode("cp949" if _KOREAN_CODEC.fullmatch(name.strip()) else name.strip())
        except (LookupError, UnicodeDecodeError):  # unknown or wrong declaration: try the next
            continue
    return body.decode("utf-8", errors="replace")


def _html_tree(text: str, where: str) -> Any:
    try:  # lxml refuses a str that still carries an XML encoding declaration
        return lxml.html.document_fromstring(_XML_DECLARATION.sub("", text, count=1))
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(f"{where}: not readable HTML: {exc}") from None


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").removeprefix("www.")


def _names(element: Any) -> str:
    return f'{element.get("class") or ""} {element.get("id") or ""}'


def _in_chrome(anchor: Any) -> bool:
    ancestors = list(anchor.iterancestors())
    in_article = any(a.tag == "article" for a in ancestors)
    return any(a.tag in ("nav", "footer", "aside") or (a.tag == "header" and not in_article)
               or a.get("role") == "navigation" or any(map(_CHROME_NAME.match, _names(a).split()))
               for a in ancestors)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _values(value: Any, *keys: str) -> list[str]:
    """The strings of a JSON-LD value: a string, a number, an object (its first of `keys`) or a list of them."""
    out = []
    for item in _as_list(value):
        if isinstance(item, dict):
            item = next((item[k] for k in keys if item.get(k)), None)
        if isinstance(item, (str, int, float)) and not isinstance(item, bool) and str(item).strip():
            out.append(" ".join(str(item).split()))
    return out


def _one(value: Any, *keys: str) -> str | None:
    return next(iter(_values(value, *keys)), None)


def _json_ld(tree: Any) -> dict[str, Any]:
    """The first article object of the page's JSON-LD; unreadable blocks (common in CMS templates) are skipped."""
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        try:  # strict=False: CMSs leave raw newlines inside strings
            document = json.loads(script.text or "", strict=False)
        except json.JSONDecodeError:
            continue
        nodes = _as_list(document)
        for node in nodes:  # grows while walked: the objects of each @graph are appended
            if isinstance(node, dict):
                types = {str(t).rsplit("/", 1)[-1].rsplit(":", 1)[-1] for t in _as_list(node.get("@type"))}
                if types & _ARTICLE_TYPES:
                    return node
                nodes.extend(_as_list(node.get("@graph")))
    return {}


def _metas(tree: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for meta in tree.iter("meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").strip().lower()
        if key and (content := " ".join((meta.get("content") or "").split())):
            out.setdefault(key, []).append(content)
    return out


def _first(meta: dict[str, list[str]], *keys: str) -> str | None:
    return next((meta[k][0] for k in keys if meta.get(k)), None)


def _date(texts: list[str | None], timezone: tzinfo) -> datetime | None:
    return next((d for d in (parse_date(t or "", timezone) for t in texts) if d), None)


def _page_title(tree: Any, site: str | None) -> str:
    """<title>, or the <h1> it starts with (the <title> usually adds the site's name), or an <h1>."""
    title = " ".join((tree.findtext(".//title") or "").split())
    headings = [" ".join(h.text_content().split()) for h in tree.iter("h1")]
    return next((h for h in headings if h and title.startswith(h)), None) or title or next(
        (h for h in headings if h and h != site), "")


def _guid(ids: list[str], url: str) -> str | None:
    """A CMS id: from JSON-LD or dable meta, else from the URL's query (idxno=…). A bare number is unique only
    within its site, so it is prefixed with the host; an id that is already a URL or URN is kept as it is."""
    query = dict(parse_qsl(urlsplit(url).query))
    value = next(iter(ids), None) or next((query[k] for k in _URL_ID_KEYS if query.get(k)), None)
    if not value:
        return None
    return value if re.match(r"^(?:[a-z][a-z0-9+.-]*://|urn:|tag:)", value, re.IGNORECASE) else f"{_host(url)}:{value}"


def _strip_lines(text: str) -> tuple[str, str | None, str | None]:
    """`text` without its boilerplate lines (copyright notices, reporter lines), and the byline and email of
    a reporter line ("김하늘 기자 sky@…", "/김하늘 기자") among them."""
    kept, byline, email = [], None, None
    for line in text.splitlines(keepends=True):
        plain = " ".join(line.split())
        emails = EMAIL.findall(plain)
        rest = EMAIL.sub("", plain).strip(" /|()[]<>=,·:-")
        if len(plain) > 200 or not (_COPYRIGHT.search(plain) or (emails and not rest)
                                    or (len(rest) <= 40 and ROLE_END.search(rest))):
            kept.append(line)
        elif not _COPYRIGHT.search(plain):
            byline, email = byline or byline_text(parse_byline(rest)), email or next(iter(emails), None)
    return "".join(kept), byline, email


def _reporter_box(tree: Any) -> tuple[str | None, str | None]:
    """Byline and email from the first reporter box of the page (class or id: byline, reporter, writer…)."""
    for box in tree.iter():
        if isinstance(box.tag, str) and _REPORTER_BOX.search(_names(box)):
            if byline := next(filter(None, (_strip_lines(t)[1] for t in box.itertext())), None):
                return byline, next(iter(EMAIL.findall(" ".join(box.itertext()))), None)
    return None, None


def _clean_body(element: Any) -> tuple[str, str | None, str | None]:
    """The inner HTML of the body container without boilerplate, or "" when no text is left; and the byline and
    email of a reporter line found in it. Changes `element`."""
    byline = email = None
    for node in list(element.iterdescendants()):
        if not isinstance(node.tag, str) or node.tag in _DROP_TAGS or _BOILERPLATE_NAME.search(_names(node)):
            node.drop_tree()
        elif len(text := node.text_content().strip()) <= 40 and _RELATED.match(text):
            follower = node.getnext()  # a "관련기사" heading and the list under it
            if follower is not None and follower.tag in ("ul", "ol", "div", "dl"):
                follower.drop_tree()
            node.drop_tree()
    for node in element.iter():
        for attribute in ("text", "tail") if node is not element else ("text",):
            if value := getattr(node, attribute):
                kept, found_byline, found_email = _strip_lines(value)
                if kept != value:
                    setattr(node, attribute, kept if kept.strip() else None)
                byline, email = byline or found_byline, email or found_email
    for node in reversed(list(element.iterdescendants())):  # what the cuts left empty
        if node.tag not in _MEDIA_TAGS and not node.text_content().strip() and not any(
                d.tag in _MEDIA_TAGS - {"br", "hr"} for d in node.iterdescendants()):
            node.drop_tree()
    if not element.text_content().strip():
        return "", byline, email
    inner = escape(element.text or "", quote=False) + "".join(
        lxml.html.tostring(child, encoding="unicode") for child in element)
    return _EDGE_BREAKS.sub("", inner.strip()).strip(), byline, email
