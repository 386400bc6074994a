"""The newsroom's look at its articles: search (title text, section, source, publication dates) a page at a time,
and one article's figures: what is kept of its revisions, views per day, clicks by channel and by campaign.

Read-only, over the content side's tables. What the store keeps of an edit is the current revision's number and
times (first published, the source's last update, when Gazette saw the change) and its content hash: earlier
versions' texts are not kept, so `ArticleFacts` says what is known and no more. Views are the hourly buckets of
`article_views`, summed per day in the site's time zone; clicks are `article_clicks` (channel: email, feed, partner,
web, widget) and `campaign_clicks` (a digest edition's `{edition}-{id}`, a partner's `utm_campaign`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Engine, func, select

from . import db

MAX_PAGE = 100


@dataclass(frozen=True)
class ArticleQuery:
    text: str | None = None  # a part of the title, any letter case; % and _ are letters
    category: str | None = None  # a section it was published in
    source_id: int | None = None
    published_from: datetime | None = None  # inclusive
    published_until: datetime | None = None  # exclusive
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class ArticleLine:
    id: str
    title: str
    category: str | None
    source: str | None
    published_at: datetime
    revision: int


@dataclass(frozen=True)
class ArticleFacts:
    """What the store keeps of one article's life: there is no history of earlier texts, only these."""

    id: str
    title: str
    url: str | None
    guid: str | None
    source: str | None
    byline: str | None
    categories: tuple[str, ...]
    tags: tuple[str, ...]
    published_at: datetime
    updated_at: datetime  # the source's own "updated" (or when Gazette saw an edit the source did not date)
    fetched_at: datetime  # last seen in its source
    changed_at: datetime  # when Gazette last stored a change
    revision: int  # 1, then one more for each change of content Gazette saw
    content_hash: str


class ArticleSearch:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def find(self, query: ArticleQuery) -> tuple[int, list[ArticleLine]]:
        """The matching articles, newest first, and how many match."""
        a, s = db.articles, db.sources
        where: list[Any] = []
        if query.text:
            where.append(func.lower(a.c.title).contains(query.text.lower(), autoescape=True))
        if query.category:
            ac = db.article_categories
            where.append(select(ac.c.article_id).where(ac.c.article_id == a.c.id,
                                                       ac.c.category == query.category).exists())
        if query.source_id is not None:
            where.append(a.c.source_id == query.source_id)
        if query.published_from is not None:
            where.append(a.c.published_at >= query.published_from)
        if query.published_until is not None:
            where.append(a.c.published_at < query.published_until)
        limit = max(1, min(query.limit, MAX_PAGE))
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(a).where(*where)).scalar_one()
            rows = conn.execute(
                select(a.c.id, a.c.title, a.c.category, a.c.published_at, a.c.revision, s.c.name)
                .join(s, s.c.id == a.c.source_id, isouter=True).where(*where)
                .order_by(a.c.published_at.desc(), a.c.id).limit(limit).offset(max(0, query.offset))).all()
        return total, [ArticleLine(id=r.id, title=r.title, category=r.category, source=r.name,
                                   published_at=r.published_at, revision=r.revision) for r in rows]

    def facts(self, article_id: str) -> ArticleFacts | None:
        a, s, ac, c = db.articles, db.sources, db.article_categories, db.categories
        with self.engine.connect() as conn:
            row = conn.execute(select(a, s.c.name.label("source_name"))
                               .join(s, s.c.id == a.c.source_id, isouter=True).where(a.c.id == article_id)).first()
            if row is None:
                return None
            sections = tuple(conn.execute(select(ac.c.category).join(c, c.c.slug == ac.c.category, isouter=True)
                                          .where(ac.c.article_id == article_id)
                                          .order_by(c.c.position, ac.c.category)).scalars())
        return ArticleFacts(id=row.id, title=row.title, url=row.url, guid=row.guid, source=row.source_name,
                            byline=row.byline, categories=sections or ((row.category,) if row.category else ()),
                            tags=tuple(row.tags or ()), published_at=row.published_at,
                            updated_at=max(row.updated_at, row.published_at), fetched_at=row.fetched_at,
                            changed_at=row.changed_at, revision=row.revision, content_hash=row.content_hash)

    def views_per_day(self, article_id: str, *, days: int, now: datetime, zone: tzinfo) -> list[tuple[date, int]]:
        """The last `days` days (today included) in `zone`, each with the views counted in its hours (0 for none)."""
        today = now.astimezone(zone).date()
        first = today - timedelta(days=days - 1)
        since = datetime(first.year, first.month, first.day, tzinfo=zone)
        v = db.article_views
        counts = dict.fromkeys((first + timedelta(days=n) for n in range(days)), 0)
        with self.engine.connect() as conn:
            for hour_at, views in conn.execute(select(v.c.hour_at, v.c.views)
                                               .where(v.c.article_id == article_id, v.c.hour_at >= since)):
                day = hour_at.astimezone(zone).date()
                if day in counts:
                    counts[day] += views
        return sorted(counts.items())

    def clicks_by_channel(self, article_id: str) -> dict[str, int]:
        t = db.article_clicks
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.channel, func.sum(t.c.clicks)).where(t.c.article_id == article_id)
                                .group_by(t.c.channel))
            return {channel: int(total) for channel, total in rows}

    def clicks_by_campaign(self, article_id: str, limit: int = 50) -> list[tuple[str, int]]:
        """The campaigns (digest editions, partners' `utm_campaign`) its clicks came through, most clicked first."""
        t = db.campaign_clicks
        with self.engine.connect() as conn:
            return [(r.campaign, r.clicks) for r in conn.execute(
                select(t.c.campaign, t.c.clicks).where(t.c.article_id == article_id)
                .order_by(t.c.clicks.desc(), t.c.campaign).limit(limit))]
