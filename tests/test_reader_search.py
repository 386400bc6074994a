"""The console's queries on SQLite and PostgreSQL: `SubscriberStore.list` (every filter in SQL, keyset paging both
ways, the bounded count, a whole address by its hash), a reader's delivery history, and `ArticleSearch`."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from feeds.article_search import ArticleQuery, ArticleSearch
from feeds.store import ArticleStore
from newsletter.deliveries import DeliveryStore, Outcome
from newsletter.subscribers import SubscriberStore
from tests.conftest import NOW
from tests.security.conftest import stored_article


@pytest.fixture
def readers(engine: sa.Engine) -> SubscriberStore:
    store = SubscriberStore(engine, ("daily", "weekly"))
    for i in range(12):
        store.add(f"Reader{i:02d}@Example.com", categories=["politics", "economy"] if i % 3 == 0 else ["politics"],
                  editions=["weekly"] if i % 4 == 0 else ["daily"], now=NOW, confirmed=i % 2 == 0, method="import")
    store.add("odd_100%@example.com", categories=["economy"], editions=["daily"], now=NOW, confirmed=True,
              method="import")
    return store


def emails(rows: list) -> list[str]:  # type: ignore[type-arg]
    return [r.email for r in rows]


@pytest.mark.parametrize("filters, expected", [
    pytest.param({"category": "economy"}, ["Reader00", "Reader03", "Reader06", "Reader09", "odd_100%"], id="category"),
    pytest.param({"edition": "weekly"}, ["Reader00", "Reader04", "Reader08"], id="edition"),
    pytest.param({"status": "pending", "category": "economy"}, ["Reader03", "Reader09"], id="status-and-category"),
    pytest.param({"search": "READER1"}, ["Reader10", "Reader11"], id="search-any-case"),
    pytest.param({"search": "_100%"}, ["odd_100%"], id="wildcards-are-letters"),
    pytest.param({"search": "%"}, ["odd_100%"], id="percent-alone"),
    pytest.param({"address": "reader05@example.COM"}, ["Reader05"], id="whole-address"),
    pytest.param({"category": "nope"}, [], id="unknown-category"),
])
def test_list_filters_in_sql(readers: SubscriberStore, filters: dict[str, str], expected: list[str]) -> None:
    total, rows = readers.list(**filters, limit=100)  # type: ignore[arg-type]
    assert sorted(e.split("@")[0] for e in emails(rows)) == expected
    assert total == len(expected)


def test_keyset_pages_walk_both_ways_and_the_count_is_bounded(readers: SubscriberStore) -> None:
    _, everyone = readers.list(limit=100)
    ids = [r.id for r in everyone]
    seen, before = [], None
    while True:
        total, rows = readers.list(limit=5, before_id=before, newest_first=True, count_up_to=7)
        if not rows:
            break
        assert total == 7
        seen += [r.id for r in rows]
        before = rows[-1].id
    assert seen == sorted(ids, reverse=True)
    forward, after = [], None
    while rows := readers.list(limit=4, after_id=after, category="politics")[1]:
        forward += [r.id for r in rows]
        after = rows[-1].id
    assert len(forward) == 12 and forward == sorted(forward)


def test_a_readers_history_has_each_delivery_with_its_edition(engine: sa.Engine, readers: SubscriberStore) -> None:
    reader = readers.find("reader00@example.com")
    assert reader is not None
    deliveries = DeliveryStore(engine)
    for days, outcome in ((2, Outcome(reader.id, "sent", None, 1, at=NOW - timedelta(days=2))),
                          (1, Outcome(reader.id, "failed", "550 5.1.1 unknown user", 3))):
        run = deliveries.open_edition("weekly", NOW - timedelta(days=days), NOW - timedelta(days=days + 7), NOW)
        deliveries.queue(run, [(reader.id, f"<{days}@x>")], segment_id=None, articles=4,  # type: ignore[arg-type]
                         high_water_at=NOW)
        deliveries.record(run, [outcome])
    history = readers.history(reader.id, limit=1)
    assert history is not None and history.deliveries_total == 2
    [latest] = history.deliveries
    assert (latest.edition, latest.status, latest.last_error, latest.attempts) == (
        "weekly", "failed", "550 5.1.1 unknown user", 3)
    assert readers.history(10**9) is None


def test_article_search_and_figures(store: ArticleStore, engine: sa.Engine) -> None:
    store.upsert_articles([stored_article(1, title="금리 100% 인상"), stored_article(30, "economy", title="환율"),
                           stored_article(60, title="총선_결과")], source_id=None, now=NOW)
    search = ArticleSearch(engine)
    assert [a.title for a in search.find(ArticleQuery(text="100%"))[1]] == ["금리 100% 인상"]
    assert [a.title for a in search.find(ArticleQuery(text="_"))[1]] == ["총선_결과"]
    assert [a.title for a in search.find(ArticleQuery(category="economy"))[1]] == ["환율"]
    total, page = search.find(ArticleQuery(published_from=NOW - timedelta(hours=31),
                                           published_until=NOW - timedelta(hours=29)))
    assert total == 1 and page[0].title == "환율"
    assert search.find(ArticleQuery(limit=1, offset=1))[1][0].title == "환율"
    zone = ZoneInfo("Asia/Seoul")
    store.add_views_batch([("art000000001", NOW, 3), ("art000000001", NOW - timedelta(days=2), 4),
                           ("art000000001", NOW - timedelta(days=40), 100)])
    days = search.views_per_day("art000000001", days=7, now=NOW, zone=zone)
    assert len(days) == 7 and days[-1] == (NOW.astimezone(zone).date(), 3) and sum(n for _, n in days) == 7
    store.add_click("art000000001", NOW, "email")
    store.add_campaign_click("daily-7", "art000000001")
    assert search.clicks_by_channel("art000000001") == {"email": 1}
    assert search.clicks_by_campaign("art000000001") == [("daily-7", 1)]
    facts = search.facts("art000000001")
    assert facts is not None and facts.revision == 1 and facts.categories == ("politics",)
    assert search.facts("nope") is None
