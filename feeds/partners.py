"""Partner syndication: who may take what, and how a partner's copy of an article differs from the public one.

Pure steps first: keys (random, shown once, kept only as SHA-256), the licence of a feed, the embargo, UTM
parameters on every link, images left out on request, the attribution line with the canonical link back. Then
`PartnerStore`, the partner tables: partners, keys, and daily usage (requests, 304s, bytes, distinct articles,
clicks back). The push queue is `push.PushQueue`'s; the request's workflow is `syndication`'s, its HTTP `feeds.http.partners`'.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from html import escape
from typing import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from lxml import etree
from lxml import html as lxml_html
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import IntegrityError

from templates import CATALOGUE

from . import db
from .article_life import with_corrections
from .core import database
from .errors import InvalidValue, StoreError, UnknownName
from .model import StoredArticle
from .publish import EPOCH
from .readership import Redirects, with_query
from .render import DeletedItem, FeedDoc, FeedItem, item_id, render
from .settings import PartnerSettings, Settings
from .store import hash_key

KEY_PREFIX = "gzp_"
CONFIG_KEY_LABEL = "config"  # keys written in the file: replaced when the file's key changes
IMAGE_TAGS = ("img", "picture", "source", "figure")


def new_key() -> str:
    """A fresh partner key: 256 random bits, prefixed so that people and secret scanners can tell what it is."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Partner:
    slug: str
    name: str
    categories: tuple[str, ...]
    full_content: bool
    include_images: bool
    embargo_minutes: int
    utm: tuple[tuple[str, str], ...]
    attribution: str | None
    callback_url: str | None
    push_secret: str | None = field(repr=False)
    rate_limit: int  # requests per minute; 0 = no limit
    origin: str  # config | admin
    created_at: datetime
    push_since_at: datetime | None

    def visible_until(self, now: datetime) -> datetime:
        """The embargo: the partner sees an article only this long after its publication."""
        return now - timedelta(minutes=self.embargo_minutes)

    def may_take(self, category: str | None) -> bool:
        return "all" in self.categories or category in self.categories


@dataclass(frozen=True)
class FeedScope:
    status: str  # ok | unknown (no such feed) | unlicensed (a category the partner may not take)
    categories: tuple[str, ...] | None = None  # None: every article


def feed_scope(partner: Partner, slug: str, known_categories: Sequence[str]) -> FeedScope:
    """What the partner's feed `slug` holds: `all` is every category it licensed, a category slug just that one."""
    if slug == "all":
        if "all" in partner.categories:
            return FeedScope("ok", None)
        return FeedScope("ok", tuple(c for c in partner.categories if c in known_categories))
    if slug not in known_categories:
        return FeedScope("unknown")
    return FeedScope("ok", (slug,)) if partner.may_take(slug) else FeedScope("unlicensed")


