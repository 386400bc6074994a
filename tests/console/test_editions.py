"""The console's edition pages, in-process: the schedule, a run's report (counts by state, failures with reasons,
clicks per article), the sandboxed preview as any subscriber, "send a test to me", retry, pause and resume; the
API's pause and resume; viewers read and change nothing."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from newsletter.db import subscribers

from tests.conftest import NOW, wait_until
from tests.console.conftest import ACCOUNTS, Console
from tests.security.conftest import ADMIN, stored_article

AT = NOW - timedelta(hours=2)  # 07:00 in Seoul: the daily edition's hour


def readers(console: Console) -> dict[str, int]:
    """Two readers of politics only, one of economy only; economy articles beside the fixture's politics ones."""
    s = console.services
    s.store.upsert_articles([stored_article(n, "economy") for n in (4, 5)], source_id=None, now=NOW)
    ids = {}
    for address, categories in (("kim@example.com", ["politics"]), ("lee@example.com", ["politics"]),
                                ("han@example.com", ["economy"])):
        ids[address] = s.subscribers.add(address, categories=categories, editions=["daily"], now=console.clock(),
                                         confirmed=True, method="admin")[1].id
    return ids


def received(console: Console) -> Counter[str]:
    return Counter(to for _, tos, _ in console.smtp.messages for to in tos)


def audit(console: Console, action: str) -> list[Any]:
    return console.services.audit.entries(action=action)


def test_the_overview_shows_the_schedule_per_zone_and_the_recent_runs(console: Console) -> None:
    s = console.services
    readers(console)
    s.subscribers.add("ny@example.com", categories=[], editions=["daily"], now=console.clock(), confirmed=True,
                      method="admin")
    with s.engine.begin() as conn:  # a reader in New York
        conn.execute(update(subscribers).where(subscribers.c.email == "ny@example.com")
                     .values(timezone="America/New_York"))
    report = s.send("daily", AT, everyone=True)
    page = console.login("viewer").client.get("/admin/editions")
    assert page.status_code == 200
    text = page.text
    assert "발송 일정" in text and "0 7 * * *" in text and "0 8 * * mon" in text
    # The next daily run on each clock: 07:00 in Seoul (the site's zone) and 07:00 in New York.
    assert "2026-11-26 07:00 KST" in text and "America/New_York" in text and "2026-11-25 07:00 EST" in text
    assert f'href="/admin/editions/{report.edition_id}"' in text
    assert re.search(r"완료</span>", text)
    english = console.login("viewer").client.get("/admin/editions?lang=en")
    assert "Schedule" in english.text and "Recent runs" in english.text


def test_a_report_counts_states_lists_failures_with_reasons_and_clicks_per_article(console: Console) -> None:
    s = console.services
    readers(console)
    console.smtp.fail_rcpt["lee@example.com"] = "550 5.1.1 no such user"
    report = s.send("daily", AT, everyone=True)
    assert (report.sent, report.failed) == (2, 1)
    campaign = f"daily-{report.edition_id}"
    for _ in range(3):
        s.store.add_campaign_click(campaign, "art000000001")
    s.store.add_campaign_click(campaign, "art000000004")
    page = console.login("viewer").client.get(f"/admin/editions/{report.edition_id}")
    assert page.status_code == 200
    figures = dict(re.findall(r"<div><dt>([^<]+)</dt><dd>([^<]+)</dd></div>", page.text))
    assert figures["전체"] == "3" and figures["발송됨"] == "2" and figures["실패"] == "1" and figures["클릭"] == "4"
    assert "lee@example.com" in page.text and "no such user" in page.text
    clicks = re.findall(r'<a href="https://news.example.com/(\d)"[^>]*>([^<]+)</a></td><td class="num">(\d+)</td>',
                        page.text)
    assert clicks == [("1", "기사 1", "3"), ("4", "기사 4", "1")]
    assert "/retry" not in page.text and "/pause" not in page.text  # a viewer is offered no action
    assert console.login("viewer").client.get("/admin/editions/999999").status_code == 404


