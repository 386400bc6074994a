"""ninjs 3.1 (IPTC News in JSON) for partners: one article as a partner gets it, and a feed of them as a JSON list.

Spec and schema: https://iptc.org/std/ninjs/ (`http://www.iptc.org/std/ninjs/ninjs-schema_3.1.json#`). Pure functions
over `StoredArticle` and `Partner`; the item's body is `feeds.partners.partner_item`'s (full content or summary, images
as licensed, UTM, the attribution line), so ninjs says what the other formats say. What maps to what, and why, is in
docs/partners.md ("ninjs"). The traps handled here:
- 3.1 has no `bylines`: its schema rejects any key it does not name, so reporters go to `by` (the byline as readers see
  it, roles kept) and `people` (each name, with the role the byline gave as `rel`);
- the lead image is another news object (a picture), so it is an association with its own renditions, never a
  rendition of the text;
- a killed story is an item of its own `uri` with `pubStatus` canceled, its kill in `edNote` and no headline or body:
  a story withdrawn for legal reasons is not repeated in the notice that withdraws it;
- every text is made safe as `feeds.render` does it (no control characters, no lone surrogates), and the document
  escapes `<`, `>` and `&` as JSON escapes, so its bytes can sit inside an HTML `<script>` without closing it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo
from urllib.parse import quote, urlsplit, urlunsplit

from lxml import html as lxml_html

from templates import CATALOGUE

from .bylines import byline_text
from .model import HELD, KILLED, StoredArticle
from .normalise import xml_text
from .partners import Partner, attribution_line, partner_item
from .readership import Redirects
from .render import item_id
from .settings import Settings, SiteSettings

FORMAT = "ninjs"
SCHEMA_URI = "http://www.iptc.org/std/ninjs/ninjs-schema_3.1.json#"
STANDARD = {"name": "ninjs", "version": "3.1", "schema": SCHEMA_URI}
ODRL = "http://www.w3.org/ns/odrl/2/"  # the rights expression language of `rightsInfo.encodedRights`
KILL_WINDOW = timedelta(days=7)  # how long a killed story stays in partners' ninjs feeds as a canceled item
URGENT = 1  # ninjs urgency: 1 (highest) to 9; Gazette knows only "urgent", so the others are never invented
_BLOCKS = ("p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "figure", "figcaption", "br", "tr",
           "pre", "ul", "ol", "table")
# Written as JSON escapes: `<`, `>` and `&` (no `</script>` or `<!--` in the bytes), and the two line separators that
# end a line in JavaScript. str.replace, not str.translate: a translate table walks a megabyte char by char in Python.
_NETLOC = re.compile(r"[A-Za-z0-9.\-_~:@\[\]]+")  # host (with a port, userinfo) as RFC 3986 allows it, no escapes
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")  # "100%.jpg": a percent that starts no escape is one itself
_JSON_HTML_SAFE = (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def moment(when: datetime, timezone: tzinfo) -> str:
    """RFC 3339 in the site's zone, to the second (as the JSON Feed gives its dates)."""
    return when.replace(microsecond=0).astimezone(timezone).isoformat()


def as_link(url: str | None) -> str | None:
    """`url` as a `format: uri` field may hold it (RFC 3986: a Korean file name percent-encoded, an IDN host in
    punycode), or None when it is no absolute http(s) URL."""
    if not url or any(ord(c) < 0x20 or c == "\x7f" for c in url):
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    def encoded(text: str) -> str:
        return quote(_LONE_PERCENT.sub("%25", text), safe="/:@!$&'()*+,;=%~-._?")

    try:  # a host IDNA refuses, or a lone surrogate UTF-8 cannot write: no link
        host = parts.netloc if parts.netloc.isascii() else parts.netloc.encode("idna").decode("ascii")
        rest = encoded(parts.path), encoded(parts.query), encoded(parts.fragment)
    except UnicodeError:
        return None
    return urlunsplit((parts.scheme.lower(), host, *rest)) if _NETLOC.fullmatch(host) else None


def body_text(fragment: str) -> str:
    """An HTML body as plain text: the visible text, a blank line between blocks, spaces collapsed within them."""
    if not fragment.strip():
        return ""
    root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    for element in root.iter("script", "style", "template"):  # sanitised bodies have none; the text never shows them
        element.drop_tree()
    for element in root.iter(*_BLOCKS):
        element.text = "\n" + (element.text or "")
        element.tail = "\n" + (element.tail or "")
    lines = (" ".join(line.split()) for line in root.text_content().split("\n"))
    return "\n\n".join(line for line in lines if line)


