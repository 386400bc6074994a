"""An article's life after publication: corrections, kills, holds and the urgent mark, through the public feeds, the
news sitemap, rankings, signed links, partner pushes and the admin API."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import timedelta

import pytest

from feeds.article_life import ArticleLife
from feeds.errors import InvalidValue, StoreError, UnknownName
from feeds.events import EventLog
from feeds.publish import FeedPublisher
from feeds.push import PushPolicy, PushWorker
from feeds.readership import most_viewed
from newsletter.settings import load_settings
from tests.conftest import NOW, InProcessClient, write_config
from tests.test_partners import SECRET, Receiver
from tests.test_store import make_article

ATOM = "{http://www.w3.org/2005/Atom}"
AT = "{http://purl.org/atompub/tombstones/1.0}"
ADMIN = {"Authorization": "Bearer admin-token-0123456789"}


def entry_ids(body: bytes) -> list[str]:
    return [e.findtext(f"{ATOM}id") for e in ET.fromstring(body).findall(f"{ATOM}entry")]


def test_a_correction_is_a_new_revision_with_its_note_in_every_feed(store, settings, clock) -> None:  # type: ignore[no-untyped-def]
    publisher = FeedPublisher(settings, store, clock)
    article = make_article(1)
    store.upsert_articles([article], source_id=None, now=NOW)
    publisher.refresh()
    before = {fmt: publisher.get("politics", fmt) for fmt in ("rss", "atom", "json")}
    clock.now = NOW + timedelta(hours=2)
    corrected = ArticleLife(store.engine).correct(article.id, "제목의 인명 <오기>를 바로잡습니다", by="desk@example.com",
                                                  now=clock())
    assert (corrected.revision, corrected.updated_at, corrected.status) == (2, clock(), "live")
    assert [c.note for c in corrected.corrections] == ["제목의 인명 <오기>를 바로잡습니다"]
    assert set(publisher.refresh()) >= {"all", "politics"}
    local = clock().astimezone(settings.site.timezone)
    line = f"[정정 {local:%Y-%m-%d %H:%M}] 제목의 인명 <오기>를 바로잡습니다"  # on the site's clock
    for fmt in ("rss", "atom", "json"):
        assert publisher.get("politics", fmt).etag != before[fmt].etag
    atom = ET.fromstring(publisher.get("politics", "atom").body).find(f"{ATOM}entry")
    assert atom.findtext(f"{ATOM}updated") == local.isoformat()
    assert line in atom.findtext(f"{ATOM}summary")
    assert "&lt;오기&gt;" in atom.findtext(f"{ATOM}content")  # the note is text, escaped in the HTML
    item = json.loads(publisher.get("politics", "json").body)["items"][0]
    assert item["date_modified"] == local.isoformat() and "&lt;오기&gt;" in item["content_html"]
    rss = ET.fromstring(publisher.get("politics", "rss").body).find("channel/item")
    assert line in rss.findtext("description").replace("&lt;", "<").replace("&gt;", ">")  # escaped text as HTML
    events = EventLog(store.engine).of(article.id)
    assert [(e.type, e.data.get("revision")) for e in events] == [("article.published", 1), ("article.corrected", 2)]


def test_a_killed_story_leaves_every_feed_with_an_atom_tombstone(store, settings, clock) -> None:  # type: ignore[no-untyped-def]
    publisher = FeedPublisher(settings, store, clock)
    kept, killed = make_article(1), make_article(2, published_at=NOW - timedelta(minutes=5))
    store.upsert_articles([kept, killed], source_id=None, now=NOW)
    store.add_views_batch([(killed.id, NOW, 50), (kept.id, NOW, 5)])
    publisher.refresh()
    tag = entry_ids(publisher.get("politics", "atom").body)[1]
    clock.now = NOW + timedelta(minutes=30)
    ArticleLife(store.engine).kill(killed.id, "취재원 보호 요청", now=clock())
    assert "politics" in publisher.refresh()

    feed = ET.fromstring(publisher.get("politics", "atom").body)
    assert entry_ids(publisher.get("politics", "atom").body) == [entry_ids(publisher.get("all", "atom").body)[0]]
    (tombstone,) = feed.findall(f"{AT}deleted-entry")
    kinds = [child.tag for child in feed]  # RFC 4287 puts every atom:entry after the feed's other elements
    assert kinds.index(f"{AT}deleted-entry") < kinds.index(f"{ATOM}entry") and kinds[-1] == f"{ATOM}entry"
    local = clock().astimezone(settings.site.timezone).isoformat()
    assert (tombstone.get("ref"), tombstone.get("when")) == (tag, local)
    assert tombstone.findtext(f"{AT}comment") == "이 기사는 삭제되었습니다."
    assert feed.findtext(f"{ATOM}updated") == local  # the feed changed when the story left
    assert "취재원" not in publisher.get("politics", "atom").body.decode()  # the reason is the newsroom's
    assert [i["id"] for i in json.loads(publisher.get("politics", "json").body)["items"]] == entry_ids(
        publisher.get("politics", "atom").body)
    assert killed.url.encode() not in publisher.get("politics", "rss").body
    assert killed.url.encode() not in publisher.news_sitemap().body
    assert [a.id for a in most_viewed(store, window=timedelta(hours=24), now=clock(), limit=10)] == [kept.id]
    assert [a.id for a in store.articles()] == [kept.id]
    assert store.article(killed.id).status == "killed"  # kept for the console, the partners' follow-up and /r/

    # The source still lists it: it stays killed, whatever the source says; an edit is recorded, nothing more.
    clock.now += timedelta(minutes=5)
    result = store.upsert_articles([replace(killed, title="다시", content_hash="again")], source_id=None, now=clock())
    assert result.updated == 1 and store.article(killed.id).status == "killed"
    assert [a.id for a in store.articles()] == [kept.id]


def test_tombstones_cover_only_the_feeds_window(store, settings, clock) -> None:  # type: ignore[no-untyped-def]
    settings = replace(settings, feeds=replace(settings.feeds, items=2))
    publisher = FeedPublisher(settings, store, clock)
    old = make_article(1, published_at=NOW - timedelta(days=3))
    store.upsert_articles([old, make_article(2), make_article(3, published_at=NOW - timedelta(hours=1))],
                          source_id=None, now=NOW)
    ArticleLife(store.engine).kill(old.id, "오보", now=NOW)
    publisher.refresh()
    assert ET.fromstring(publisher.get("politics", "atom").body).findall(f"{AT}deleted-entry") == []  # before the window


def test_a_killed_story_invalidates_the_frozen_archive_of_its_month(store, settings, clock) -> None:  # type: ignore[no-untyped-def]
    clock.now = NOW + timedelta(days=40)
    october = make_article(1, published_at=NOW - timedelta(days=10))
    store.upsert_articles([october, make_article(2, published_at=NOW - timedelta(days=9))], source_id=None, now=NOW)
    publisher = FeedPublisher(settings, store, clock)
    month = (NOW - timedelta(days=10)).astimezone(settings.site.timezone).strftime("%Y-%m")
    assert len(entry_ids(publisher.archive("politics", month).body)) == 2
    ArticleLife(store.engine).kill(october.id, "법원 결정", now=clock())
    assert len(entry_ids(publisher.archive("politics", month).body)) == 1


def test_hold_and_release(store, settings, clock) -> None:  # type: ignore[no-untyped-def]
    life = ArticleLife(store.engine)
    article = make_article(1)
    store.upsert_articles([article], source_id=None, now=NOW)
    held = life.hold(article.id, "법무 검토", now=NOW + timedelta(minutes=1))
    assert (held.status, held.status_reason) == ("held", "법무 검토") and store.articles() == []
    assert life.release(article.id, now=NOW + timedelta(minutes=2)).status == "live"
    assert [a.id for a in store.articles()] == [article.id]
    assert [e.type for e in EventLog(store.engine).of(article.id)] == ["article.published"]  # holds are not told


@pytest.mark.parametrize(("act", "error"), [
    (lambda life, a: life.correct(a, "", by=None, now=NOW), InvalidValue),
    (lambda life, a: life.correct(a, "\x00\x01 ", by=None, now=NOW), InvalidValue),
    (lambda life, a: life.correct(a, "가" * 2001, by=None, now=NOW), InvalidValue),
    (lambda life, a: life.kill(a, "", now=NOW), InvalidValue),
    (lambda life, a: life.release(a, now=NOW), StoreError),  # it is not held
    (lambda life, a: life.correct("nosuchid", "메모", by=None, now=NOW), UnknownName),
    (lambda life, a: life.kill("nosuchid", "사유", now=NOW), UnknownName),
])
def test_what_editors_cannot_do(store, act, error) -> None:  # type: ignore[no-untyped-def]
    article = make_article(1)
    store.upsert_articles([article], source_id=None, now=NOW)
    with pytest.raises(error):
        act(ArticleLife(store.engine), article.id)


def test_a_killed_story_is_not_corrected_held_or_killed_again(store) -> None:  # type: ignore[no-untyped-def]
    life, article = ArticleLife(store.engine), make_article(1)
    store.upsert_articles([article], source_id=None, now=NOW)
    life.kill(article.id, "오보", now=NOW)
    for act in (lambda: life.kill(article.id, "again", now=NOW), lambda: life.hold(article.id, "x", now=NOW),
                lambda: life.correct(article.id, "x", by=None, now=NOW), lambda: life.release(article.id, now=NOW)):
        with pytest.raises(StoreError):
            act()
    assert [e.type for e in EventLog(store.engine).of(article.id)] == ["article.published", "article.killed"]


def test_signed_links_to_a_killed_or_held_story_show_a_notice(tmp_path, database_url, clock) -> None:  # type: ignore[no-untyped-def]
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    killed, held = make_article(1), make_article(2)
    services.store.upsert_articles([killed, held], source_id=None, now=NOW)
    life = ArticleLife(services.engine)
    life.kill(killed.id, "오보", now=NOW)
    life.hold(held.id, "검토", now=NOW)
    redirects = services.redirects
    with InProcessClient(service.create_app(services)) as client:
        gone = client.get(redirects.url(killed.id, "email").removeprefix(settings.site.base_url))
        assert gone.status_code == 410 and "삭제된 기사" in gone.text and "오보" not in gone.text
        assert gone.headers["cache-control"] == "no-store" and "location" not in gone.headers
        later = client.get(redirects.url(held.id, "feed").removeprefix(settings.site.base_url))
        assert later.status_code == 404 and "지금은 볼 수 없는 기사" in later.text
    assert services.store.clicks(killed.id) == {}  # no click is counted for a withdrawn story
    services.engine.dispose()


PUSH_CONFIG = """
[admin]
token = "admin-token-0123456789"

