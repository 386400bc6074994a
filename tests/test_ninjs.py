"""ninjs 3.1 for partners: every document Gazette makes validates against the IPTC schema (tests/data, formats
checked), the mapping of each field, the `.ninjs` partner feeds (licence, embargo, conditional GET, gzip, usage),
a correction and a kill reaching the feeds and the pushes, and hostile text that stays data."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from lxml import html as lxml_html
from sqlalchemy import Engine

from feeds.article_life import ArticleLife
from feeds.bylines import Reporter
from feeds.model import HELD, KILLED, Correction, StoredArticle
from feeds.ninjs import SCHEMA_URI, as_link, body_text, ninjs_document, ninjs_item
from feeds.normalise import sanitise_html, xml_text
from feeds.push import PushPolicy, PushWorker
from feeds.readership import Redirects
from feeds.settings import SiteSettings
from newsletter.settings import load_settings
from tests.conftest import NOW, InProcessClient, wait_until, write_config
from tests.test_partners import (  # noqa: F401  (app: the partner suite's app, reused as a fixture)
    LATE_KEY,
    PORTAL_KEY,
    SECRET,
    Receiver,
    app,
    articles,
    get,
    partner,
)
from tests.test_store import make_article

SCHEMA = json.loads((Path(__file__).parent / "data" / "ninjs-3.1.schema.json").read_text("utf-8"))
CHECKER = FormatChecker()
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=CHECKER)
SITE = SiteSettings(name="한빛일보", base_url="https://news.example.com", timezone=ZoneInfo("Asia/Seoul"), language="ko")
LABELS = {"politics": "정치", "economy": "경제"}
REDIRECTS = Redirects("signing-key-0123456789abcdef", SITE.base_url)


def assert_valid(items: list[dict[str, Any]] | dict[str, Any]) -> None:
    """Every item valid ninjs 3.1, with every error named if not."""
    for item in items if isinstance(items, list) else [items]:
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(item)]
        assert not errors, errors


def stored(n: int = 1, **changes: Any) -> StoredArticle:
    at = NOW - timedelta(hours=n)
    values: dict[str, Any] = {
        "id": f"a{n:015d}", "guid": None, "url": f"https://news.example.com/{n}", "title": f"기사 {n}",
        "summary": f"요약 {n}", "content_html": f'<p>첫 문단 {n}</p><p>둘째 <a href="https://news.example.com/x">문단</a></p>',
        "byline": "김진호 국제전문기자", "author_email": None, "category": "politics", "tags": ("선거",),
        "image_url": "https://news.example.com/i.jpg", "published_at": at, "updated_at": at, "changed_at": at,
        "revision": 1, "categories": ("politics", "economy"), "reporters": (Reporter("김진호", "전문기자", "국제"),)}
    return StoredArticle(**{**values, **changes})


def item(article: StoredArticle, **licence: Any) -> dict[str, Any]:
    made = ninjs_item(article, partner(**licence), site=SITE, labels=LABELS, redirects=REDIRECTS)
    assert_valid(made)
    return made


# --- the schema and its validator bite -------------------------------------------------------------------------------

def test_the_schema_is_ninjs_3_1_and_formats_are_checked() -> None:
    assert SCHEMA["$id"] == SCHEMA_URI
    Draft202012Validator.check_schema(SCHEMA)
    assert {"date-time", "uri"} <= set(CHECKER.checkers)  # else `format` would only be an annotation
    good = {"uri": "tag:news.example.com,2026-11-25:article/1"}
    assert VALIDATOR.is_valid(good)
    for bad in ({"uri": "not a uri"}, {**good, "versionCreated": "yesterday"}, {**good, "bylines": []},
                {**good, "pubStatus": "killed"}, {**good, "urgency": 0}, {**good, "headlines": [{"role": "main"}]},
                {"type": "text"}):
        assert not VALIDATOR.is_valid(bad), bad


# --- the mapping ---------------------------------------------------------------------------------------------------

def test_a_live_story_with_the_full_licence() -> None:
    got = item(stored(is_urgent=True), utm=(("utm_source", "p"),))
    uri = "tag:news.example.com,2026-11-24:article/a000000000000001"
    assert list(got)[:8] == ["uri", "standard", "type", "version", "firstCreated", "versionCreated", "pubStatus",
                             "language"]
    assert (got["uri"], got["type"], got["version"], got["pubStatus"], got["language"]) == (
        uri, "text", "1", "usable", "ko")
    assert got["firstCreated"] == got["contentCreated"] == got["versionCreated"] == "2026-11-25T08:00:00+09:00"
    assert got["urgency"] == 1 and got["representationType"] == "full" and "embargoedUntil" not in got
    assert got["headlines"] == [{"value": "기사 1"}]
    assert got["descriptions"] == [{"role": "summary", "contentType": "text/plain", "value": "요약 1"}]
    html, text = got["bodies"]
    assert html["contentType"] == "text/html" and html["value"].startswith("<p>첫 문단 1</p>")
    assert "https://news.example.com/x?utm_source=p" in html["value"] and "gazette-attribution" in html["value"]
    assert text["contentType"] == "text/plain"
    assert text["value"].startswith("첫 문단 1\n\n둘째 문단\n\n이 기사는 한빛일보에서 제공했습니다. 원문:")
    assert got["by"] == "김진호 국제전문기자" and got["people"] == [{"name": "김진호", "rel": "국제전문기자"}]
    assert got["subjects"] == [{"name": "정치", "literal": "politics"}, {"name": "경제", "literal": "economy"},
                               {"name": "선거"}]
    assert got["renditions"][0]["href"].startswith("https://news.example.com/r/")
    assert got["associations"] == [{"name": "featureimage", "uri": uri + "/featureimage", "type": "picture",
                                    "renditions": [{"name": "original", "href": "https://news.example.com/i.jpg"}]}]
    assert got["altIds"] == [{"role": "gazette", "value": "a000000000000001"},
                             {"role": "canonical", "value": "https://news.example.com/1"}]
    assert got["copyrightNotice"] == "© 2026 한빛일보" and got["copyrightHolder"] == "한빛일보"
    assert got["usageTerms"] == ("본문 전체를 게재할 수 있습니다. 게재할 때 출처를 밝혀 주십시오: "
                                 "이 기사는 한빛일보에서 제공했습니다.")
    odrl = json.loads(got["rightsInfo"]["encodedRights"])
    assert got["rightsInfo"]["langId"] == "http://www.w3.org/ns/odrl/2/" and odrl["@type"] == "Agreement"
    assert [p["action"] for p in odrl["permission"]] == ["reproduce", "distribute"]
    assert all(p["target"] == uri and "constraint" not in p for p in odrl["permission"])


def test_summary_only_no_images_and_an_embargo() -> None:
    got = item(stored(), full_content=False, include_images=False, embargo_minutes=30, attribution="출처: 한빛일보")
    assert got["representationType"] == "partial" and got["embargoedUntil"] == "2026-11-25T08:30:00+09:00"
    assert got["bodies"][0]["value"].startswith("<p>요약 1</p>") and "첫 문단" not in json.dumps(got)
    assert "associations" not in got and "i.jpg" not in json.dumps(got)
    assert got["usageTerms"] == ("요약만 게재할 수 있습니다. 사진은 사용 허락에 포함되지 않습니다. "
                                 "게재할 때 출처를 밝혀 주십시오: 출처: 한빛일보")
    constraint = json.loads(got["rightsInfo"]["encodedRights"])["permission"][0]["constraint"][0]
    assert constraint["rightOperand"]["@value"] == got["embargoedUntil"]


@pytest.mark.parametrize("changes, expected", [
    pytest.param({"image_url": None}, {"associations": None}, id="no-image"),
    pytest.param({"image_url": "javascript:alert(1)"}, {"associations": None}, id="image-not-a-link"),
    pytest.param({"reporters": (), "byline": None}, {"by": None, "people": None}, id="no-byline"),
    pytest.param({"reporters": (Reporter("홍길동", "기자"), Reporter("김철수", "기자"), Reporter("Jane Roe"))},
                 {"by": "홍길동·김철수 기자, Jane Roe",
                  "people": [{"name": "홍길동", "rel": "기자"}, {"name": "김철수", "rel": "기자"},
                             {"name": "Jane Roe", "rel": "author"}]}, id="korean-bylines-with-roles"),
    pytest.param({"summary": "", "content_html": ""}, {"descriptions": None, "representationType": "partial"},
                 id="empty-story"),
    pytest.param({"url": None}, {"renditions": None}, id="no-link"),
    pytest.param({"categories": (), "category": None, "tags": ()}, {"subjects": None}, id="no-section"),
])
def test_optional_fields(changes: dict[str, Any], expected: dict[str, Any]) -> None:
    got = item(stored(**changes))
    assert {key: got.get(key) for key in expected} == expected


def test_corrections_bump_the_version_and_go_in_the_ed_note_newest_first() -> None:
    first, second = NOW + timedelta(hours=1), NOW + timedelta(hours=2)
    got = item(stored(revision=3, updated_at=second, corrections=(
        Correction("제목의 숫자를 바로잡았습니다.", first, 2), Correction("이름을 고쳤습니다.", second, 3))))
    assert got["version"] == "3" and got["versionCreated"] == "2026-11-25T11:00:00+09:00"
    assert got["edNote"] == ("정정(2026-11-25 11:00 KST): 이름을 고쳤습니다.\n"
                             "정정(2026-11-25 10:00 KST): 제목의 숫자를 바로잡았습니다.")
    assert got["uri"] == item(stored())["uri"]  # one story, one uri, whatever its revision


def test_a_killed_story_is_canceled_with_nothing_of_its_text() -> None:
    killed = stored(status=KILLED, status_reason="명예훼손 소지", status_at=NOW + timedelta(hours=3), revision=2)
    got = item(killed)
    assert got == {"uri": "tag:news.example.com,2026-11-24:article/a000000000000001",
                   "standard": {"name": "ninjs", "version": "3.1", "schema": SCHEMA_URI}, "type": "text",
                   "version": "2", "firstCreated": "2026-11-25T08:00:00+09:00",
                   "versionCreated": "2026-11-25T12:00:00+09:00", "pubStatus": "canceled", "language": "ko",
                   "edNote": "이 기사는 2026-11-25 12:00 KST에 취소되었습니다. 사용하지 말고, 이미 게재했다면 내려 "
                             "주십시오. 사유: 명예훼손 소지",
                   "altIds": [{"role": "gazette", "value": "a000000000000001"}]}
    with pytest.raises(ValueError, match="held"):
        ninjs_item(stored(status=HELD), partner(), site=SITE, labels=LABELS, redirects=REDIRECTS)


def test_english_site_words() -> None:
    english = ninjs_item(stored(status=KILLED, status_at=NOW), partner(), site=replace(SITE, language="en"),
                         labels=LABELS, redirects=REDIRECTS)
    assert english["language"] == "en" and english["edNote"].startswith("This story was killed at 2026-11-25 09:00")


@pytest.mark.parametrize("url, expected", [
    pytest.param("https://news.example.com/i.jpg?w=1&h=2", "https://news.example.com/i.jpg?w=1&h=2", id="plain"),
    pytest.param("https://news.example.com/사진/대표 이미지.jpg",
                 "https://news.example.com/%EC%82%AC%EC%A7%84/%EB%8C%80%ED%91%9C%20%EC%9D%B4%EB%AF%B8%EC%A7%80.jpg",
                 id="korean-file-name"),
    pytest.param("https://한빛.kr/i.jpg", "https://xn--xx3br43b.kr/i.jpg", id="idn-host"),
    pytest.param("HTTP://news.example.com/a%20b%.jpg", "http://news.example.com/a%20b%25.jpg", id="lone-percent"),
    pytest.param("https://news.example.com/a<b>\"c\"", "https://news.example.com/a%3Cb%3E%22c%22", id="markup"),
    pytest.param("javascript:alert(1)", None, id="javascript"),
    pytest.param("data:image/png;base64,AAAA", None, id="data"),
    pytest.param("//news.example.com/i.jpg", None, id="relative"),
    pytest.param("https://news.example.com/\x00i.jpg", None, id="control-character"),
    pytest.param("https://exa mple.com/i.jpg", None, id="space-in-host"),
    pytest.param("https://news.example.com/\ud800.jpg", None, id="lone-surrogate"),
    pytest.param(None, None, id="none"),
])
def test_as_link(url: str | None, expected: str | None) -> None:
    assert as_link(url) == expected
    if expected:
        assert VALIDATOR.is_valid({"uri": expected})


@pytest.mark.parametrize("html, expected", [
    pytest.param("", "", id="empty"),
    pytest.param("<p>하나</p><p>둘  셋</p>", "하나\n\n둘 셋", id="paragraphs"),
    pytest.param("앞<br>뒤", "앞\n\n뒤", id="break"),
    pytest.param("<ul><li>가</li><li>나</li></ul>", "가\n\n나", id="list"),
    pytest.param("<p>&lt;script&gt; &amp; 따옴표</p>", "<script> & 따옴표", id="entities-become-text"),
    pytest.param("<div>글<script>alert(1)</script><style>p{}</style></div>", "글", id="no-script-text"),
])
def test_body_text(html: str, expected: str) -> None:
    assert body_text(html) == expected


# Text as hostile as a source can send: markup, script ends, control characters, lone surrogates, RTL marks.
HOSTILE = st.lists(st.one_of(st.text(), st.sampled_from(["</script>", "<img src=x onerror=alert(1)>", "&amp;", "\u2028",
                                                         "\x00", "\ud800", "\u202e", '"', "\\", "<p>"]))).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=HOSTILE, summary=HOSTILE, body=HOSTILE, byline=HOSTILE,
       image=st.one_of(HOSTILE, HOSTILE.map(lambda path: "https://news.example.com/" + path)))
def test_hostile_text_validates_and_stays_data(title: str, summary: str, body: str, byline: str, image: str) -> None:
    content = sanitise_html(xml_text(body))  # what the store holds: the normaliser's sanitised HTML
    article = stored(title=title, summary=summary, content_html=content, byline=byline, reporters=(), image_url=image)
    document = ninjs_document([item(article)])
    assert b"<" not in document and b">" not in document and b"\x00" not in document
    parsed = json.loads(document)[0]
    assert parsed["headlines"] == [{"value": xml_text(title)}]
    assert parsed["by"] == xml_text(byline) if xml_text(byline) else "by" not in parsed
    body_tree = lxml_html.fragment_fromstring(parsed["bodies"][0]["value"], create_parent="div")
    assert not [e for e in body_tree.iter() if e.tag in ("script", "style", "iframe", "object")]
    assert not [name for e in body_tree.iter() for name, value in e.attrib.items()
                if name.startswith("on") or value.strip().lower().startswith("javascript:")]
    assert_valid(parsed)


# --- the partner feeds ---------------------------------------------------------------------------------------------

def correct(engine: Engine, article_id: str, note: str, at: datetime) -> None:
    ArticleLife(engine).correct(article_id, note, by="editor@example.com", now=at)


def kill(engine: Engine, article_id: str, reason: str, at: datetime) -> None:
    ArticleLife(engine).kill(article_id, reason, now=at)


def ninjs(client, path: str, key: str = PORTAL_KEY, **headers: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    response = get(client, path, key=key, **headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    document = response.json()
    assert isinstance(document, list)
    assert_valid(document)
    return document


def test_partner_feeds_in_ninjs_follow_each_licence(app) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    client, _ = app
    portal = ninjs(client, "/partners/portal/feeds/politics.ninjs")
    json_feed = get(client, "/partners/portal/feeds/politics.json").json()
    assert [i["uri"] for i in portal] == [i["id"] for i in json_feed["items"]]  # one id in every format
    assert [i["headlines"][0]["value"] for i in portal] == ["기사 4", "기사 1"]
    rich = portal[1]
    assert rich["representationType"] == "full" and "<img" in rich["bodies"][0]["value"]
    assert rich["associations"][0]["renditions"][0]["href"] == "https://news.example.com/i.jpg"
    assert [i["headlines"][0]["value"] for i in ninjs(client, "/partners/portal/feeds/all.ninjs")] == [
        "기사 4", "기사 2", "기사 1"]  # no culture: not licensed
    late = ninjs(client, "/partners/late/feeds/all.ninjs", key=LATE_KEY)
    assert sorted(i["headlines"][0]["value"] for i in late) == ["기사 1", "기사 2", "기사 3"]  # 기사 4: embargoed
    assert all(i["representationType"] == "partial" and "associations" not in i and "embargoedUntil" in i
               for i in late)
    assert late[0]["usageTerms"].endswith("출처: 한빛일보")

    refused = get(client, "/partners/portal/feeds/culture.ninjs")
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    missing = get(client, "/partners/portal/feeds/politics.xml")
    assert missing.status_code == 404 and "rss, atom, json or ninjs" in missing.json()["error"]


def test_conditional_get_gzip_and_usage_for_ninjs(app) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    client, _ = app
    plain = {"Accept-Encoding": "identity"}
    first = get(client, "/partners/portal/feeds/politics.ninjs", **plain)
    assert first.status_code == 200 and first.headers["cache-control"] == "private, max-age=300"
    assert first.headers["etag"].startswith('"') and "Authorization" in first.headers["vary"]
    again = get(client, "/partners/portal/feeds/politics.ninjs", **plain)
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]  # stable bytes
    fresh = get(client, "/partners/portal/feeds/politics.ninjs", **{"If-None-Match": first.headers["etag"]})
    assert fresh.status_code == 304 and fresh.content == b""
    since = get(client, "/partners/portal/feeds/politics.ninjs", **{"If-Modified-Since": first.headers["last-modified"]})
    assert since.status_code == 304
    zipped = get(client, "/partners/portal/feeds/politics.ninjs", **{"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == first.content
    head = client.head("/partners/portal/feeds/politics.ninjs", headers={"Authorization": f"Bearer {PORTAL_KEY}"})
    assert head.status_code == 200 and head.content == b""
    usage = client.get("/api/partners/portal/usage", headers={"Authorization": "Bearer admin-token-0123456789"})
    day = usage.json()["days"][0]
    assert (day["requests"], day["not_modified"], day["articles"]) == (6, 2, 2)
    assert day["bytes"] == 2 * len(first.content) + int(zipped.headers["content-length"])


def test_a_correction_and_a_kill_reach_the_ninjs_feed_at_once(app) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    client, services = app
    engine = services.engine
    rich, fresh = articles()["rich"], articles()["fresh"]
    before = get(client, "/partners/portal/feeds/politics.ninjs")
    json_before = get(client, "/partners/portal/feeds/politics.json")
    services.clock.now = NOW + timedelta(minutes=5)
    correct(engine, rich.id, "사진 설명의 이름을 바로잡았습니다.", services.clock.now)
    kill(engine, fresh.id, "오보", services.clock.now + timedelta(seconds=1))

    after = get(client, "/partners/portal/feeds/politics.ninjs", **{"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    document = after.json()
    assert_valid(document)
    corrected, canceled = document
    assert (corrected["uri"], corrected["version"], corrected["pubStatus"]) == (before.json()[1]["uri"], "2", "usable")
    assert corrected["versionCreated"] == "2026-11-25T09:05:00+09:00"
    assert corrected["edNote"] == "정정(2026-11-25 09:05 KST): 사진 설명의 이름을 바로잡았습니다."
    assert canceled["uri"] == before.json()[0]["uri"] and canceled["pubStatus"] == "canceled"
    assert "headlines" not in canceled and canceled["edNote"].endswith("사유: 오보")
    # The other formats drop the killed story and move too.
    json_after = get(client, "/partners/portal/feeds/politics.json", **{"If-None-Match": json_before.headers["etag"]})
    assert json_after.status_code == 200 and [i["title"] for i in json_after.json()["items"]] == ["기사 1"]
    atom = ET.fromstring(get(client, "/partners/portal/feeds/politics.atom").content)
    (tombstone,) = atom.findall("{http://purl.org/atompub/tombstones/1.0}deleted-entry")
    assert tombstone.get("when") == "2026-11-25T09:05:01+09:00" and tombstone.get("ref").endswith(fresh.id)
    assert [e.findtext("{http://www.w3.org/2005/Atom}title") for e in atom.findall(
        "{http://www.w3.org/2005/Atom}entry")] == ["기사 1"]
    # A held story is in no partner's feed, neither usable nor withheld.
    ArticleLife(engine).hold(articles()["economy"].id, "법무 검토", now=services.clock.now)
    everything = ninjs(client, "/partners/portal/feeds/all.ninjs")
    assert [(i["pubStatus"], i.get("headlines")) for i in everything] == [
        ("usable", [{"value": "기사 1"}]), ("canceled", None)]
    # A week later the canceled item has said what it had to.
    services.clock.now = NOW + timedelta(days=7, minutes=6)
    assert [i["pubStatus"] for i in ninjs(client, "/partners/portal/feeds/politics.ninjs")] == ["usable"]


def test_a_story_killed_inside_the_embargo_is_no_canceled_item(app) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    client, services = app
    fresh = articles()["fresh"]  # published 10 minutes before NOW; late's embargo is 30 minutes
    kill(services.engine, fresh.id, "오보", NOW)
    assert all(i["pubStatus"] == "usable" for i in ninjs(client, "/partners/late/feeds/all.ninjs", key=LATE_KEY))
    assert [i["pubStatus"] for i in ninjs(client, "/partners/portal/feeds/politics.ninjs")] == ["usable", "canceled"]


# --- pushes --------------------------------------------------------------------------------------------------------

def test_pushes_carry_the_ninjs_item_of_each_event(tmp_path, database_url, clock) -> None:  # type: ignore[no-untyped-def]
    import service

    with Receiver(fail_first=0) as receiver:
        extra = f"""
            [[partners]]
            slug = "wire"
            name = "통신"
            categories = ["politics"]
            callback_url = "{receiver.url}"
            callback_secret = "{SECRET}"
            """
        config = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url, extra=extra), {})
        services = service.Components(config, clock=clock)
        services.prepare_database(migrate=True)
        one, two = (make_article(n, published_at=NOW + timedelta(minutes=1)) for n in (1, 2))
        clock.now = NOW + timedelta(minutes=1)
        services.store.upsert_articles([one, two], source_id=None, now=clock.now)
        worker = PushWorker(config, services.partners, services.pushes, services.store, services.redirects, clock,
                            is_leader=lambda: True, interval=timedelta(hours=1),
                            policy=PushPolicy(max_attempts=2, timeout=5))
        try:
            clock.now = NOW + timedelta(minutes=2)
            assert worker.step().delivered == 2
            clock.now = NOW + timedelta(minutes=3)
            correct(services.engine, one.id, "제목을 고쳤습니다.", clock.now)
            kill(services.engine, two.id, "저작권 문제", clock.now)
            clock.now = NOW + timedelta(minutes=3, seconds=30)  # the next round, well inside a minute
            assert worker.step().delivered == 2
        finally:
            worker.stop()
            services.engine.dispose()

    assert receiver.bad == 0
    by_event = {(doc["_gazette"]["event"], doc["_gazette"]["ninjs"]["altIds"][0]["value"]): doc
                for _, doc in receiver.taken}
    assert sorted(by_event) == sorted([("article.published", one.id), ("article.published", two.id),
                                       ("article.corrected", one.id), ("article.killed", two.id)])
    for doc in by_event.values():
        assert_valid(doc["_gazette"]["ninjs"])
    published = by_event[("article.published", one.id)]["_gazette"]["ninjs"]
    assert published["uri"] == by_event[("article.published", one.id)]["items"][0]["id"]
    assert (published["version"], published["pubStatus"]) == ("1", "usable")
    corrected = by_event[("article.corrected", one.id)]["_gazette"]["ninjs"]
    assert (corrected["version"], corrected["edNote"]) == ("2", "정정(2026-11-25 09:03 KST): 제목을 고쳤습니다.")
    canceled = by_event[("article.killed", two.id)]["_gazette"]["ninjs"]
    assert canceled["pubStatus"] == "canceled" and canceled["edNote"].endswith("사유: 저작권 문제")
    assert by_event[("article.killed", two.id)]["items"] == []


def test_an_empty_ninjs_feed_is_an_empty_list(tmp_path, database_url, clock) -> None:  # type: ignore[no-untyped-def]
    """A partner's `.ninjs` on a database with no stories: a valid, empty JSON list."""
    import service

    extra = f"""
        [[partners]]
        slug = "empty"
        name = "빈곳"
        key = "{PORTAL_KEY}"
        categories = ["all"]
        """
    config = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url, extra=extra), {})
    services = service.Components(config, clock=clock)
    services.prepare_database(migrate=True)
    with InProcessClient(service.create_app(services)) as client:
        assert ninjs(client, "/partners/empty/feeds/all.ninjs") == []
    services.engine.dispose()


