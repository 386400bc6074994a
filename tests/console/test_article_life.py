"""The console's article page: an editor corrects, holds, releases, marks urgent and kills a story; a viewer only
reads; a refusal shows the reason and changes nothing; each change reaches the public feeds at the next refresh and
the audit log."""

from __future__ import annotations

import html
import json

from feeds.article_life import ArticleLife
from tests.console.conftest import Console
from tests.security.conftest import stored_article


def test_an_editor_corrects_and_kills_a_story_that_leaves_the_feeds(console: Console) -> None:
    story = stored_article(1)
    editor = console.login("editor")
    page = editor.client.get(f"/admin/articles/{story.id}")
    assert page.status_code == 200 and "게재 중" in page.text and 'action="/admin/articles/' in page.text

    fixed = editor.post(f"/admin/articles/{story.id}/correct", {"note": "이름 <오기> 정정"})
    assert fixed.status_code == 303 and fixed.headers["location"].startswith(f"/admin/articles/{story.id}?flash=")
    shown = editor.client.get(fixed.headers["location"]).text
    assert "정정을 게재했습니다" in shown and html.escape("이름 <오기> 정정", quote=False) in shown
    assert "<오기>" not in shown  # the note is text on the page too

    publisher = console.services.publisher
    publisher.refresh()
    feed = json.loads(publisher.get("all", "json").body)
    (item,) = [i for i in feed["items"] if i["url"] == story.url]
    assert "이름 &lt;오기&gt; 정정" in item["content_html"]

    empty = editor.post(f"/admin/articles/{story.id}/kill", {"reason": "   "})
    assert empty.status_code == 422 and "reason: required" in empty.text
    assert console.services.store.article(story.id).status == "live"

    gone = editor.post(f"/admin/articles/{story.id}/kill", {"reason": "당사자 요청"})
    assert gone.status_code == 303
    killed = editor.client.get(f"/admin/articles/{story.id}").text
    assert "삭제됨" in killed and "당사자 요청" in killed and 'action="/admin/articles/' not in killed
    publisher.refresh()
    assert story.url not in publisher.get("all", "json").body.decode()
    assert b"deleted-entry" in publisher.get("all", "atom").body
    again = editor.post(f"/admin/articles/{story.id}/correct", {"note": "늦은 정정"})
    assert again.status_code == 409 and "killed" in again.text

    actions = [e.action for e in console.services.audit.entries(target=f"article:{story.id}")]
    assert sorted(actions) == ["article.correct", "article.kill"]


def test_hold_release_and_urgent_from_the_page(console: Console) -> None:
    story = stored_article(2)
    editor = console.login("editor")
    assert editor.post(f"/admin/articles/{story.id}/hold", {"reason": "법무 검토"}).status_code == 303
    assert console.services.store.article(story.id).status == "held"
    assert "보류 해제" in editor.client.get(f"/admin/articles/{story.id}").text
    assert editor.post(f"/admin/articles/{story.id}/release").status_code == 303
    assert editor.post(f"/admin/articles/{story.id}/urgent", {"urgent": "1"}).status_code == 303
    stored = console.services.store.article(story.id)
    assert (stored.status, stored.is_urgent) == ("live", True)


def test_a_viewer_reads_but_cannot_change_a_story(console: Console) -> None:
    story = stored_article(3)
    viewer = console.login("viewer")
    page = viewer.client.get(f"/admin/articles/{story.id}")
    assert page.status_code == 200 and 'action="/admin/articles/' not in page.text
    for action, data in (("kill", {"reason": "x"}), ("correct", {"note": "x"}), ("hold", {"reason": "x"}),
                         ("urgent", {"urgent": "1"})):
        assert viewer.post(f"/admin/articles/{story.id}/{action}", data).status_code == 403
    editor = console.login("editor")
    assert editor.client.post(f"/admin/articles/{story.id}/kill", data={"reason": "no token"}).status_code == 403
    assert console.services.store.article(story.id).status == "live"
    assert editor.post("/admin/articles/nosuch/kill", {"reason": "x"}).status_code == 404
    ArticleLife(console.services.engine).kill(story.id, "x", now=console.clock())
    assert editor.post(f"/admin/articles/{story.id}/release").status_code == 409


def test_marking_a_story_urgent_can_send_it_as_a_breaking_alert(console: Console) -> None:
    from tests.conftest import wait_until
    from tests.console.test_alerts import readers

    readers(console)
    story = stored_article(1)
    editor = console.login("editor")
    assert "속보 알림도 보내기" in editor.client.get(f"/admin/articles/{story.id}").text
    quiet = editor.post(f"/admin/articles/{story.id}/urgent", {"urgent": "1"})  # the box not ticked: no alert
    assert quiet.headers["location"].startswith(f"/admin/articles/{story.id}")
    assert console.services.alerts.store.count() == 0
    editor.post(f"/admin/articles/{story.id}/urgent", {"urgent": "0"})
    sent = editor.post(f"/admin/articles/{story.id}/urgent", {"urgent": "1", "alert": "1"})
    assert sent.status_code == 303 and sent.headers["location"].startswith("/admin/alerts/")
    wait_until(lambda: len(console.smtp.messages) == 2)
    assert sorted(r for _, rcpts, _ in console.smtp.messages for r in rcpts) == ["all@example.com", "p@example.com"]
    assert console.services.store.article(story.id).is_urgent
    assert [e.action for e in console.services.audit.entries()][:2] == ["alert.send", "article.urgent"]