[feeds]
refresh = "1h"

[[partners]]
slug = "wire"
name = "통신"
categories = ["politics"]
callback_url = "{url}"
callback_secret = "{secret}"
"""


def pushing_site(tmp_path, database_url: str, clock, receiver: Receiver):  # type: ignore[no-untyped-def]
    """Components whose partner "wire" pushes to `receiver` (PUSH_CONFIG), migrated."""
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url,
                                          extra=PUSH_CONFIG.format(url=receiver.url, secret=SECRET)), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    return services


def push_worker(services, clock, policy: PushPolicy) -> PushWorker:  # type: ignore[no-untyped-def]
    """The lease holder's push worker, stepped by the test."""
    return PushWorker(services.settings, services.partners, services.pushes, services.store, services.redirects,
                      clock, is_leader=lambda: True, interval=timedelta(hours=1), policy=policy)


def test_partners_that_have_a_story_are_told_of_its_correction_and_kill(tmp_path, database_url, clock) -> None:  # type: ignore[no-untyped-def]
    import service

    with Receiver(fail_first=0) as receiver:
        services = pushing_site(tmp_path, database_url, clock, receiver)
        first, second = make_article(1, published_at=NOW + timedelta(minutes=1)), make_article(
            2, published_at=NOW + timedelta(minutes=1))
        clock.now = NOW + timedelta(minutes=2)
        services.store.upsert_articles([first, second], source_id=None, now=clock())
        worker = push_worker(services, clock, PushPolicy(max_attempts=3, timeout=5))
        life = ArticleLife(services.engine)
        life.kill(second.id, "게재 보류 요청", now=clock())  # before its push went: nothing of it is ever sent
        assert worker.step().delivered == 1
        assert services.pushes.counts("wire")["dropped"] == 0  # killed before it was queued: never queued at all
        clock.now += timedelta(minutes=1)
        life.correct(first.id, "숫자 오류 정정", by="desk@example.com", now=clock())
        assert (worker.step().queued, worker.step().queued) == (1, 0)  # each event once
        clock.now += timedelta(minutes=1)
        life.kill(first.id, "오보", now=clock())
        assert worker.step().delivered == 1
        kinds = [(doc["_gazette"]["event"], [i["title"] for i in doc["items"]]) for _, doc in receiver.taken]
        assert kinds == [("article.published", ["기사 1"]), ("article.corrected", ["기사 1"]), ("article.killed", [])]
        correction = receiver.taken[1][1]
        assert correction["_gazette"]["correction"]["note"] == "숫자 오류 정정"
        assert "숫자 오류 정정" in correction["items"][0]["content_html"]
        notice = receiver.taken[2][1]["_gazette"]["article"]
        assert (notice["id"], notice["url"], notice["status"], notice["reason"]) == (
            first.id, first.url, "killed", "오보")
        assert services.pushes.received(first.id) == [("wire", NOW + timedelta(minutes=2))]
        assert services.pushes.received(second.id) == []

        with InProcessClient(service.create_app(services)) as client:
            shown = client.get(f"/api/articles/{first.id}", headers=ADMIN).json()
            assert shown["status"] == "killed" and [p["partner"] for p in shown["partners"]] == ["wire"]
            assert [h["event"] for h in shown["history"]] == ["article.published", "article.corrected",
                                                              "article.killed"]
        services.engine.dispose()


