"""The console's subscribers and articles pages in-process: search and paging, a reader's record, add (the
confirmation goes to the aiosmtpd server), exports, erasure behind its confirmation page, what a viewer may not do,
and the audit log."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from typing import Any

import pytest

from newsletter.http.console.subscribers import COUNT_UP_TO, PAGE, csv_cell
from tests.conftest import NOW, wait_until
from tests.console.conftest import Console
from tests.security.conftest import stored_article


def add_readers(console: Console, n: int, *, start: int = 0, confirmed: bool = True, **fields: Any) -> list[int]:
    store = console.services.subscribers
    ids = []
    for i in range(start, start + n):
        _, reader = store.add(f"reader{i:04d}@example.com", categories=fields.get("categories", ["politics"]),
                              editions=fields.get("editions", [store.editions[0]]), now=NOW, confirmed=confirmed,
                              method="import", consent_text="동의 문구" if confirmed else None,
                              name=fields.get("name"))
        ids.append(reader.id)
    return ids


def emails_on(page: str) -> list[str]:
    return re.findall(r'<a href="/admin/subscribers/\d+">([^<]+)</a>', page)


# --- subscribers: search and paging ----------------------------------------------------------------------------

def test_the_list_filters_by_address_status_edition_and_category(console: Console) -> None:
    store = console.services.subscribers
    daily, weekly = store.editions[0], store.editions[-1]
    add_readers(console, 3, categories=["politics"], editions=[daily])
    add_readers(console, 2, start=10, categories=["economy"], editions=[weekly])
    add_readers(console, 1, start=20, confirmed=False)
    viewer = console.login("viewer")

    def shown(query: str) -> list[str]:
        page = viewer.client.get("/admin/subscribers" + query)
        assert page.status_code == 200, page.text
        return sorted(emails_on(page.text))

    assert len(shown("")) == 6
    assert shown("?q=READER001") == ["reader0010@example.com", "reader0011@example.com"]  # any letter case
    assert shown("?q=reader0011@example.com") == ["reader0011@example.com"]  # a whole address: by its hash
    assert shown("?status=pending") == ["reader0020@example.com"]
    assert shown(f"?edition={weekly}") == ["reader0010@example.com", "reader0011@example.com"] or daily == weekly
    assert shown("?category=economy") == ["reader0010@example.com", "reader0011@example.com"]
    assert shown("?category=economy&q=0011") == ["reader0011@example.com"]
    assert shown("?status=pending&category=economy") == []


def test_the_list_pages_newest_first_without_repeating_or_skipping(console: Console) -> None:
    add_readers(console, PAGE + 7)
    viewer = console.login("viewer")
    first = viewer.client.get("/admin/subscribers")
    assert first.text.count("reader") and str(PAGE + 7) in first.text  # the count
    page_one = emails_on(first.text)
    assert len(page_one) == PAGE and page_one[0] == f"reader{PAGE + 6:04d}@example.com"
    following = re.search(r'href="/admin/subscribers\?(before=\d+)" rel="next"', first.text)
    assert following
    second = viewer.client.get("/admin/subscribers?" + following.group(1))
    page_two = emails_on(second.text)
    assert len(page_two) == 7 and not set(page_one) & set(page_two)
    assert 'rel="next"' not in second.text


def test_the_count_stops_at_its_bound(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    import newsletter.http.console.subscribers as page

    monkeypatch.setattr(page, "COUNT_UP_TO", 5)
    add_readers(console, 8)
    text = console.login("viewer").client.get("/admin/subscribers").text
    assert "5명 이상" in text and COUNT_UP_TO == 10_000


@pytest.mark.parametrize("query", ["?status=deleted", "?edition=nope", "?category=nope", "?before=abc",
                                   "?before=99999999999999999999", "?q=" + "a" * 400])
def test_a_filter_it_does_not_know_is_a_422_page_not_a_query(console: Console, query: str) -> None:
    add_readers(console, 1)
    page = console.login("viewer").client.get("/admin/subscribers" + query)
    assert page.status_code == 422 and 'role="alert"' in page.text


# --- one subscriber ---------------------------------------------------------------------------------------------

def test_a_subscribers_page_shows_choices_consents_deliveries_and_bounces(console: Console) -> None:
    services = console.services
    [reader_id] = add_readers(console, 1, name="김독자", categories=["politics", "economy"])
    deliveries = services.deliveries
    edition = services.subscribers.editions[0]
    run = deliveries.open_edition(edition, NOW - timedelta(days=1), NOW - timedelta(days=2), NOW)
    deliveries.queue(run, [(reader_id, "<m1@example.com>")], segment_id=None, articles=3,  # type: ignore[arg-type]
                     high_water_at=NOW)
    from newsletter.deliveries import Outcome

    deliveries.record(run, [Outcome(reader_id, "failed", "550 5.1.1 no such user", 1)])
    reader = services.subscribers.get(reader_id)
    services.subscribers.record_bounce_of(reader_id, kind="hard", now=NOW)
    page = console.login("viewer").client.get(f"/admin/subscribers/{reader_id}")
    assert page.status_code == 200
    text = page.text
    for expected in ("reader0000@example.com", "김독자", "정치, 경제", "동의 문구", "550 5.1.1 no such user",
                     f"{edition} #{run}", "실패", "연속 영구 반송", "누가 눌렀는지는 기록하지 않습니다"):
        assert expected in text, expected
    assert reader is not None and reader.status == "confirmed"
    assert "/erase" not in text and "export.json" not in text  # a viewer sees no data-request buttons
    assert console.login("editor").client.get(f"/admin/subscribers/{reader_id}").text.count("/erase") == 1


@pytest.mark.parametrize("path", ["/admin/subscribers/999999", "/admin/subscribers/abc",
                                  "/admin/subscribers/99999999999999999999999"])
def test_an_unknown_subscriber_is_a_404_page(console: Console, path: str) -> None:
    assert console.login("viewer").client.get(path).status_code == 404


# --- add --------------------------------------------------------------------------------------------------------

def test_adding_sends_the_confirmation_and_is_audited(console: Console) -> None:
    editor = console.login("editor")
    assert editor.client.get("/admin/subscribers/new").status_code == 200
    edition = console.services.subscribers.editions[0]
    answer = editor.post("/admin/subscribers", {"email": "new.reader@example.org", "name": "새 독자",
                                                "editions": edition, "categories": "economy"})
    assert answer.status_code == 303, answer.text
    reader = console.services.subscribers.find("new.reader@example.org")
    assert reader is not None and reader.status == "pending" and reader.categories == ("economy",)
    assert answer.headers["location"].startswith(f"/admin/subscribers/{reader.id}?flash=")
    wait_until(lambda: any("new.reader@example.org" in to for _, to, _ in console.smtp.messages))
    [entry] = console.services.audit.entries(action="subscriber.add")
    assert entry.actor == "editor@news.example.com" and entry.target == f"subscriber:{reader.id}"
    assert "new.reader@example.org" not in json.dumps(entry.after)


@pytest.mark.parametrize("fields, status", [
    pytest.param({"email": "not an address"}, 422, id="bad-address"),
    pytest.param({"email": "x@example.org", "categories": "nope"}, 422, id="unknown-category"),
    pytest.param({"email": "x@example.org", "editions": "nope"}, 422, id="unknown-edition"),
    pytest.param({"email": "a\x00@example.org"}, 422, id="nul"),
])
def test_adding_refuses_what_it_cannot_take(console: Console, fields: dict[str, str], status: int) -> None:
    editor = console.login("editor")
    answer = editor.post("/admin/subscribers", {"editions": console.services.subscribers.editions[0], **fields})
    assert answer.status_code == status and 'role="alert"' in answer.text
    assert console.services.audit.entries(action="subscriber.add") == []


def test_an_erased_address_cannot_be_added_back_by_the_newsroom(console: Console) -> None:
    [reader_id] = add_readers(console, 1)
    console.services.subscribers.erase(reader_id, now=NOW)
    editor = console.login("editor")
    answer = editor.post("/admin/subscribers", {"email": "reader0000@example.com",
                                                "editions": console.services.subscribers.editions[0]})
    assert answer.status_code == 409
    assert console.services.subscribers.find("reader0000@example.com") is None


# --- erase ------------------------------------------------------------------------------------------------------

def test_erasing_takes_the_confirmation_page_then_removes_and_audits_the_row(console: Console) -> None:
    [reader_id] = add_readers(console, 1)
    editor = console.login("editor")
    confirm = editor.client.get(f"/admin/subscribers/{reader_id}/erase")
    assert confirm.status_code == 200 and 'name="confirm" value="erase"' in confirm.text
    skipped = editor.post(f"/admin/subscribers/{reader_id}/erase")  # the form, without the confirmation page's word
    assert skipped.status_code == 303 and skipped.headers["location"] == f"/admin/subscribers/{reader_id}/erase"
    assert console.services.subscribers.get(reader_id) is not None
    done = editor.post(f"/admin/subscribers/{reader_id}/erase", {"confirm": "erase"})
    assert done.status_code == 303 and done.headers["location"].startswith("/admin/subscribers?flash=")
    assert console.services.subscribers.get(reader_id) is None
    assert console.services.subscribers.is_suppressed("reader0000@example.com")
    [entry] = console.services.audit.entries(action="subscriber.erase")
    assert entry.target == f"subscriber:{reader_id}"
    assert "reader0000" not in json.dumps([entry.before, entry.after, entry.target])
    assert editor.client.get(f"/admin/subscribers/{reader_id}").status_code == 404


# --- what a viewer may not do -----------------------------------------------------------------------------------

def test_a_viewer_changes_nothing_and_exports_nothing(console: Console) -> None:
    [reader_id] = add_readers(console, 1)
    viewer = console.login("viewer")
    edition = console.services.subscribers.editions[0]
    for path, data in ((f"/admin/subscribers/{reader_id}/erase", {"confirm": "erase"}),
                       ("/admin/subscribers", {"email": "v@example.org", "editions": edition})):
        assert viewer.post(path, data).status_code == 403
    for path in ("/admin/subscribers/new", "/admin/subscribers/export.csv",
                 f"/admin/subscribers/{reader_id}/export.json", f"/admin/subscribers/{reader_id}/erase"):
        assert viewer.client.get(path).status_code == 403, path
    assert console.services.subscribers.get(reader_id) is not None
    assert console.services.subscribers.find("v@example.org") is None
    assert [e for e in console.services.audit.entries() if e.action.startswith("subscriber.")] == []
    assert console.smtp.messages == []


def test_a_post_without_the_csrf_token_changes_nothing(console: Console) -> None:
    [reader_id] = add_readers(console, 1)
    editor = console.login("editor")
    answer = editor.client.post(f"/admin/subscribers/{reader_id}/erase", data={"confirm": "erase"})
    assert answer.status_code == 403
    assert console.services.subscribers.get(reader_id) is not None


# --- exports ----------------------------------------------------------------------------------------------------

def test_the_csv_export_is_the_filtered_list_with_formulas_defused(console: Console) -> None:
    store = console.services.subscribers
    for i, name in enumerate(("=HYPERLINK(\"http://evil\")", "+1+2", "-3", "@SUM(A1)", "plain 이름")):
        store.add(f"csv{i}@example.com", categories=["economy"], editions=[store.editions[0]], now=NOW,
                  confirmed=True, method="import", name=name)
    add_readers(console, 2, categories=["politics"])
    editor = console.login("editor")
    answer = editor.client.get("/admin/subscribers/export.csv?category=economy")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert sorted(r["email"] for r in rows) == [f"csv{i}@example.com" for i in range(5)]
    names = {r["name"] for r in rows}
    assert names == {"'=HYPERLINK(\"http://evil\")", "'+1+2", "'-3", "'@SUM(A1)", "plain 이름"}
    [entry] = console.services.audit.entries(action="subscriber.export_csv")
    assert entry.after is not None and entry.after["category"] == "economy"


@pytest.mark.parametrize("value, cell", [("=1+1", "'=1+1"), ("+82 10", "'+82 10"), ("-x", "'-x"), ("@x", "'@x"),
                                         ("\tx", "'\tx"), ("a=b", "a=b"), (None, ""), (12, "12")])
def test_csv_cells_never_start_a_formula(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


def test_the_csv_export_stops_at_its_bound(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    import newsletter.http.console.subscribers as page

    monkeypatch.setattr(page, "EXPORT_LIMIT", 3)
    monkeypatch.setattr(page, "EXPORT_CHUNK", 2)
    add_readers(console, 5)
    body = console.login("editor").client.get("/admin/subscribers/export.csv").content.decode("utf-8-sig")
    assert len(list(csv.DictReader(io.StringIO(body)))) == 3


def test_one_subscribers_data_downloads_as_json_and_is_audited(console: Console) -> None:
    [reader_id] = add_readers(console, 1)
    answer = console.login("editor").client.get(f"/admin/subscribers/{reader_id}/export.json")
    assert answer.status_code == 200 and "attachment" in answer.headers["content-disposition"]
    record = answer.json()
    assert record["email"] == "reader0000@example.com" and record["consents"][0]["text"] == "동의 문구"
    [entry] = console.services.audit.entries(action="subscriber.export")
    assert entry.target == f"subscriber:{reader_id}"


# --- articles ---------------------------------------------------------------------------------------------------

def test_articles_search_by_title_category_source_and_dates(console: Console) -> None:
    store = console.services.store
    store.upsert_articles([stored_article(10, "economy", title="금리 인상 소식"),
                           stored_article(40, "economy", title="환율 소식")], source_id=None, now=NOW)
    viewer = console.login("viewer")

    def titles(query: str) -> list[str]:
        page = viewer.client.get("/admin/articles" + query)
        assert page.status_code == 200, page.text
        return re.findall(r'<a href="/admin/articles/[^"]+">([^<]+)</a>', page.text)

    assert titles("?q=소식") == ["금리 인상 소식", "환율 소식"]
    assert titles("?category=economy&q=금리") == ["금리 인상 소식"]
    assert titles("?category=politics") == ["기사 1", "기사 2", "기사 3"]
    day = (NOW - timedelta(hours=40)).astimezone(console.services.settings.site.timezone).date().isoformat()
    assert titles(f"?from={day}&to={day}") == ["환율 소식"]
    assert titles("?q=없는 제목") == []


def test_articles_page_through_their_list(console: Console) -> None:
    from newsletter.http.console import articles as page

    console.services.store.upsert_articles([stored_article(n) for n in range(4, 4 + page.PAGE)], source_id=None,
                                           now=NOW)
    viewer = console.login("viewer")
    first = viewer.client.get("/admin/articles")
    assert 'href="/admin/articles?page=2" rel="next"' in first.text
    second = viewer.client.get("/admin/articles?page=2")
    assert second.text.count('<a href="/admin/articles/art') == 3 and 'rel="prev"' in second.text


@pytest.mark.parametrize("query", ["?category=nope", "?source=nope", "?from=yesterday", "?to=9999-12-31",
                                   "?page=0", "?page=99999999", "?q=" + "가" * 300])
def test_an_article_filter_it_does_not_know_is_a_422_page(console: Console, query: str) -> None:
    page = console.login("viewer").client.get("/admin/articles" + query)
    assert page.status_code == 422 and 'role="alert"' in page.text


def test_an_articles_page_shows_revisions_views_per_day_and_clicks_by_channel(console: Console) -> None:
    services = console.services
    store = services.store
    store.upsert_articles([stored_article(1, content_hash="changed", title="기사 1 (수정)")], source_id=None, now=NOW)
    store.add_views_batch([("art000000001", NOW - timedelta(days=1), 7), ("art000000001", NOW, 5)])
    for channel in ("email", "email", "feed", "partner", "web", "widget"):
        store.add_click("art000000001", NOW, channel)
    edition = services.subscribers.editions[0]
    store.add_campaign_click(f"{edition}-42", "art000000001")
    store.add_campaign_click("summer-promo", "art000000001")
    page = console.login("viewer").client.get("/admin/articles/art000000001")
    assert page.status_code == 200
    text = page.text
    for expected in ("기사 1 (수정)", "수정 이력", "이전 판의 본문은 남기지 않아", "합계 12회", "합계 6회",
                     f"뉴스레터 {edition} #42", "summer-promo", "정치"):
        assert expected in text, expected
    revision = re.search(r"<dt>판</dt><dd>(\d+)</dd>", text)
    assert revision and revision.group(1) == "2"
    email = re.search(r"이메일 \(뉴스레터·공유\)</td><td class=\"num\">(\d+)", text)
    assert email and email.group(1) == "2"
    widget = re.search(r"많이 본 뉴스 위젯</td><td class=\"num\">(\d+)", text)
    assert widget and widget.group(1) == "1"
    english = console.login("viewer").client.get("/admin/articles/art000000001?lang=en").text
    assert "Clicks by channel" in english and "12 views in all" in english


def test_an_unknown_article_is_a_404_page(console: Console) -> None:
    viewer = console.login("viewer")
    assert viewer.client.get("/admin/articles/nope").status_code == 404
    assert viewer.client.get("/admin/articles/" + "x" * 500).status_code == 404


def test_articles_are_read_only_for_every_role(console: Console) -> None:
    admin = console.login("admin")
    assert admin.post("/admin/articles", {}).status_code == 405
    assert admin.post("/admin/articles/art000000001", {}).status_code == 405


def test_adding_twice_within_the_hour_mails_once_and_says_why(console: Console) -> None:
    editor = console.login("editor")
    form = {"email": "twice@example.org", "editions": console.services.subscribers.editions[0]}
    assert editor.post("/admin/subscribers", form).status_code == 303
    again = editor.post("/admin/subscribers", form)
    assert again.status_code == 429 and "한 시간" in again.text
    wait_until(lambda: console.smtp.messages)
    assert sum("twice@example.org" in to for _, to, _ in console.smtp.messages) == 1
    assert len(console.services.audit.entries(action="subscriber.add")) == 2


def test_a_confirmation_the_server_refuses_leaves_a_pending_reader_and_says_so(console: Console) -> None:
    console.smtp.fail_rcpt["refused@example.org"] = "550 5.1.1 no such user"
    editor = console.login("editor")
    answer = editor.post("/admin/subscribers", {"email": "refused@example.org",
                                                "editions": console.services.subscribers.editions[0]})
    reader = console.services.subscribers.find("refused@example.org")
    assert answer.status_code == 303 and reader is not None and reader.status == "pending"
    assert "console_flash_subscriber_mail_failed" in answer.headers["location"]
    page = editor.client.get(answer.headers["location"])
    assert "확인 메일을 보내지 못했습니다" in page.text


def test_breaking_news_readers_are_an_edition_to_filter_by(console: Console) -> None:
    from newsletter.records import ALERTS

    add_readers(console, 2)
    add_readers(console, 1, start=30, editions=[ALERTS])
    page = console.login("viewer").client.get(f"/admin/subscribers?edition={ALERTS}")
    assert page.status_code == 200 and emails_on(page.text) == ["reader0030@example.com"]
    assert "속보 알림" in page.text