def test_the_preview_is_framed_sandboxed_and_shows_the_chosen_readers_categories(console: Console) -> None:
    ids = readers(console)
    viewer = console.login("viewer").client
    page = viewer.get("/admin/editions/preview", params={"edition": "daily", "who": "han@example.com"})
    assert page.status_code == 200
    frame = re.search(r'<iframe class="preview" sandbox="" [^>]*src="([^"]+)"', page.text)
    assert frame, "the preview must be framed with an empty sandbox (no scripts, no same origin)"
    src = frame[1].replace("&amp;", "&")
    assert src == f"/admin/editions/preview/frame?edition=daily&reader={ids['han@example.com']}"
    assert "경제" in page.text and '<pre class="text"' in page.text and "기사 4" in page.text
    framed = viewer.get(src)
    assert framed.status_code == 200
    policies = framed.headers.get_list("content-security-policy")
    assert any(p.startswith("sandbox") for p in policies) and all("script-src" not in p for p in policies)
    assert "frame-ancestors 'self'" in ",".join(policies)
    assert "기사 4" in framed.text and "기사 1" not in framed.text  # economy only, as han chose
    assert "/unsubscribe/" in framed.text
    han = console.services.subscribers.get(ids["han@example.com"])
    assert han.public_id not in framed.text  # nobody's real links in front of an editor
    # By number too, and someone who is not a subscriber is a new reader of every category.
    assert "기사 4" in viewer.get(f"/admin/editions/preview?edition=daily&who={ids['han@example.com']}").text
    stranger = viewer.get("/admin/editions/preview?edition=daily&who=new@example.com")
    assert "기사 1" in stranger.text and "기사 4" in stranger.text
    assert viewer.get("/admin/editions/preview?edition=daily&who=424242").status_code == 422
    assert console.client().get(src).status_code == 303  # no session: to the login page


def test_send_a_test_reaches_the_actors_address_only_and_records_no_delivery(console: Console) -> None:
    ids = readers(console)
    editor = console.login("editor")
    answer = editor.post("/admin/editions/preview/test", {"edition": "daily", "reader": str(ids["han@example.com"])})
    assert answer.status_code == 303 and "flash=console_flash_test_sent" in answer.headers["location"]
    assert received(console) == Counter({ACCOUNTS["editor"]: 1})
    [(_, _, raw)] = console.smtp.messages
    import email
    from email import policy

    mail = email.message_from_bytes(raw, policy=policy.default)
    assert mail["Subject"].startswith("[테스트] ")
    assert "기사 4" in mail.get_body(("plain",)).get_content() and "기사 1" not in mail.get_body(("plain",)).get_content()
    assert console.services.deliveries.stats() == []  # no run, no delivery row
    [entry] = audit(console, "edition.test")
    assert entry.actor == ACCOUNTS["editor"] and entry.after["to"] == ACCOUNTS["editor"]


def test_retry_failed_through_the_page(console: Console) -> None:
    s = console.services
    readers(console)
    console.smtp.fail_rcpt["lee@example.com"] = "550 5.1.1 no such user"
    report = s.send("daily", AT, everyone=True)
    del console.smtp.fail_rcpt["lee@example.com"]
    s.subscribers.reset_bounces([s.subscribers.find("lee@example.com").id])
    editor = console.login("editor")
    page = editor.client.get(f"/admin/editions/{report.edition_id}")
    assert f'action="/admin/editions/{report.edition_id}/retry"' in page.text
    answer = editor.post(f"/admin/editions/{report.edition_id}/retry")
    assert answer.status_code == 303, answer.text
    assert "flash=console_flash_retried" in answer.headers["location"]
    [stats] = s.deliveries.stats(report.edition_id)
    assert stats.counts == {"sent": 3} and received(console)["lee@example.com"] == 1
    assert "flash=console_flash_retry_nothing" in editor.post(f"/admin/editions/{report.edition_id}/retry").headers[
        "location"]
    entry = audit(console, "edition.retry")[-1]
    assert entry.target == f"edition:{report.edition_id}" and entry.before == {"failed": 1}