def utm_for(slug: str, utm: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """The partner's UTM parameters; unset means utm_source=<slug>&utm_medium=syndication, `{}` means none."""
    chosen = {"utm_source": slug, "utm_medium": "syndication"} if utm is None else utm
    return tuple(sorted(chosen.items()))


def attribution_line(partner: Partner, site_name: str, language: str) -> str:
    if partner.attribution:
        return partner.attribution
    return CATALOGUE.text(language, "partner_attribution", site=site_name)


def syndicate_html(content: str, *, utm: Mapping[str, str], own_hosts: set[str], include_images: bool) -> str:
    """The partner's copy of an article's (already sanitised) HTML: UTM on links to our own site, images out
    when the partner did not license them."""
    if not content.strip():
        return ""
    root = lxml_html.fragment_fromstring(content, create_parent="div")
    for element in list(root.iter("a", *IMAGE_TAGS)):
        if element.tag == "a":
            href = element.get("href") or ""
            if urlsplit(href).hostname in own_hosts:
                element.set("href", with_query(href, utm))
        elif not include_images and element.getparent() is not None:
            element.drop_tree()  # keeps the tail text
    serialised = etree.tostring(root, encoding="unicode", method="html")
    return serialised[len("<div>"):-len("</div>")]


def attribution_html(line: str, canonical_url: str | None, tracked_url: str | None, language: str) -> str:
    """The line every partner item ends with: who published it first, and the link back to the original."""
    if not canonical_url or not tracked_url:
        return f'<p class="gazette-attribution">{escape(line)}</p>'
    label = CATALOGUE.text(language, "partner_original")
    return (f'<p class="gazette-attribution">{escape(line)} {label}: '
            f'<a href="{escape(tracked_url)}">{escape(canonical_url)}</a></p>')


def partner_item(article: StoredArticle, partner: Partner, *, site_name: str, base_url: str, language: str,
                 labels: Mapping[str, str], redirects: Redirects,
                 zone: tzinfo = UTC) -> tuple[FeedItem, dict[str, object]]:
    """One article as the partner gets it, and the `_gazette` JSON Feed extension that goes with it."""
    utm = dict(partner.utm)
    # The item's link counts the click for this partner and lands on the article with the partner's UTM.
    tracked = redirects.url(article.id, "partner", partner=partner.slug, query=utm) if article.url else None
    hosts = {h for h in (urlsplit(base_url).hostname, urlsplit(article.url or "").hostname) if h}
    if partner.full_content and article.content_html:
        body = syndicate_html(article.content_html, utm=utm, own_hosts=hosts, include_images=partner.include_images)
    else:
        body = f"<p>{escape(article.summary)}</p>" if article.summary else ""
    line = attribution_line(partner, site_name, language)
    body, summary = with_corrections(article, body, article.summary, language=language, zone=zone)
    item = FeedItem(id=item_id(base_url, article.id, article.published_at), url=tracked, title=article.title,
                    summary=summary, content_html=body + attribution_html(line, article.url, tracked, language),
                    byline=article.byline, author_email=article.author_email, category=article.category,
                    category_label=labels.get(article.category or ""), tags=article.tags,
                    image_url=article.image_url if partner.include_images else None,
                    published_at=article.published_at, updated_at=article.updated_at)
    return item, {"canonical_url": article.url, "attribution": line, "partner": partner.slug}


def with_json_extension(body: bytes, extensions: Sequence[Mapping[str, object]],
                        top: Mapping[str, object] | None = None) -> bytes:
    """A JSON Feed with `_gazette` objects added to its items (in order) and, given `top`, to the feed itself.
    JSON Feed 1.1 reserves keys starting with an underscore for extensions like this."""
    feed = json.loads(body)
    for item, extension in zip(feed["items"], extensions, strict=True):
        item["_gazette"] = dict(extension)
    if top:
        feed["_gazette"] = dict(top)
    return json.dumps(feed, ensure_ascii=False, indent=2).encode("utf-8")


def partner_feed_url(base_url: str, partner_slug: str, slug: str, fmt: str) -> str:
    """Where the partner's feed lives; never with the key in it."""
    return f"{base_url}/partners/{partner_slug}/feeds/{slug}.{fmt}"


def render_partner_feed(settings: Settings, partner: Partner, slug: str, fmt: str, articles: Sequence[StoredArticle],
                        redirects: Redirects, top: Mapping[str, object] | None = None,
                        killed: Sequence[StoredArticle] = ()) -> bytes:
    """The partner's feed `slug` (a category or `all`) holding `articles`, in `fmt`; JSON Feed items carry the
    `_gazette` extension (canonical URL, attribution line, partner), and the feed `top` if given; Atom carries an
    RFC 6721 tombstone for each of the `killed` stories."""
    site = settings.site
    labels = {c.slug: c.name for c in settings.categories}
    pairs = [partner_item(a, partner, site_name=site.name, base_url=site.base_url, language=site.language,
                          labels=labels, redirects=redirects, zone=site.timezone) for a in articles]
    label = labels.get(slug) or CATALOGUE.text(site.language, "feed_all_title")
    doc = FeedDoc(slug=slug, title=f"{site.name} — {label} ({partner.name})",
                  description=attribution_line(partner, site.name, site.language), home_url=site.base_url + "/",
                  language=site.language, author=site.name, timezone=site.timezone,
                  items=tuple(item for item, _ in pairs),
                  deleted=tuple(DeletedItem(item_id(site.base_url, a.id, a.published_at), a.status_at or EPOCH,
                                            CATALOGUE.text(site.language, "article_killed_comment"))
                                for a in killed) if fmt == "atom" else ())
    body = render(doc, fmt, partner_feed_url(site.base_url, partner.slug, slug, fmt), EPOCH)
    if fmt == "json":
        body = with_json_extension(body, [extension for _, extension in pairs], top)
    return body


# --- the store ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Access:
    status: str  # ok | missing | wrong | revoked
    partner: Partner | None = None
    key_id: int | None = None


@dataclass(frozen=True)
class KeyInfo:
    id: int
    partner_slug: str
    label: str | None
    fingerprint: str  # the start of the key's hash: tells keys apart without showing them
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class UsageDay:
    day: date  # in the site's time zone
    requests: int
    not_modified: int
    rate_limited: int
    bytes: int
    articles: int  # distinct articles delivered in 200 responses
    clicks: int  # clicks back through the partner's /r/ links
    last_fetch_at: datetime | None


class PartnerStore:
    """The partner tables. `configured` are the slugs in the configuration file: a partner that came from the
    file and has left it is gone (its feeds answer 401), though its history stays."""

    def __init__(self, engine: Engine, timezone: tzinfo, configured: Iterable[str]) -> None:
        self.engine = engine
        self._timezone = timezone
        self._configured = frozenset(configured)

    def day(self, now: datetime) -> date:
        return now.astimezone(self._timezone).date()

    def _partner(self, row) -> Partner | None:  # type: ignore[no-untyped-def]
        if row is None or (row.origin == "config" and row.slug not in self._configured):
            return None
        return Partner(slug=row.slug, name=row.name, categories=tuple(row.categories or ()),
                       full_content=row.full_content, include_images=row.include_images,
                       embargo_minutes=row.embargo_minutes, utm=utm_for(row.slug, row.utm),
                       attribution=row.attribution, callback_url=row.callback_url, push_secret=row.push_secret,
                       rate_limit=row.rate_limit or 0, origin=row.origin, created_at=row.created_at,
                       push_since_at=row.push_since_at)

    def partner(self, slug: str) -> Partner | None:
        with self.engine.connect() as conn:
            return self._partner(conn.execute(select(db.partners).where(db.partners.c.slug == slug)).first())

    def partners(self) -> list[Partner]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(db.partners).order_by(db.partners.c.slug))
            return [p for p in (self._partner(r) for r in rows) if p is not None]

    def create(self, settings: PartnerSettings, now: datetime) -> Partner:
        """A partner made by the CLI or the admin API (validated by `settings.build_partner`)."""
        values = {"slug": settings.slug, "name": settings.name, "categories": list(settings.categories),
                  "full_content": settings.full_content, "include_images": settings.include_images,
                  "embargo_minutes": settings.embargo_minutes,
                  "utm": dict(settings.utm) if settings.utm is not None else None, "attribution": settings.attribution,
                  "callback_url": settings.callback_url, "push_secret": settings.callback_secret,
                  "rate_limit": settings.rate_limit, "origin": "admin", "created_at": now,
                  "push_since_at": now if settings.callback_url else None}
        try:
            with self.engine.begin() as conn:
                conn.execute(db.partners.insert().values(**values))
        except IntegrityError:
            raise StoreError(f"partner {settings.slug!r} exists already") from None
        partner = self.partner(settings.slug)
        assert partner is not None
        return partner

    def update(self, settings: PartnerSettings, now: datetime) -> tuple[Partner, Partner]:
        """New licence and terms for a partner made by the CLI, the API or the console (validated by
        `settings.build_partner`; its keys stay). A partner from the configuration file is the file's to change
        (StoreError); a callback added now pushes only what is published from now on. Returns before and after."""
        before = self.partner(settings.slug)
        if before is None:
            raise UnknownName(f"no partner {settings.slug!r}")
        if before.origin == "config":
            raise StoreError(f"partner {settings.slug!r} comes from the configuration file: change it there")
        values = {"name": settings.name, "categories": list(settings.categories),
                  "full_content": settings.full_content, "include_images": settings.include_images,
                  "embargo_minutes": settings.embargo_minutes,
                  "utm": dict(settings.utm) if settings.utm is not None else None, "attribution": settings.attribution,
                  "callback_url": settings.callback_url, "push_secret": settings.callback_secret,
                  "rate_limit": settings.rate_limit,
                  "push_since_at": (before.push_since_at or now) if settings.callback_url else None}
        with self.engine.begin() as conn:
            conn.execute(db.partners.update().where(db.partners.c.slug == settings.slug).values(**values))
        after = self.partner(settings.slug)
        assert after is not None
        return before, after

    def keys(self, slug: str) -> list[KeyInfo]:
        t = db.partner_keys
        with self.engine.connect() as conn:
            return [_key_info(r) for r in conn.execute(select(t).where(t.c.partner_slug == slug).order_by(t.c.id))]

    def add_key(self, slug: str, now: datetime, label: str | None = None) -> tuple[KeyInfo, str]:
        """A new key for the partner; the key itself is returned this once and never stored."""
        if self.partner(slug) is None:
            raise UnknownName(f"no partner {slug!r}")
        if label == CONFIG_KEY_LABEL:
            raise InvalidValue(f"the label {CONFIG_KEY_LABEL!r} is kept for keys written in the configuration file")
        key = new_key()
        with self.engine.begin() as conn:
            inserted = conn.execute(db.partner_keys.insert().values(partner_slug=slug, key_hash=hash_key(key),
                                                                    label=label, created_at=now))
            key_id = inserted.inserted_primary_key[0]
            row = conn.execute(select(db.partner_keys).where(db.partner_keys.c.id == key_id)).one()
        return _key_info(row), key

    def revoke_key(self, slug: str, key: str, now: datetime) -> KeyInfo | None:
        """Revoke one of the partner's keys, named by its id or given itself; None if it has no such key."""
        t = db.partner_keys
        if key.isdigit() and not database.is_storable_id(int(key)):
            return None
        which = t.c.id == int(key) if key.isdigit() else t.c.key_hash == hash_key(key)
        with self.engine.begin() as conn:
            row = conn.execute(select(t).where(t.c.partner_slug == slug, which)).first()
            if row is None:
                return None
            if row.revoked_at is None:
                conn.execute(t.update().where(t.c.id == row.id).values(revoked_at=now))
            row = conn.execute(select(t).where(t.c.id == row.id)).one()
        return _key_info(row)

    def authenticate(self, slug: str, presented: str | None) -> Access:
        """Whose key this is. Every stored key of the partner is compared, in constant time, whatever matches."""
        if not presented:
            return Access("missing")
        digest = hash_key(presented)
        t = db.partner_keys
        with self.engine.connect() as conn:
            partner = self._partner(conn.execute(select(db.partners).where(db.partners.c.slug == slug)).first())
            rows = conn.execute(select(t.c.id, t.c.key_hash, t.c.revoked_at).where(t.c.partner_slug == slug)).all()
        match = None
        for row in rows:
            if hmac.compare_digest(row.key_hash.encode(), digest.encode()):
                match = row
        if partner is None or match is None:
            return Access("wrong")
        return Access("revoked" if match.revoked_at is not None else "ok", partner, match.id)

    def record_request(self, slug: str, now: datetime, *, status: int, key_id: int | None = None, sent_bytes: int = 0,
                       article_ids: Sequence[str] = ()) -> None:
        """Count one request with a valid key; a 200 also records which articles it delivered."""
        day = self.day(now)
        fetched = status in (200, 304)
        with self.engine.begin() as conn:
            self._bump(conn, slug, day, now if fetched else None, requests=1, not_modified=int(status == 304),
                       rate_limited=int(status == 429), bytes=sent_bytes)
            if article_ids:
                insert = database.insert_for(self.engine)
                conn.execute(insert(db.partner_articles).on_conflict_do_nothing(),
                             [{"partner_slug": slug, "day": day, "article_id": a} for a in dict.fromkeys(article_ids)])
            if key_id is not None and fetched:
                conn.execute(db.partner_keys.update().where(db.partner_keys.c.id == key_id).values(last_used_at=now))

    def add_click(self, slug: str, now: datetime) -> None:
        try:
            with self.engine.begin() as conn:
                self._bump(conn, slug, self.day(now), None, clicks=1)
        except IntegrityError:
            pass  # a signed link of a partner deleted since: the click still counted for the article

    def _bump(self, conn: Connection, slug: str, day: date, fetched_at: datetime | None, **counts: int) -> None:
        t = db.partner_usage
        values: dict[str, object] = {"partner_slug": slug, "day": day, "requests": 0, "not_modified": 0,
                                     "rate_limited": 0, "bytes": 0, "clicks": 0, **counts, "last_fetch_at": fetched_at}
        statement = database.insert_for(self.engine)(t).values(**values)
        changes = {name: t.c[name] + statement.excluded[name] for name in counts}
        if fetched_at is not None:
            changes["last_fetch_at"] = statement.excluded.last_fetch_at
        conn.execute(statement.on_conflict_do_update(index_elements=["partner_slug", "day"], set_=changes))

    def usage(self, slug: str, *, now: datetime, days: int = 30) -> list[UsageDay]:
        """The last `days` days that saw any use, newest first."""
        first = self.day(now) - timedelta(days=days - 1)
        u, a = db.partner_usage, db.partner_articles
        with self.engine.connect() as conn:
            rows = conn.execute(select(u).where(u.c.partner_slug == slug, u.c.day >= first).order_by(u.c.day.desc()))
            counters = list(rows)
            articles = dict(conn.execute(select(a.c.day, func.count()).where(a.c.partner_slug == slug, a.c.day >= first)
                                         .group_by(a.c.day)).all())
        return [UsageDay(day=r.day, requests=r.requests, not_modified=r.not_modified, rate_limited=r.rate_limited,
                         bytes=r.bytes, articles=articles.get(r.day, 0), clicks=r.clicks, last_fetch_at=r.last_fetch_at)
                for r in counters]


def _key_info(row) -> KeyInfo:  # type: ignore[no-untyped-def]
    return KeyInfo(id=row.id, partner_slug=row.partner_slug, label=row.label, fingerprint=row.key_hash[:8],
                   created_at=row.created_at, revoked_at=row.revoked_at, last_used_at=row.last_used_at)