def test_a_correction_and_a_kill_reach_every_format_and_the_push_within_a_minute(tmp_path, database_url,  # type: ignore[no-untyped-def]
                                                                                 clock) -> None:
    """The whole app with its background loops running (the pusher every `[feeds] refresh`, in real time), a receiver
    on loopback: a correction and a kill are in the RSS, Atom, JSON and ninjs feeds at the next request and pushed
    within a minute."""
    import service

    with Receiver(fail_first=0) as receiver:
        extra = f"""
            [[partners]]
            slug = "wire"
            name = "통신"
            key = "{PORTAL_KEY}"
            categories = ["politics"]
            callback_url = "{receiver.url}"
            callback_secret = "{SECRET}"
            """
        config = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url, extra=extra), {})
        services = service.Components(config, clock=clock)
        services.prepare_database(migrate=True)
        one, two = (make_article(n, published_at=NOW + timedelta(minutes=n)) for n in (1, 2))
        clock.now = NOW + timedelta(minutes=3)
        services.store.upsert_articles([one, two], source_id=None, now=clock.now)

        def pushed(event: str, article_id: str) -> list[dict[str, Any]]:
            return [doc for _, doc in list(receiver.taken) if doc["_gazette"]["event"] == event
                    and doc["_gazette"]["ninjs"]["altIds"][0]["value"] == article_id]

        with InProcessClient(service.create_app(services)) as client:
            wait_until(lambda: pushed("article.published", one.id) and pushed("article.published", two.id), 60)
            paths = [f"/partners/wire/feeds/politics.{fmt}" for fmt in ("rss", "atom", "json", "ninjs")]
            before = {path: get(client, path) for path in paths}
            clock.now = NOW + timedelta(minutes=4)
            started = time.monotonic()
            correct(services.engine, one.id, "제목을 고쳤습니다.", clock.now)
            kill(services.engine, two.id, "오보", clock.now)
            for path, old in before.items():
                new = get(client, path, **{"If-None-Match": old.headers["etag"]})
                assert new.status_code == 200 and new.headers["etag"] != old.headers["etag"], path
                assert "기사 1" in new.text and "기사 2" not in new.text, path  # killed: no format repeats its title
            corrected = wait_until(lambda: pushed("article.corrected", one.id), 60)[0]["_gazette"]["ninjs"]
            canceled = wait_until(lambda: pushed("article.killed", two.id), 60)[0]["_gazette"]["ninjs"]
            elapsed = time.monotonic() - started
            document = ninjs(client, "/partners/wire/feeds/politics.ninjs")
        services.engine.dispose()

    assert elapsed < 60, elapsed
    print(f"correction and kill pushed {elapsed:.1f} s after they were made")
    assert_valid([corrected, canceled])
    assert (corrected["version"], corrected["pubStatus"], canceled["pubStatus"]) == ("2", "usable", "canceled")
    assert [(i["uri"], i["pubStatus"]) for i in document] == [(corrected["uri"], "usable"), (canceled["uri"], "canceled")]
    assert receiver.bad == 0