def _safe(value: object) -> object:
    """Every string in a JSON value without what `feeds.render` drops from feeds (control characters, lone
    surrogates): such a character cannot be written as UTF-8, or breaks the partner's parser."""
    if isinstance(value, str):
        return xml_text(value)
    if isinstance(value, dict):
        return {key: _safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_safe(item) for item in value]
    return value


def edit_note(article: StoredArticle, timezone: tzinfo, language: str) -> str | None:
    """`edNote`: the kill, or every correction, newest first; None when there is neither."""
    def when(at: datetime) -> str:
        return at.astimezone(timezone).strftime("%Y-%m-%d %H:%M %Z")

    if article.status == KILLED:
        note = CATALOGUE.text(language, "ninjs_killed", at=when(article.status_at or article.changed_at))
        if article.status_reason:
            note += " " + CATALOGUE.text(language, "ninjs_reason", reason=article.status_reason)
        return note
    notes = [CATALOGUE.text(language, "ninjs_correction", at=when(c.corrected_at), note=c.note)
             for c in reversed(article.corrections)]
    return "\n".join(notes) or None


def usage_terms(partner: Partner, line: str, language: str) -> str:
    """`usageTerms`: the partner's licence in words, ending with the attribution it must give."""
    terms = [CATALOGUE.text(language, "ninjs_terms_full" if partner.full_content else "ninjs_terms_summary")]
    if not partner.include_images:
        terms.append(CATALOGUE.text(language, "ninjs_terms_no_images"))
    terms.append(CATALOGUE.text(language, "ninjs_terms_attribution", attribution=line))
    return " ".join(terms)


def rights(uri: str, partner: Partner, site: SiteSettings, embargoed_until: str | None) -> dict[str, str]:
    """`rightsInfo`: the partner's licence of this item as an ODRL 2.2 agreement (JSON-LD): reproduce and distribute,
    after the embargo if there is one, attributing the site."""
    constraint = ([{"leftOperand": "dateTime", "operator": "gteq",
                    "rightOperand": {"@value": embargoed_until, "@type": "xsd:dateTime"}}] if embargoed_until else [])
    permissions = [{"target": uri, "action": action, **({"constraint": constraint} if constraint else {}),
                    "duty": [{"action": "attribute"}]} for action in ("reproduce", "distribute")]
    agreement = {"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Agreement",
                 "uid": f"{uri}/licence/{partner.slug}", "assigner": site.base_url + "/",
                 "assignee": f"{site.base_url}/partners/{partner.slug}", "permission": permissions}
    return {"langId": ODRL, "encodedRights": json.dumps(agreement, ensure_ascii=False, separators=(",", ":"))}


def _head(article: StoredArticle, site: SiteSettings, pub_status: str, version_at: datetime) -> dict[str, object]:
    """The keys every item has, in the order every item has them (the bytes, so the ETag, stay stable)."""
    return {"uri": item_id(site.base_url, article.id, article.published_at), "standard": dict(STANDARD),
            "type": "text", "version": str(article.revision),
            "firstCreated": moment(article.published_at, site.timezone),
            "versionCreated": moment(version_at, site.timezone), "pubStatus": pub_status, "language": site.language}


def canceled_item(article: StoredArticle, site: SiteSettings) -> dict[str, object]:
    """A killed story as ninjs: its uri and versions, `canceled`, and the kill in `edNote`; nothing of its text."""
    item = _head(article, site, "canceled", article.status_at or article.changed_at)
    item["edNote"] = edit_note(article, site.timezone, site.language)
    item["altIds"] = [{"role": "gazette", "value": article.id}]
    return _safe(item)  # type: ignore[return-value]