def test_a_push_queued_before_a_kill_is_dropped_not_sent(tmp_path, database_url, clock) -> None:  # type: ignore[no-untyped-def]

    with Receiver(fail_first=1) as receiver:
        services = pushing_site(tmp_path, database_url, clock, receiver)
        article = make_article(1, published_at=NOW + timedelta(minutes=1))
        clock.now = NOW + timedelta(minutes=2)
        services.store.upsert_articles([article], source_id=None, now=clock())
        worker = push_worker(services, clock, PushPolicy(max_attempts=3, first_delay=timedelta(seconds=10), timeout=5))
        assert worker.step().failed == 1  # queued, tried once, to be retried
        ArticleLife(services.engine).kill(article.id, "오보", now=clock())
        clock.now += timedelta(minutes=5)
        worker.step()
        assert receiver.taken == [] and services.pushes.counts("wire")["dropped"] == 1
        assert services.pushes.received(article.id) == []  # it never had it: nobody to follow up with
        services.engine.dispose()


def test_the_api_corrects_kills_holds_and_audits(tmp_path, database_url, clock) -> None:  # type: ignore[no-untyped-def]
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url,
                                          extra='[admin]\ntoken = "admin-token-0123456789"\n'), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    a, b = make_article(1), make_article(2)
    services.store.upsert_articles([a, b], source_id=None, now=NOW)
    with InProcessClient(service.create_app(services)) as client:
        fixed = client.post(f"/api/articles/{a.id}/corrections", json={"note": "날짜 정정"}, headers=ADMIN)
        assert fixed.status_code == 201 and fixed.json()["revision"] == 2
        assert fixed.json()["corrections"][0]["note"] == "날짜 정정"
        assert client.request("PUT", f"/api/articles/{a.id}/urgent", json={"urgent": True}, headers=ADMIN).json()["urgent"]
        held = client.post(f"/api/articles/{b.id}/hold", json={"reason": "검토"}, headers=ADMIN)
        assert held.json()["status"] == "held"
        assert client.post(f"/api/articles/{b.id}/release", headers=ADMIN).json()["status"] == "live"
        killed = client.post(f"/api/articles/{b.id}/kill", json={"reason": "오보"}, headers=ADMIN)
        assert killed.json()["status"] == "killed" and killed.json()["status_reason"] == "오보"
        again = client.post(f"/api/articles/{b.id}/kill", json={"reason": "오보"}, headers=ADMIN)
        assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
        assert client.post(f"/api/articles/{b.id}/kill", json={}, headers=ADMIN).status_code == 422
        assert client.post("/api/articles/nosuch/kill", json={"reason": "x"}, headers=ADMIN).status_code == 404
        assert client.post(f"/api/articles/{a.id}/kill", json={"reason": "x"}).status_code == 401
        actions = [e["action"] for e in client.get("/api/audit", headers=ADMIN).json()["items"]]
        assert {"article.correct", "article.urgent", "article.hold", "article.release", "article.kill"} <= set(actions)
    services.engine.dispose()


