"""The article store: categories, sources and their health, articles, view counts, partners.

`ArticleStore` wraps an SQLAlchemy engine (SQLite or PostgreSQL) with the few queries the content side needs.
It knows nothing of HTTP or of the newsletter. Times are passed in by the caller, never read from a clock.

Why it is long: it is the one module that writes the content side's tables, and its halves share the private row
readers and the upsert's retry rule (`_read`, `_stored`, `_existing`, `_category_slugs`). Sources' health and the
counts (views, clicks) are short method groups over the same engine; splitting them into modules of their own would
split the one transaction rule, not the reading. What it reads and returns is plain data in `feeds.model`, with the
one health rule (`source_health`).
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from sqlalchemy import Connection, Engine, Table, bindparam, case, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from . import db, events
from .bylines import Reporter
from .core import database
from .errors import StoreUnavailable
from .model import (
    LIVE,
    Article,
    Correction,
    FeedVersion,
    SourceState,
    StoredArticle,
    UpsertCounts,
)
from .settings import Category, PartnerSettings, SourceSettings

EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class _Written:
    """A row as this writer just inserted it: the columns `_upsert` reads of a stored row."""

    id: str
    identity: str
    url: str | None
    content_hash: str
    published_at: datetime
    updated_at: datetime
    fetched_at: datetime
    revision: int
    external_views: int | None
    category: str | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


UPSERT_ATTEMPTS = 5  # a batch that deadlocks with another writer this many times in a row fails the poll


class ArticleStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- configuration ------------------------------------------------------------------------------

    def sync_config(self, categories: Sequence[Category], sources: Sequence[SourceSettings],
                    partners: Sequence[PartnerSettings], now: datetime) -> None:
        """Make the stored categories, sources and partners match the configuration.

        Sources keep their health and validators across restarts; a source whose location changed starts
        afresh. Articles keep their category even if it leaves the configuration.
        """
        with self.engine.begin() as conn:
            existing = {r.slug for r in conn.execute(select(db.categories.c.slug))}
            for position, category in enumerate(categories):
                values = {"name": category.name, "position": position}
                if category.slug in existing:
                    conn.execute(db.categories.update().where(db.categories.c.slug == category.slug).values(**values))
                else:
                    conn.execute(db.categories.insert().values(slug=category.slug, **values))
            self.sync_sources(sources, now, conn=conn)
            known = {r.slug: r for r in conn.execute(select(db.partners.c.slug, db.partners.c.push_since_at))}
            for partner in partners:
                values = {"name": partner.name, "categories": list(partner.categories),
                          "full_content": partner.full_content, "include_images": partner.include_images,
                          "embargo_minutes": partner.embargo_minutes,
                          "utm": dict(partner.utm) if partner.utm is not None else None,
                          "attribution": partner.attribution, "callback_url": partner.callback_url,
                          "push_secret": partner.callback_secret, "rate_limit": partner.rate_limit, "origin": "config"}
                row = known.get(partner.slug)
                # Articles published before a partner had a callback are not pushed: it has them from its feeds.
                values["push_since_at"] = None if not partner.callback_url else (
                    row.push_since_at if row is not None and row.push_since_at else now)
                if row is not None:
                    conn.execute(db.partners.update().where(db.partners.c.slug == partner.slug).values(**values))
                else:
                    conn.execute(db.partners.insert().values(slug=partner.slug, created_at=now, **values))
                digest = hash_key(partner.key) if partner.key else None
                # A key changed or removed in the file stops working; one revoked by an admin stays revoked.
                conn.execute(db.partner_keys.update().where(
                    db.partner_keys.c.partner_slug == partner.slug, db.partner_keys.c.label == "config",
                    db.partner_keys.c.revoked_at.is_(None), db.partner_keys.c.key_hash != (digest or ""),
                ).values(revoked_at=now))
                if digest:
                    found = conn.execute(select(db.partner_keys.c.id).where(db.partner_keys.c.key_hash == digest)).first()
                    if found is None:
                        conn.execute(db.partner_keys.insert().values(partner_slug=partner.slug, key_hash=digest,
                                                                     label="config", created_at=now))

    def sync_sources(self, sources: Sequence[SourceSettings], now: datetime, *, conn: Connection | None = None) -> None:
        """Give each of `sources` its state row (the file's at start-up, the console's as they are saved): a new
        source starts afresh, so does one whose location or kind changed; one that only changed its interval or
        category keeps its health and validators. `conn`: inside the caller's transaction."""
        if conn is None:
            with self.engine.begin() as own:
                self.sync_sources(sources, now, conn=own)
            return
        names = [source.name for source in sources]
        stored = {r.name: r for r in conn.execute(select(db.sources).where(db.sources.c.name.in_(names)))}
        for source in sources:
            values = {"kind": source.kind, "location": source.location, "category": source.category,
                      "interval_seconds": int(source.interval.total_seconds())}
            row = stored.get(source.name)
            if row is None:
                conn.execute(db.sources.insert().values(name=source.name, created_at=now, consecutive_failures=0,
                                                        **values))
            elif row.location != source.location or row.kind != source.kind:
                conn.execute(db.sources.update().where(db.sources.c.id == row.id).values(
                    fetch_url=None, etag=None, last_modified=None, body_hash=None, consecutive_failures=0,
                    disabled_reason=None, next_check_at=None, **values))
            else:
                conn.execute(db.sources.update().where(db.sources.c.id == row.id).values(**values))

    def categories(self) -> list[Category]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(db.categories).order_by(db.categories.c.position, db.categories.c.slug))
            return [Category(slug=r.slug, name=r.name) for r in rows]

    # --- sources ------------------------------------------------------------------------------------

    def source(self, name: str) -> SourceState | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(db.sources).where(db.sources.c.name == name)).first()
        return _source_state(row) if row else None

    def sources(self, configured: Sequence[SourceSettings] | None = None) -> list[SourceState]:
        """Every source's state by name; with `configured`, only theirs (a source removed from the configuration keeps
        its row and its articles, but no longer has a health to report)."""
        with self.engine.connect() as conn:
            states = [_source_state(r) for r in conn.execute(select(db.sources).order_by(db.sources.c.name))]
        if configured is None:
            return states
        names = {source.name for source in configured}
        return [state for state in states if state.name in names]

    def articles_by_source(self, since: datetime) -> dict[int, int]:
        """source id -> articles it brought that were published since `since` (one grouped, indexed query)."""
        a = db.articles
        with self.engine.connect() as conn:
            rows = conn.execute(select(a.c.source_id, func.count()).where(a.c.published_at >= since,
                                                                          a.c.source_id.is_not(None))
                                .group_by(a.c.source_id))
            return {source_id: int(count) for source_id, count in rows}

    def record_success(self, source_id: int, *, etag: str | None, last_modified: str | None, now: datetime,
                       next_check_at: datetime, body_hash: str | None = None, moved_to: str | None = None,
                       clock_warning: str | None = None) -> None:
        """`clock_warning`: None leaves the last verdict about the source's clock, "" clears it."""
        values: dict[str, object] = {"etag": etag, "last_modified": last_modified, "last_checked_at": now,
                                     "last_success_at": now, "consecutive_failures": 0, "next_check_at": next_check_at}
        if clock_warning is not None:
            values["clock_warning"] = clock_warning or None
        if body_hash is not None:
            values["body_hash"] = body_hash
        if moved_to is not None:
            values["fetch_url"] = moved_to
        with self.engine.begin() as conn:
            conn.execute(db.sources.update().where(db.sources.c.id == source_id).values(**values))

    def record_skip(self, source_id: int, reason: str) -> None:
        """One of the source's articles could not be rendered into a feed (it was left out)."""
        with self.engine.begin() as conn:
            conn.execute(db.sources.update().where(db.sources.c.id == source_id).values(
                skipped_items=db.sources.c.skipped_items + 1, last_skip=reason[:2000]))

    def disable(self, source_id: int, reason: str, *, now: datetime) -> None:
        """Stop polling a source (410 Gone) until its location changes in the configuration."""
        with self.engine.begin() as conn:
            conn.execute(db.sources.update().where(db.sources.c.id == source_id).values(
                disabled_reason=reason[:2000], last_checked_at=now, last_error=reason[:2000], last_error_at=now,
                consecutive_failures=db.sources.c.consecutive_failures + 1, next_check_at=None))

    def record_failure(self, source_id: int, reason: str, *, now: datetime, next_check_at: datetime) -> int:
        """Store the error and return the new count of consecutive failures."""
        with self.engine.begin() as conn:
            conn.execute(db.sources.update().where(db.sources.c.id == source_id).values(
                last_checked_at=now, last_error=reason[:2000], last_error_at=now, next_check_at=next_check_at,
                consecutive_failures=db.sources.c.consecutive_failures + 1))
            return conn.execute(select(db.sources.c.consecutive_failures).where(db.sources.c.id == source_id)).scalar_one()

    # --- articles -----------------------------------------------------------------------------------

    def upsert_articles(self, articles: Iterable[Article], *, source_id: int | None, now: datetime,
                        touch_unchanged: bool = False) -> UpsertCounts:
        """Insert new stories, update edited ones (revision + 1), add the sections a story is seen in.

        A story is one row whoever reads it and in whatever order: identity and canonical URL are both unique in
        the database, and inserts that lose a race to another writer (another fetch worker, another process) are
        ignored by the database and then treated as sightings of the row that won. A sighting in another section
        adds that section and changes nothing else; only a change of the story itself (title, body, summary,
        byline, image) is an edit. `touch_unchanged` records that unchanged articles were fetched again (their
        `fetched_at`), for sources that fetch article pages one by one.
        """
        merged: dict[str, Article] = {}
        for article in articles:  # the same story twice in one batch: the first sighting, with every section
            first = merged.get(article.identity)
            merged[article.identity] = article if first is None else replace(
                first, extra_categories=tuple(_union(first.all_categories, article.all_categories)))
        batch = sorted(merged.values(), key=lambda a: a.id)  # one lock order for every writer (PostgreSQL)
        if not batch:
            return UpsertCounts()
        for attempt in range(UPSERT_ATTEMPTS - 1):
            try:
                return self._upsert(batch, source_id, now, touch_unchanged)
            except (IntegrityError, OperationalError):
                # A deadlock between two writers (PostgreSQL) or a conflict we did not foresee: run again, after a
                # random wait so that the two do not meet again at once; the rows the other writer committed are
                # now sightings.
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        return self._upsert(batch, source_id, now, touch_unchanged)

    def known_urls(self, urls: Sequence[str]) -> dict[str, datetime]:
        """For each URL already stored, when its article was last fetched."""
        found: dict[str, datetime] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(urls), 400):
                query = select(db.articles.c.url, db.articles.c.fetched_at).where(db.articles.c.url.in_(urls[i:i + 400]))
                found.update({row.url: row.fetched_at for row in conn.execute(query)})
        return found

    def _upsert(self, batch: list[Article], source_id: int | None, now: datetime, touch_unchanged: bool) -> UpsertCounts:
        known = self._category_slugs()
        a = db.articles
        with self.engine.begin() as conn:
            found = self._existing(conn, batch)
            inserts = [x for x in batch if found.get(x.id) is None]
            inserted = {x.id for x in inserts}
            if inserts:
                rows = [{**_article_values(x, known), "id": x.id, "identity": x.identity, "source_id": source_id,
                         "fetched_at": now, "changed_at": now, "revision": 1, "external_views": x.external_views}
                        for x in inserts]
                result = conn.execute(database.insert_for(conn)(a).on_conflict_do_nothing(), rows)
                if result.rowcount == len(rows):  # every one inserted: the rows are ours, as written
                    found.update({row["id"]: _Written(**{k: row[k] for k in _Written.__dataclass_fields__})
                                  for row in rows})
                else:  # what another writer stored first (the same URL under another guid) is a sighting of its row
                    found.update(self._existing(conn, inserts))
            new = updated = unchanged = 0
            updates, touched, sections = [], [], []
            earlier: dict[str, list[str]] = {}  # section -> stories it may become the first section of
            view_growth: list[tuple[str, datetime, int]] = []
            view_totals: list[dict[str, object]] = []
            told: list[tuple[str, str, dict[str, object]]] = []  # the event log's entries of this batch
            for article in batch:
                row = found[article.id]
                slugs = _known(article.all_categories, known)
                # A stored story's first section is one of its sections already (written with the row).
                if article.id in inserted or slugs != [row.category]:
                    sections += [{"article_id": row.id, "category": slug} for slug in slugs]
                if slugs and (row.category not in known or known[slugs[0]] < known[row.category]):
                    earlier.setdefault(slugs[0], []).append(row.id)
                # Ours, or the same story with the same content that another writer inserted at the same moment:
                # either way one new story, as stored.
                if article.id in inserted and row.id == article.id and row.fetched_at == now \
                        and row.content_hash == article.content_hash:
                    new += 1
                    told.append(("article.published", row.id, {"revision": 1}))
                    if article.external_views:
                        view_growth.append((row.id, min(article.published_at, now), article.external_views))
                    continue
                values: dict[str, object] = {"_id": row.id}
                if row.content_hash != article.content_hash:
                    # An edit (기사수정): keep the first publication time, move updated_at forward; a source that
                    # does not say when it edited gets the time we saw the edit.
                    values.update({k: v for k, v in _article_values(article, known).items() if k != "category"})
                    values["published_at"] = row.published_at
                    values["updated_at"] = article.updated_at if article.updated_at > row.updated_at else now
                    values["changed_at"] = now
                    values["_bump"] = 1  # in SQL: an editor's correction committed meanwhile keeps its own number
                    told.append(("article.updated", row.id, {"revision": row.revision + 1}))
                    updated += 1
                else:
                    unchanged += 1
                    touched.append(row.id)
                if len(values) > 1:
                    updates.append(values)
                if article.external_views is not None and article.external_views != row.external_views:
                    grown = article.external_views - (row.external_views or 0)
                    if grown > 0:
                        view_growth.append((row.id, now, grown))
                    view_totals.append({"_id": row.id, "external_views": article.external_views})
            by_shape: dict[tuple[str, ...], list[dict[str, object]]] = {}
            for values in updates:  # one executemany per set of columns: a feed whose every item changed is one
                by_shape.setdefault(tuple(sorted(values)), []).append(values)
            for shape, rows in by_shape.items():
                columns: dict[str, Any] = {k: bindparam(k) for k in shape if k not in ("_id", "_bump")}
                if "_bump" in shape:
                    columns["revision"] = a.c.revision + bindparam("_bump")
                conn.execute(a.update().where(a.c.id == bindparam("_id")).values(**columns), rows)
            if sections:
                conn.execute(database.insert_for(conn)(db.article_categories).on_conflict_do_nothing(), sections)
            for slug, ids in earlier.items():
                # The first section moves only ever earlier in the configuration's order, so that two writers
                # adding sections at once end where one would: the earliest of all (PostgreSQL re-checks the
                # condition on the row the other writer committed).
                later = [other for other, position in known.items() if position > known[slug]]
                conn.execute(a.update().where(a.c.id.in_(ids), a.c.category.is_(None) | a.c.category.in_(later)
                                              | a.c.category.not_in(list(known))).values(category=slug))
            if touch_unchanged and touched:
                conn.execute(a.update().where(a.c.id.in_(touched)).values(fetched_at=now))
            if view_totals:
                conn.execute(a.update().where(a.c.id == bindparam("_id"))
                             .values(external_views=bindparam("external_views")), view_totals)
            events.record_many(conn, told, now)
        if view_growth:
            self.add_views_batch(view_growth)
        return UpsertCounts(new=new, updated=updated, unchanged=unchanged)

    @staticmethod
    def _existing(conn: Connection, batch: Sequence[Article]) -> dict[str, Any]:
        """article id -> the stored row of that story: by identity, else by canonical URL (two indexed lookups:
        SQLite does not use both indexes for "identity IN … OR url IN …")."""
        a = db.articles
        columns = (a.c.id, a.c.identity, a.c.url, a.c.content_hash, a.c.published_at, a.c.updated_at, a.c.fetched_at,
                   a.c.revision, a.c.external_views, a.c.category)
        by_identity, by_url = {}, {}
        for i in range(0, len(batch), 400):
            chunk = batch[i:i + 400]
            for row in conn.execute(select(*columns).where(a.c.identity.in_([x.identity for x in chunk]))):
                by_identity[row.identity] = row
            urls = [x.url for x in chunk if x.url and x.identity not in by_identity]
            if urls:
                for row in conn.execute(select(*columns).where(a.c.url.in_(urls))):
                    by_url[row.url] = row
        return {x.id: by_identity.get(x.identity) or (by_url.get(x.url) if x.url else None) for x in batch}

    def _category_slugs(self) -> dict[str, int]:
        """Configured category slug -> its position in the configuration."""
        with self.engine.connect() as conn:
            return dict(conn.execute(select(db.categories.c.slug, db.categories.c.position)).all())

    def articles(self, *, category: str | None = None, limit: int = 50, published_after: datetime | None = None,
                 published_until: datetime | None = None, categories: Sequence[str] | None = None) -> list[StoredArticle]:
        """Live ones (not held, not killed), newest first."""
        query = (select(db.articles).where(db.articles.c.status == LIVE)
                 .order_by(db.articles.c.published_at.desc(), db.articles.c.id).limit(limit))
        if category is not None:
            query = query.where(_in_sections([category]))
        if categories is not None:
            query = query.where(_in_sections(categories))
        if published_after is not None:
            query = query.where(db.articles.c.published_at > published_after)
        if published_until is not None:
            query = query.where(db.articles.c.published_at <= published_until)
        with self.engine.connect() as conn:
            return _read(conn, conn.execute(query).all())

    def article(self, article_id: str) -> StoredArticle | None:
        with self.engine.connect() as conn:
            return next(iter(_read(conn, conn.execute(select(db.articles).where(db.articles.c.id == article_id)).all())),
                        None)

    def most_viewed(self, *, since: datetime, until: datetime, limit: int, category: str | None = None,
                    published_after: datetime | None = None) -> list[StoredArticle]:
        """Live articles by views counted in [since, until), ties broken by recency; only articles with views."""
        views = func.sum(db.article_views.c.views).label("views")
        counted = (select(db.article_views.c.article_id, views)
                   .where(db.article_views.c.hour_at >= since, db.article_views.c.hour_at < until)
                   .group_by(db.article_views.c.article_id).subquery())
        query = (select(db.articles, counted.c.views)
                 .join(counted, counted.c.article_id == db.articles.c.id).where(db.articles.c.status == LIVE)
                 .order_by(counted.c.views.desc(), db.articles.c.published_at.desc(), db.articles.c.id)
                 .limit(limit))
        if category is not None:
            query = query.where(_in_sections([category]))
        if published_after is not None:
            query = query.where(db.articles.c.published_at > published_after)
        with self.engine.connect() as conn:
            return _read(conn, conn.execute(query).all())

    def add_views_batch(self, rows: Iterable[tuple[str, datetime, int]]) -> None:
        """Add (article id, hour, views) to the hourly buckets in one transaction (an upsert per bucket)."""
        self._add_counts(db.article_views, "views", [{"article_id": a, "hour_at": h.replace(minute=0, second=0,
                                                      microsecond=0), "views": n} for a, h, n in rows])

    def add_click(self, article_id: str, at: datetime, channel: str) -> None:
        self._add_counts(db.article_clicks, "clicks", [{"article_id": article_id, "channel": channel, "clicks": 1,
                                                        "hour_at": at.replace(minute=0, second=0, microsecond=0)}])

    def add_campaign_click(self, campaign: str, article_id: str) -> None:
        self._add_counts(db.campaign_clicks, "clicks", [{"campaign": campaign[:64], "article_id": article_id, "clicks": 1}])

    def campaign_clicks(self, campaign: str) -> dict[str, int]:
        """article id -> clicks through links of this campaign."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(db.campaign_clicks.c.article_id, db.campaign_clicks.c.clicks)
                                .where(db.campaign_clicks.c.campaign == campaign))
            return {r.article_id: r.clicks for r in rows}

    def _add_counts(self, table: Table, column: str, rows: list[dict[str, object]]) -> None:
        if not rows:
            return
        statement = database.insert_for(self.engine)(table)
        keys = [c.name for c in table.primary_key.columns]
        statement = statement.on_conflict_do_update(
            index_elements=keys, set_={column: getattr(table.c, column) + getattr(statement.excluded, column)})
        with self.engine.begin() as conn:
            conn.execute(statement, rows)

    def clicks(self, article_id: str) -> dict[str, int]:
        t = db.article_clicks
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.channel, func.sum(t.c.clicks)).where(t.c.article_id == article_id)
                                .group_by(t.c.channel))
            return {channel: int(total) for channel, total in rows}

    def article_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(db.articles.c.id)).scalars())

    def find_article(self, url_or_id: str) -> StoredArticle | None:
        """By article id, else by canonical URL."""
        found = self.article(url_or_id)
        if found is None and url_or_id.startswith(("http://", "https://")):
            from .normalise import canonical_url

            with self.engine.connect() as conn:
                rows = conn.execute(select(db.articles).where(db.articles.c.url == canonical_url(url_or_id))).all()
                found = next(iter(_read(conn, rows)), None)
        return found

    def feed_versions(self) -> dict[str | None, FeedVersion]:
        """Every section's FeedVersion (by the sections its stories were published in) in one grouped query, and
        under None the version of all articles: a story seen in one more section moves that section's count. Live
        stories are counted; a kill or a hold moves `changed_at` (a killed story's tombstone is in the Atom feed)."""
        a, ac = db.articles, db.article_categories
        tag = database.UTCDateTime().process_result_value
        live = func.coalesce(func.sum(case((a.c.status == LIVE, 1), else_=0)), 0)
        by_section = (select(ac.c.category, live, func.max(a.c.changed_at), func.max(a.c.updated_at))
                      .join(a, a.c.id == ac.c.article_id).group_by(ac.c.category))
        everything = select(live, func.max(a.c.changed_at), func.max(a.c.updated_at))
        with self.engine.connect() as conn:
            versions: dict[str | None, FeedVersion] = {
                category: FeedVersion(count, tag(changed, None), tag(updated, None))
                for category, count, changed, updated in conn.execute(by_section)}
            count, changed, updated = conn.execute(everything).one()
        versions[None] = FeedVersion(count, tag(changed, None), tag(updated, None))
        return versions

    def views_version(self, since: datetime) -> tuple[int, int]:
        """(total views, buckets) counted since `since`: moves whenever a view is counted."""
        v = db.article_views
        with self.engine.connect() as conn:
            total, buckets = conn.execute(select(func.coalesce(func.sum(v.c.views), 0), func.count())
                                          .where(v.c.hour_at >= since)).one()
        return int(total), int(buckets)

    def first_published_at(self, category: str | None = None) -> datetime | None:
        """When the oldest article was published; dates before 1900 (a CMS's empty date, 0001-01-01) are none."""
        query = select(func.min(db.articles.c.published_at)).where(db.articles.c.published_at >= EARLIEST)
        if category is not None:
            query = query.where(_in_sections([category]))
        with self.engine.connect() as conn:
            return database.UTCDateTime().process_result_value(conn.execute(query).scalar(), None)

    def published_versions(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return {row.slug: row.version for row in conn.execute(select(db.published_feeds))}

    def record_published(self, slug: str, version: str, now: datetime) -> bool:
        """Store the feed's announced version; False if it was already stored (another process announced it)."""
        t = db.published_feeds
        with self.engine.begin() as conn:
            row = conn.execute(select(t.c.version).where(t.c.slug == slug)).first()
            if row is not None and row.version == version:
                return False
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(t.insert().values(slug=slug, version=version, changed_at=now))
                except IntegrityError:
                    return False
                return True
            return conn.execute(t.update().where(t.c.slug == slug, t.c.version == row.version)
                                .values(version=version, changed_at=now)).rowcount == 1

    def archive(self, slug: str, month: str) -> bytes | None:
        t = db.feed_archives
        with self.engine.connect() as conn:
            return conn.execute(select(t.c.body).where(t.c.slug == slug, t.c.month == month)).scalar()

    def save_archive(self, slug: str, month: str, body: bytes, now: datetime) -> bytes:
        """Keep the first body saved for a finished month and return what is kept."""
        try:
            with self.engine.begin() as conn:
                conn.execute(db.feed_archives.insert().values(slug=slug, month=month, body=body, created_at=now))
        except IntegrityError:
            kept = self.archive(slug, month)
            assert kept is not None
            return kept
        return body

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"database unreachable: {type(exc).__name__}") from exc


def _article_values(article: Article, known_categories: dict[str, int]) -> dict[str, object]:
    return {
        "guid": article.guid, "url": article.url, "title": article.title, "summary": article.summary,
        "content_html": article.content_html, "byline": article.byline, "author_email": article.author_email,
        "category": next(iter(_known(article.all_categories, known_categories)), None),
        "tags": list(article.tags), "image_url": article.image_url, "published_at": article.published_at,
        "updated_at": article.updated_at, "content_hash": article.content_hash,
        "bylines": [{"name": r.name, "role": r.role, "desk": r.desk} for r in article.reporters],
    }


def _in_sections(slugs: Sequence[str]):  # type: ignore[no-untyped-def]
    """Articles published in any of these sections (not only those whose first section it is)."""
    ac = db.article_categories
    return db.articles.c.id.in_(select(ac.c.article_id).where(ac.c.category.in_(list(slugs))))


def _known(slugs: Iterable[str | None], known: dict[str, int]) -> list[str]:
    """The configured ones of `slugs`, in the configuration's order: whatever order a story's sections were seen in,
    its first section (`articles.category`) is the same."""
    return sorted((slug for slug in dict.fromkeys(slugs) if slug in known), key=known.__getitem__)


def _union(first: Iterable[str], more: Iterable[str]) -> list[str]:
    return list(dict.fromkeys([*first, *more]))


def _read(conn: Connection, rows: Sequence[Any]) -> list[StoredArticle]:
    """Article rows (with `views` where ranked) as StoredArticles, each with every section it was published in."""
    sections: dict[str, list[str]] = {}
    ids = [r.id for r in rows]
    ac, c = db.article_categories, db.categories
    for i in range(0, len(ids), 400):
        query = (select(ac.c.article_id, ac.c.category).join(c, c.c.slug == ac.c.category, isouter=True)
                 .where(ac.c.article_id.in_(ids[i:i + 400])).order_by(c.c.position, ac.c.category))
        for article_id, category in conn.execute(query):
            sections.setdefault(article_id, []).append(category)
    corrections: dict[str, list[Correction]] = {}
    k = db.article_corrections
    for i in range(0, len(ids), 400):
        query = select(k).where(k.c.article_id.in_(ids[i:i + 400])).order_by(k.c.corrected_at, k.c.id)
        for row in conn.execute(query):
            corrections.setdefault(row.article_id, []).append(Correction(row.note, row.corrected_at, row.revision))
    return [_stored(r, tuple(sections.get(r.id) or ((r.category,) if r.category else ())),
                    tuple(corrections.get(r.id, ()))) for r in rows]


def _stored(row, categories: tuple[str, ...],  # type: ignore[no-untyped-def]
            corrections: tuple[Correction, ...] = ()) -> StoredArticle:
    return StoredArticle(
        id=row.id, guid=row.guid, url=row.url, title=row.title, summary=row.summary, content_html=row.content_html,
        byline=row.byline, author_email=row.author_email, category=row.category, tags=tuple(row.tags or ()),
        image_url=row.image_url, published_at=row.published_at, updated_at=max(row.updated_at, row.published_at),
        changed_at=row.changed_at, revision=row.revision, views=int(getattr(row, "views", 0) or 0),
        source_id=row.source_id, categories=categories,
        reporters=tuple(Reporter(b.get("name", ""), b.get("role"), b.get("desk")) for b in row.bylines or ()
                        if isinstance(b, dict) and b.get("name")),
        status=row.status, status_reason=row.status_reason, status_at=row.status_at, is_urgent=bool(row.is_urgent),
        corrections=corrections,
    )


def _source_state(row) -> SourceState:  # type: ignore[no-untyped-def]
    return SourceState(**{name: getattr(row, name) for name in SourceState.__dataclass_fields__})
