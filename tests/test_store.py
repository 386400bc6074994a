"""The store on SQLite and PostgreSQL: identity (and the legacy migration that merged stories), edits, ranking,
aware datetimes. The schema itself is checked in test_migrations."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from feeds import db
from feeds.core import database
from feeds.model import Article
from feeds.normalise import article_id
from feeds.store import ArticleStore
from tests.conftest import NOW, migrate


def make_article(n: int, *, category: str | None = "politics", published_at: datetime = NOW,
                 title: str | None = None) -> Article:
    identity = f"guid:article-{n}"
    return Article(id=article_id(identity), identity=identity, guid=f"article-{n}", url=f"https://news.example.com/{n}",
                   title=title or f"기사 {n}", summary=f"요약 {n}", content_html=f"<p>본문 {n}</p>", byline="홍길동 기자",
                   author_email="hong@example.com", category=category, tags=("태그",), image_url=None,
                   published_at=published_at, updated_at=published_at, content_hash=f"hash-{n}-{title}")


def test_upsert_new_unchanged_updated(store: ArticleStore) -> None:
    first = store.upsert_articles([make_article(1), make_article(2)], source_id=None, now=NOW)
    assert (first.new, first.updated, first.unchanged) == (2, 0, 0)
    again = store.upsert_articles([make_article(1), make_article(2)], source_id=None, now=NOW + timedelta(minutes=10))
    assert (again.new, again.updated, again.unchanged) == (0, 0, 2)
    assert store.article(make_article(1).id).changed_at == NOW  # unchanged writes nothing

    later = NOW + timedelta(hours=1)
    edited = replace(make_article(1, title="기사 1 (수정)"), published_at=later, updated_at=later)
    result = store.upsert_articles([edited], source_id=None, now=later)
    assert (result.new, result.updated) == (0, 1)
    stored = store.article(edited.id)
    assert stored.title == "기사 1 (수정)"
    assert stored.revision == 2
    assert stored.published_at == NOW  # the first publication time is kept
    assert stored.updated_at == later and stored.changed_at == later


def test_same_identity_twice_in_one_batch_is_stored_once(store: ArticleStore) -> None:
    result = store.upsert_articles([make_article(1), make_article(1)], source_id=None, now=NOW)
    assert result.new == 1
    assert len(store.articles()) == 1


def test_datetimes_come_back_aware_in_utc(store: ArticleStore) -> None:
    kst = timezone(timedelta(hours=9))
    store.upsert_articles([make_article(1, published_at=datetime(2026, 11, 25, 9, 0, tzinfo=kst))], source_id=None, now=NOW)
    stored = store.articles()[0]
    assert stored.published_at == datetime(2026, 11, 25, 0, 0, tzinfo=timezone.utc)
    assert stored.published_at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(store: ArticleStore) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        store.upsert_articles([make_article(1, published_at=datetime(2026, 11, 25, 9, 0))], source_id=None, now=NOW)


def test_articles_filter_and_order(store: ArticleStore) -> None:
    store.upsert_articles([make_article(i, category="politics" if i % 2 else "economy",
                                        published_at=NOW - timedelta(hours=i)) for i in range(1, 7)],
                          source_id=None, now=NOW)
    assert [a.title for a in store.articles(category="politics")] == ["기사 1", "기사 3", "기사 5"]
    assert [a.title for a in store.articles(limit=2)] == ["기사 1", "기사 2"]
    window = store.articles(published_after=NOW - timedelta(hours=3), published_until=NOW - timedelta(hours=1))
    assert [a.title for a in window] == ["기사 1", "기사 2"]


def test_unknown_category_is_stored_as_none(store: ArticleStore) -> None:
    store.upsert_articles([make_article(1, category="sports")], source_id=None, now=NOW)
    assert store.articles()[0].category is None


def test_most_viewed_counts_the_window_and_breaks_ties_by_recency(store: ArticleStore) -> None:
    articles = [make_article(i, published_at=NOW - timedelta(hours=i)) for i in range(1, 5)]
    store.upsert_articles(articles, source_id=None, now=NOW)
    store.add_views_batch([(articles[0].id, NOW - timedelta(hours=1), 5)])
    store.add_views_batch([(articles[1].id, NOW - timedelta(hours=1), 9)])
    store.add_views_batch([(articles[2].id, NOW - timedelta(hours=2), 5)])
    store.add_views_batch([(articles[3].id, NOW - timedelta(days=3), 100)])  # outside the window
    store.add_views_batch([(articles[0].id, NOW - timedelta(hours=1, minutes=-30), 1)])  # same hour bucket, adds up
    ranked = store.most_viewed(since=NOW - timedelta(hours=24), until=NOW, limit=10)
    assert [(a.title, a.views) for a in ranked] == [("기사 2", 9), ("기사 1", 6), ("기사 3", 5)]


def test_feed_version_moves_with_changes(store: ArticleStore) -> None:
    assert "politics" not in store.feed_versions()
    store.upsert_articles([make_article(1)], source_id=None, now=NOW)
    version = store.feed_versions()["politics"]
    assert version.count == 1 and version.last_changed_at == NOW
    assert "economy" not in store.feed_versions()


def test_sync_config_keeps_source_health_and_hashes_partner_keys(engine: sa.Engine, settings, clock) -> None:  # type: ignore[no-untyped-def]
    from feeds.settings import PartnerSettings, SourceSettings

    store = ArticleStore(engine)
    source = SourceSettings(name="wire", kind="feed", url=None, path=Path("a.xml"),
                            interval=timedelta(minutes=10), category="politics", category_map={})
    partner = PartnerSettings(slug="portal", name="포털", key="partner-key-0123456789", categories=("politics",),
                              full_content=True)
    store.sync_config(settings.categories, [source], [partner], NOW)
    state = store.source("wire")
    store.record_failure(state.id, "HTTP 500", now=NOW, next_check_at=NOW + timedelta(minutes=20))
    store.sync_config(settings.categories, [source], [partner], NOW)  # a restart
    assert store.source("wire").consecutive_failures == 1
    moved = replace(source, path=Path("b.xml"))
    store.sync_config(settings.categories, [moved], [partner], NOW)
    assert store.source("wire").consecutive_failures == 0  # a new location starts afresh
    with engine.connect() as conn:
        hashes = conn.execute(sa.select(db.partner_keys.c.key_hash)).scalars().all()
    assert len(hashes) == 1 and "partner-key" not in hashes[0]


def test_same_story_through_two_sources_is_stored_once(store: ArticleStore) -> None:
    wire = make_article(1)
    identity = "guid:portal-77"  # another source, another guid, the same canonical URL
    portal = replace(wire, id=article_id(identity), identity=identity, guid="portal-77")
    store.upsert_articles([wire], source_id=None, now=NOW)
    result = store.upsert_articles([portal], source_id=None, now=NOW + timedelta(minutes=5))
    assert (result.new, result.unchanged) == (0, 1)
    assert [a.id for a in store.articles()] == [wire.id]


def test_growth_of_a_cms_view_total_counts_as_views(store: ArticleStore) -> None:
    published = NOW - timedelta(hours=5)
    first = replace(make_article(1, published_at=published), external_views=100)
    store.upsert_articles([first], source_id=None, now=NOW)
    store.upsert_articles([replace(first, external_views=100)], source_id=None, now=NOW + timedelta(minutes=10))
    store.upsert_articles([replace(first, external_views=130)], source_id=None, now=NOW + timedelta(hours=1))
    store.upsert_articles([replace(first, external_views=90)], source_id=None, now=NOW + timedelta(hours=2))  # a reset
    store.upsert_articles([replace(first, external_views=95)], source_id=None, now=NOW + timedelta(hours=3))
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(db.article_views.c.hour_at, db.article_views.c.views)
                            .order_by(db.article_views.c.hour_at)).all()
    assert [(r.hour_at, r.views) for r in rows] == [(published, 100), (NOW + timedelta(hours=1), 30),
                                                    (NOW + timedelta(hours=3), 5)]


def test_a_story_seen_in_another_section_is_no_edit(store: ArticleStore) -> None:
    politics = make_article(1, category="economy")
    store.upsert_articles([politics], source_id=None, now=NOW)
    later = NOW + timedelta(hours=3)
    seen_again = store.upsert_articles([replace(politics, category="politics", tags=("다른 태그",))], source_id=None,
                                       now=later)
    assert (seen_again.new, seen_again.updated, seen_again.unchanged) == (0, 0, 1)
    stored = store.article(politics.id)
    assert (stored.revision, stored.updated_at, stored.changed_at) == (1, NOW, NOW)  # not an edit
    # In every section it was published in; its first section by the configuration's order (politics, economy),
    # whichever was read first.
    assert (stored.category, stored.categories) == ("politics", ("politics", "economy"))
    assert [a.id for a in store.articles(category="economy")] == [a.id for a in store.articles(category="politics")]
    assert store.feed_versions()["economy"].count == store.feed_versions()["politics"].count == 1


def test_an_edit_moves_updated_at_never_before_published(store: ArticleStore) -> None:
    first = make_article(1, published_at=NOW)
    store.upsert_articles([first], source_id=None, now=NOW)
    stale = replace(first, title="고친 제목", content_hash="edited", updated_at=NOW - timedelta(hours=2))
    store.upsert_articles([stale], source_id=None, now=NOW + timedelta(hours=1))
    stored = store.article(first.id)
    assert stored.revision == 2 and stored.updated_at == NOW + timedelta(hours=1) >= stored.published_at


@pytest.mark.parametrize("workers", [4])
def test_concurrent_writers_store_each_story_once(store: ArticleStore, workers: int) -> None:
    """Four writers at once, each with the same 60 stories as another section feed gives them: the same guids,
    or other guids with the same canonical URL. The database, not a look-up, keeps each story once."""
    import threading

    stories = [make_article(n) for n in range(60)]
    variants = []
    for w in range(workers):
        batch = []
        for n, story in enumerate(stories):
            if (n + w) % 3 == 0:  # another feed's guid for the same URL
                identity = f"guid:section-{w}-{n}"
                story = replace(story, id=article_id(identity), identity=identity, guid=f"section-{w}-{n}")
            batch.append(replace(story, category=("politics", "economy")[w % 2]))
        variants.append(batch[w * 7:] + batch[:w * 7])  # each writer in another order
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def write(batch: list[Article]) -> None:
        barrier.wait()
        try:
            for i in range(0, len(batch), 10):
                store.upsert_articles(batch[i:i + 10], source_id=None, now=NOW)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(b,)) for b in variants]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    stored = store.articles(limit=1000)
    assert len(stored) == 60 and len({a.url for a in stored}) == 60
    assert all(a.categories == ("politics", "economy") and a.revision == 1 for a in stored)


def test_the_migration_merges_stories_stored_twice(empty_database_url: str) -> None:
    engine = database.make_engine(empty_database_url)
    db.upgrade_legacy(engine, "0009")
    at = NOW - timedelta(days=1)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO categories (slug, name, position) VALUES ('politics', '정치', 0), "
                             "('economy', '경제', 1)"))
        for row_id, identity, category, fetched in (("a1", "guid:x-1", "economy", at),
                                                    ("a2", "guid:y-9", "politics", NOW)):
            conn.execute(sa.text(
                "INSERT INTO articles (id, identity, url, title, summary, content_html, category, tags, published_at, "
                "updated_at, fetched_at, changed_at, content_hash, revision) VALUES (:id, :identity, "
                "'https://news.example.com/1', '기사', '', '', :category, '[]', :at, :at, :fetched, :at, 'h', 1)"),
                {"id": row_id, "identity": identity, "category": category, "at": at, "fetched": fetched})
            conn.execute(sa.text("INSERT INTO article_views (article_id, hour_at, views) VALUES (:id, :hour, 5)"),
                         {"id": row_id, "hour": at.replace(minute=0)})
    migrate(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, category FROM articles")).all()
        views = conn.execute(sa.text("SELECT article_id, views FROM article_views")).all()
        sections = conn.execute(sa.text("SELECT category FROM article_categories ORDER BY category")).scalars().all()
    assert [tuple(r) for r in rows] == [("a1", "economy")] and [tuple(v) for v in views] == [("a1", 10)]
    assert sections == ["economy", "politics"]
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO articles (id, identity, url, title, summary, content_html, tags, published_at, "
                "updated_at, fetched_at, changed_at, content_hash, revision) VALUES ('a3', 'guid:z', "
                "'https://news.example.com/1', 't', '', '', '[]', :at, :at, :at, :at, 'h', 1)"), {"at": at})
    engine.dispose()