def test_the_command_line_shows_corrects_holds_and_kills(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    import service
    from tests.conftest import migrated_sqlite_url, run_gazette

    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path))
    services = service.Components(load_settings(config, {}), clock=clock)
    services.prepare_database(migrate=True)
    article = make_article(1)
    services.store.upsert_articles([article], source_id=None, now=NOW)
    services.engine.dispose()
    run = lambda *args, expect=0: run_gazette([*args, "--config", str(config)], expect=expect)  # noqa: E731

    assert "revision 2" in run("articles", "correct", article.url, "--note", "오탈자 정정").stdout
    assert "held" in run("articles", "hold", article.id, "--reason", "검토").stdout
    run("articles", "hold", article.id, "--reason", "again", expect=1)
    assert "live" in run("articles", "release", article.id).stdout
    assert "killed" in run("articles", "kill", article.id, "--reason", "오보").stdout
    shown = run("articles", "show", article.id).stdout
    assert "killed since" in shown and "오보" in shown and "오탈자 정정" in shown
    assert "no article" in run("articles", "show", "nosuch", expect=2).stderr


def test_an_alert_cannot_lead_to_a_killed_or_held_story(store) -> None:  # type: ignore[no-untyped-def]
    from newsletter.alerts import AlertDraft, resolve_alert
    from newsletter.errors import AlertRefused

    killed, held, live = make_article(1), make_article(2), make_article(3)
    store.upsert_articles([killed, held, live], source_id=None, now=NOW)
    life = ArticleLife(store.engine)
    life.kill(killed.id, "오보", now=NOW)
    life.hold(held.id, "검토", now=NOW)
    for story in (killed, held):
        with pytest.raises(AlertRefused, match="cannot lead"):
            resolve_alert(AlertDraft(article_id=story.id), category_order=("politics",), article=store.article(story.id))
    assert resolve_alert(AlertDraft(article_id=live.id), category_order=("politics",),
                         article=store.article(live.id)).article_id == live.id