def ninjs_item(article: StoredArticle, partner: Partner, *, site: SiteSettings, labels: Mapping[str, str],
               redirects: Redirects) -> dict[str, object]:
    """One story as the partner gets it in ninjs 3.1: a live story `usable` with its text as the partner's licence
    allows, a killed one `canceled`. A held story is given to no partner (ValueError)."""
    if article.status == KILLED:
        return canceled_item(article, site)
    if article.status == HELD:
        raise ValueError(f"article {article.id} is held: it is given to no partner")
    article = _clean(article)
    feed_item, extension = partner_item(article, partner, site_name=site.name, base_url=site.base_url,
                                        language=site.language, labels=labels, redirects=redirects)
    version_at = max(article.published_at, article.updated_at, article.corrected_at or article.updated_at)
    item = _head(article, site, "usable", version_at)
    item["contentCreated"] = moment(article.published_at, site.timezone)
    item["representationType"] = "full" if partner.full_content and article.content_html.strip() else "partial"
    embargoed_until = (moment(article.published_at + timedelta(minutes=partner.embargo_minutes), site.timezone)
                       if partner.embargo_minutes else None)
    if embargoed_until:
        item["embargoedUntil"] = embargoed_until
    if article.is_urgent:
        item["urgency"] = URGENT
    if note := edit_note(article, site.timezone, site.language):
        item["edNote"] = note
    item["headlines"] = [{"value": article.title}]
    if article.summary:
        item["descriptions"] = [{"role": "summary", "contentType": "text/plain", "value": article.summary}]
    html = feed_item.content_html or ""
    item["bodies"] = [{"role": "main", "contentType": "text/html", "value": html},
                      {"role": "main", "contentType": "text/plain", "value": body_text(html)}]
    byline = _byline(article)
    if byline:
        item["by"] = byline
    if article.reporters:
        item["people"] = [{"name": r.name, "rel": r.title or "author"} for r in article.reporters]
    sections = article.categories or ((article.category,) if article.category else ())
    subjects = [{"name": labels.get(slug, slug), "literal": slug} for slug in sections]
    subjects += [{"name": tag} for tag in article.tags if tag not in sections]
    if subjects:
        item["subjects"] = subjects
    if link := as_link(feed_item.url):
        item["renditions"] = [{"name": "web", "href": link, "contentType": "text/html"}]
    if image := as_link(feed_item.image_url):  # partner_item leaves it out unless the licence includes images
        item["associations"] = [{"name": "featureimage", "uri": f"{item['uri']}/featureimage", "type": "picture",
                                 "renditions": [{"name": "original", "href": image}]}]
    ids = [{"role": "gazette", "value": article.id}]
    if extension.get("canonical_url"):
        ids.append({"role": "canonical", "value": str(extension["canonical_url"])})
    item["altIds"] = ids
    item["copyrightHolder"] = site.name
    item["copyrightNotice"] = f"© {article.published_at.astimezone(site.timezone).year} {site.name}"
    item["usageTerms"] = usage_terms(partner, attribution_line(partner, site.name, site.language), site.language)
    item["rightsInfo"] = rights(str(item["uri"]), partner, site, embargoed_until)
    return _safe(item)  # type: ignore[return-value]


def _byline(article: StoredArticle) -> str | None:
    return byline_text(article.reporters) or article.byline


def _clean(article: StoredArticle) -> StoredArticle:
    """The article's texts without what `_safe` drops, before lxml (which refuses them) reads its HTML."""
    return replace(article, title=xml_text(article.title), summary=xml_text(article.summary),
                   content_html=xml_text(article.content_html), byline=xml_text(article.byline or "") or None,
                   image_url=xml_text(article.image_url or "") or None)


def ninjs_document(items: Sequence[Mapping[str, object]]) -> bytes:
    """A JSON list of ninjs items: UTF-8, keys in the order the items give them, `<`, `>` and `&` escaped."""
    text = json.dumps(list(items), ensure_ascii=False, indent=2)
    for character, escape in _JSON_HTML_SAFE:
        text = text.replace(character, escape)
    return text.encode("utf-8")


def render_ninjs_feed(settings: Settings, partner: Partner, live: Sequence[StoredArticle],
                      killed: Sequence[StoredArticle], redirects: Redirects) -> bytes:
    """A partner's ninjs feed: its live stories (newest first, as in the other formats), then the stories killed
    in the last `KILL_WINDOW` that it could have had, as canceled items (newest kill first)."""
    labels = {c.slug: c.name for c in settings.categories}
    items = [ninjs_item(a, partner, site=settings.site, labels=labels, redirects=redirects) for a in live]
    items += [canceled_item(a, settings.site) for a in killed]
    return ninjs_document(items)