def test_pause_and_resume_through_the_page(console: Console) -> None:
    s = console.services
    addresses = set(readers(console))
    edition_id = s.deliveries.open_edition("daily", AT, AT - timedelta(days=1), console.clock())  # a run under way
    editor = console.login("editor")
    page = editor.client.get(f"/admin/editions/{edition_id}")
    assert f'action="/admin/editions/{edition_id}/pause"' in page.text
    answer = editor.post(f"/admin/editions/{edition_id}/pause")
    assert answer.status_code == 303 and "console_flash_edition_paused_now" in answer.headers["location"]
    assert s.deliveries.stats(edition_id)[0].status == "paused"
    assert s.send("daily", AT).is_paused and received(console) == Counter()  # nothing goes by itself
    page = editor.client.get(f"/admin/editions/{edition_id}")
    assert f'action="/admin/editions/{edition_id}/resume"' in page.text and "일시 정지" in page.text
    again = editor.post(f"/admin/editions/{edition_id}/pause")
    assert "console_flash_edition_state" in again.headers["location"]
    answer = editor.post(f"/admin/editions/{edition_id}/resume")
    assert answer.status_code == 303 and "console_flash_edition_resumed" in answer.headers["location"]
    wait_until(lambda: s.deliveries.stats(edition_id)[0].status == "done", timeout=20)
    assert received(console) == Counter({a: 1 for a in addresses})
    assert [e.action for e in audit(console, "edition.")] == ["edition.resume", "edition.pause"]
    assert audit(console, "edition.pause")[0].after["status"] == "paused"


def test_pause_and_resume_through_the_api(console: Console) -> None:
    s = console.services
    addresses = set(readers(console))
    edition_id = s.deliveries.open_edition("daily", AT, AT - timedelta(days=1), console.clock())
    answer = console.base.post(f"/api/editions/{edition_id}/pause", headers=ADMIN)
    assert answer.status_code == 200 and answer.json()["status"] == "paused" and answer.json()["paused_at"]
    assert console.base.post(f"/api/editions/{edition_id}/pause", headers=ADMIN).status_code == 409
    assert console.base.post("/api/editions/999999/pause", headers=ADMIN).status_code == 404
    answer = console.base.post(f"/api/editions/{edition_id}/resume", headers=ADMIN)
    assert answer.status_code == 200 and answer.json()["status"] == "sending"
    wait_until(lambda: s.deliveries.stats(edition_id)[0].status == "done", timeout=20)
    assert received(console) == Counter({a: 1 for a in addresses})
    assert [e.action for e in audit(console, "edition.")] == ["edition.resume", "edition.pause"]
    viewer = console.login("viewer")
    assert viewer.client.post(f"/api/editions/{edition_id}/pause",
                              headers={"X-CSRF-Token": viewer.csrf}).status_code == 403


@pytest.mark.parametrize("path, data", [
    ("/admin/editions/{id}/pause", {}),
    ("/admin/editions/{id}/resume", {}),
    ("/admin/editions/{id}/retry", {}),
    ("/admin/editions/preview/test", {"edition": "daily", "reader": "kim@example.com"}),
])
def test_a_viewer_reads_but_cannot_act(console: Console, path: str, data: dict[str, str]) -> None:
    s = console.services
    readers(console)
    edition_id = s.deliveries.open_edition("daily", AT, AT - timedelta(days=1), console.clock())
    if "resume" in path:
        s.pause(edition_id)
    before = s.deliveries.stats(edition_id)[0]
    viewer = console.login("viewer")
    answer = viewer.post(path.format(id=edition_id), data)
    assert answer.status_code == 403
    assert s.deliveries.stats(edition_id)[0] == before
    assert console.smtp.messages == [] and audit(console, "edition.") == []