def test_old_events_are_pruned_but_not_one_a_webhook_still_waits_for(store) -> None:  # type: ignore[no-untyped-def]
    from feeds import db

    old, waited, recent = make_article(1), make_article(2), make_article(3)
    store.upsert_articles([old, waited], source_id=None, now=NOW - timedelta(days=100))
    store.upsert_articles([recent], source_id=None, now=NOW)
    log = EventLog(store.engine)
    ids = {e.subject: e.id for e in log.after(0)}
    with store.engine.begin() as conn:
        endpoint = conn.execute(db.webhook_endpoints.insert().values(
            name="crm", url="https://crm.example/hook", secret="s", events=["article.published"],
            created_at=NOW)).inserted_primary_key[0]
        rows = [(ids[old.id], "delivered", "d1"), (ids[waited.id], "parked", "d2")]
        conn.execute(db.webhook_deliveries.insert(), [
            {"endpoint_id": endpoint, "event_id": event_id, "event": "article.published", "delivery_id": delivery,
             "status": status, "attempts": 1, "created_at": NOW - timedelta(days=100)}
            for event_id, status, delivery in rows])
    assert log.prune(NOW) == 1
    assert [e.subject for e in log.after(0)] == [waited.id, recent.id]
    with store.engine.connect() as conn:
        assert list(conn.execute(db.webhook_deliveries.select().with_only_columns(
            db.webhook_deliveries.c.delivery_id))) == [("d2",)]


def test_a_push_of_a_held_story_waits_and_goes_once_it_is_released(tmp_path, database_url, clock) -> None:  # type: ignore[no-untyped-def]

    with Receiver(fail_first=0) as receiver:
        services = pushing_site(tmp_path, database_url, clock, receiver)
        article = make_article(1, published_at=NOW + timedelta(minutes=1))
        clock.now = NOW + timedelta(minutes=2)
        services.store.upsert_articles([article], source_id=None, now=clock())
        worker = push_worker(services, clock, PushPolicy(max_attempts=3, timeout=5))
        services.pushes.enqueue(services.partners.partner("wire"), clock())  # queued while it was live
        life = ArticleLife(services.engine)
        life.hold(article.id, "법무 검토", now=clock())
        life.correct(article.id, "보류 중 정정", by=None, now=clock())
        assert worker.step().delivered == 0 and receiver.taken == []
        (waiting,) = services.pushes.pushes("wire")
        assert (waiting.status, waiting.attempts) == ("pending", 0)  # waiting, no attempt spent
        life.release(article.id, now=clock())
        clock.now += timedelta(minutes=5)
        assert worker.step().delivered == 1
        (doc,) = [doc for _, doc in receiver.taken]
        assert doc["_gazette"]["event"] == "article.published" and "보류 중 정정" in doc["items"][0]["content_html"]
        services.engine.dispose()
