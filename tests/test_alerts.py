"""Breaking-news alerts: the reader's choice on the pages (with its consent record), and an alert sent through the
edition engine to a real SMTP server (aiosmtpd on loopback): exactly the readers who asked for alerts in the chosen
sections, once each however often the send runs, with one-click unsubscribe headers and a DKIM signature, and a
report that counts. The app is asked in-process (`InProcessClient`)."""

from __future__ import annotations

import email
import re
from datetime import timedelta
from email import policy
from pathlib import Path

import dkim
import pytest

from newsletter.alerts import AlertDraft, resolve_alert
from newsletter.errors import AlertRefused
from newsletter.records import ALERTS
from newsletter.settings import load_settings
from tests.conftest import (
    NOW,
    Clock,
    InProcessClient,
    filled,
    migrated_sqlite_url,
    run_gazette,
    write_config,
)
from tests.test_delivery import DKIM_ENV, dns
from tests.test_store import make_article
from tests.test_subscribers import confirm

ADMIN = {"Authorization": "Bearer admin-token-0123456789"}
EXTRA = """
[admin]
token = "admin-token-0123456789"
"""


def make_site(tmp_path: Path, clock: Clock, mail_url: str, env: dict[str, str] | None = None,  # type: ignore[no-untyped-def]
              database_url: str | None = None):
    import service

    config = write_config(tmp_path / "gazette.toml", database_url=database_url or migrated_sqlite_url(tmp_path),
                          mail_url=mail_url, extra=EXTRA)

    def sleep(seconds: float) -> None:
        clock.now += timedelta(seconds=seconds)

    services = service.Components(load_settings(config, env or {}), clock=clock, sleep=sleep)
    services.prepare_database(migrate=True)
    return services, config


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def text_of(raw: bytes) -> str:
    return parsed(raw).get_body(("plain",)).get_content()  # type: ignore[union-attr]


def html_of(raw: bytes) -> str:
    return parsed(raw).get_body(("html",)).get_content()  # type: ignore[union-attr]


def add(services, address: str, categories: list[str], editions: list[str], *, ads: bool = False):  # type: ignore[no-untyped-def]
    from newsletter.records import Choices

    _, reader = services.subscribers.add(address, categories=categories, editions=editions, now=NOW, confirmed=True,
                                         method="admin", consent_text="given elsewhere")
    if ads:
        services.subscribers.update_preferences(reader.id, reader.public_id,
                                                Choices(reader.categories, reader.editions, ads=True),
                                                is_paused=False, now=NOW)
    return reader


# --- the reader's choice --------------------------------------------------------------------------------------

def test_a_reader_asks_for_alerts_on_the_subscribe_page_and_turns_them_off_on_preferences(  # type: ignore[no-untyped-def]
        tmp_path, clock, smtp_server) -> None:
    import service

    recorder, url = smtp_server
    services, _ = make_site(tmp_path, clock, url)
    with InProcessClient(service.create_app(services)) as client:
        page = client.get("/subscribe").text
        assert "속보 알림" in page and 'name="editions" value="alerts">' in page  # never ticked for the reader
        assert "Breaking news alerts" in client.get("/subscribe?lang=en").text
        data = {**filled(page), "email": "reader@example.com", "categories": ["economy"],
                "editions": ["daily", "alerts"]}
        assert client.post("/subscribe", data=data).status_code == 200
        [mail] = recorder.to("reader@example.com")
        token = re.search(r"https://news\.example\.com(/confirm/\S+)", text_of(mail))[1]  # type: ignore[index]
        confirmed = confirm(client, token)
        assert confirmed.status_code == 200 and "속보 알림" in confirmed.text
        reader = services.subscribers.find("reader@example.com")
        assert reader.editions == ("alerts", "daily")
        records = services.subscribers.consents(reader.id)
        [alerts] = [r for r in records if r["kind"] == "alerts"]
        assert alerts["granted"] is True and alerts["method"] == "form" and "속보 알림" in alerts["text"]
        assert services.subscribers.export(reader.id)["alerts"] is True

        preferences = f"/preferences/{services.tokens.for_subscriber('preferences', reader.public_id)}"
        form = filled(client.get(preferences).text)
        assert form["editions"] == ["daily", "alerts"]
        form["editions"] = ["daily"]
        assert client.post(preferences, data=form).status_code == 200
        reader = services.subscribers.find("reader@example.com")
        assert reader.editions == ("daily",) and services.subscribers.export(reader.id)["alerts"] is False
        last = services.subscribers.consents(reader.id)[-1]
        assert (last["kind"], last["granted"]) == ("alerts", False)
        form["editions"] = ["alerts"]  # alerts alone is a choice too
        assert client.post(preferences, data=form).status_code == 200
        assert services.subscribers.find("reader@example.com").editions == ("alerts",)
        assert services.subscribers.consents(reader.id)[-1]["granted"] is True
    services.close()


def test_the_api_and_the_import_accept_the_alerts_choice(tmp_path, clock, smtp_server) -> None:  # type: ignore[no-untyped-def]
    import service

    _, url = smtp_server
    services, config = make_site(tmp_path, clock, url)
    with InProcessClient(service.create_app(services)) as client:
        added = client.post("/api/subscribers", headers=ADMIN, json={
            "email": "api@example.com", "alerts": True, "confirmed": True})
        assert added.status_code == 201, added.text
        assert added.json()["subscriber"]["alerts"] is True and added.json()["subscriber"]["editions"] == ["alerts"]
        both = client.post("/api/subscribers", headers=ADMIN, json={
            "email": "both@example.com", "editions": ["weekly", "alerts"], "confirmed": True}).json()
        assert both["subscriber"]["editions"] == ["alerts", "weekly"] and both["subscriber"]["alerts"] is True
        assert client.post("/api/subscribers", headers=ADMIN, json={
            "email": "x@example.com", "editions": ["breaking"]}).status_code == 400
        listed = client.get("/api/subscribers?edition=alerts", headers=ADMIN).json()
        assert [s["email"] for s in listed["items"]] == ["api@example.com", "both@example.com"]
    api = services.subscribers.find("api@example.com")
    assert [(r["kind"], r["granted"], r["method"]) for r in services.subscribers.consents(api.id)] == [
        ("privacy", True, "admin"), ("alerts", True, "admin")]

    csv = tmp_path / "readers.csv"
    csv.write_text("email,categories,editions,alerts\nimp@example.com,economy,daily,yes\n"
                   "plain@example.com,economy,daily,\n", encoding="utf-8")
    run_gazette(["subscribers", "import", str(csv), "--confirmed", "--config", str(config)], expect=0)
    assert services.subscribers.find("imp@example.com").editions == ("alerts", "daily")
    assert services.subscribers.find("plain@example.com").editions == ("daily",)
    assert services.subscribers.orphans() == {}  # `gazette check` does not take alerts for a lost edition
    services.close()


# --- the alert itself -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("with_dkim", [pytest.param(False, id="unsigned"), pytest.param(True, id="dkim")])
def test_an_alert_reaches_exactly_its_readers_once_even_when_sent_twice(tmp_path, clock, smtp_server,  # type: ignore[no-untyped-def]
                                                                           database_url: str, with_dkim: bool) -> None:
    recorder, url = smtp_server
    services, _ = make_site(tmp_path, clock, url, DKIM_ENV if with_dkim else None, database_url=database_url)
    add(services, "politics@example.com", ["politics"], ["alerts"])
    add(services, "both@example.com", ["politics", "economy"], ["daily", "alerts"])
    add(services, "economy@example.com", ["economy"], ["alerts"])  # another section
    add(services, "digest@example.com", ["politics"], ["daily"])  # did not ask for alerts
    paused = add(services, "paused@example.com", ["politics"], ["alerts"])
    services.subscribers.update_preferences(paused.id, paused.public_id, _choices(paused), is_paused=True, now=NOW)
    desk = services.alerts
    alert = desk.create(AlertDraft(subject="국회, 예산안 통과", text="방금 본회의에서 가결됐습니다.\n\n자세한 내용은 곧.",
                                   link="https://news.example.com/live", categories=("politics",)),
                        created_by="editor@example.com")
    first = desk.send(alert.id)
    assert (first.recipients, first.sent, first.failed) == (2, 2, 0)
    again = desk.send(alert.id)  # a rerun (or a restart) sends nobody twice
    assert (again.sent, again.already_done) == (0, 2)
    assert sorted(r for _, rcpts, _ in recorder.messages for r in rcpts) == ["both@example.com",
                                                                           "politics@example.com"]
    [raw] = recorder.to("politics@example.com")
    message = parsed(raw)
    assert str(message["Subject"]) == "[속보] 국회, 예산안 통과"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.match(r"<https://news\.example\.com/unsubscribe/\S+>, ?<mailto:unsubscribe@example\.com\?",
                    str(message["List-Unsubscribe"]).replace("\n", "").replace("  ", " "))
    assert "alerts" in str(message["List-Id"])
    assert "방금 본회의에서 가결됐습니다." in text_of(raw) and "https://news.example.com/live" in text_of(raw)
    assert "politics@example.com" in text_of(raw)  # why they get it: their own address, filled in
    assert ("DKIM-Signature" in message) is with_dkim
    if with_dkim:
        assert dkim.verify(raw, dnsfunc=dns), "the DKIM signature must verify"

    report = desk.report(alert.id)
    assert report.counts == {"sent": 2} and report.failures == () and report.alert.status == "done"
    assert report.alert.created_by == "editor@example.com"
    [stats] = services.deliveries.stats(alert.id)
    assert (stats.name, stats.counts) == (ALERTS, {"sent": 2})
    services.close()


def _choices(reader):  # type: ignore[no-untyped-def]
    from newsletter.records import Choices

    return Choices(reader.categories, reader.editions)


def test_an_article_alert_over_the_api_and_its_report(tmp_path, clock, smtp_server) -> None:  # type: ignore[no-untyped-def]
    import service

    recorder, url = smtp_server
    services, config = make_site(tmp_path, clock, url)
    services.store.upsert_articles([make_article(1, category="economy", title="환율 급등")],
                                   source_id=None, now=NOW)
    [article] = services.store.articles(limit=1)
    add(services, "a@example.com", ["economy"], ["alerts"])
    add(services, "b@example.com", ["politics"], ["alerts"])
    recorder.fail_rcpt["b@example.com"] = "550 5.1.1 no such user"
    with InProcessClient(service.create_app(services)) as client:
        preview = client.post("/api/alerts/preview", headers=ADMIN, json={"article_id": article.id, "to": "a@example.com"})
        assert preview.status_code == 200, preview.text
        assert preview.json()["subject"] == "[속보] 환율 급등" and preview.json()["recipients"] == 2
        assert "요약 1" in preview.json()["html"] and "요약 1" in preview.json()["text"]
        assert recorder.messages == []  # a preview sends nothing
        assert client.get("/api/alerts", headers=ADMIN).json() == {"total": 0, "items": [], "next_cursor": None}

        sent = client.post("/api/alerts", headers=ADMIN, json={"article_id": article.id})
        assert sent.status_code == 202, sent.text
        alert_id = sent.json()["id"]
        from tests.conftest import wait_until

        report = wait_until(lambda: (r := client.get(f"/api/alerts/{alert_id}", headers=ADMIN).json())["status"]
                            == "done" and r)
        assert report["counts"] == {"sent": 1, "failed": 1} and report["failure_total"] == 1
        [failure] = report["failures"]
        assert failure["email"] == "b@example.com" and "550" in failure["last_error"]
        [raw] = recorder.to("a@example.com")
        tracked = re.search(r"https://news\.example\.com/r/\S+", text_of(raw))[0]  # type: ignore[index]
        assert client.get(tracked.replace("https://news.example.com", ""),
                          headers={"User-Agent": "Mozilla/5.0"}).status_code == 302
        assert client.get(f"/api/alerts/{alert_id}", headers=ADMIN).json()["clicks"] == 1
        a = services.subscribers.find("a@example.com")
        assert services.deliveries.high_waters([a.id]) == {}  # the next digest starts as before
        listed = client.get("/api/alerts", headers=ADMIN).json()
        assert listed["total"] == 1 and listed["items"][0]["counts"] == {"sent": 1, "failed": 1}
        assert client.get(f"/api/editions/{alert_id}", headers=ADMIN).json()["name"] == "alerts"
        assert client.get("/api/alerts/999", headers=ADMIN).status_code == 404
        refused = client.post("/api/alerts", headers=ADMIN, json={"subject": "", "text": "x"})
        assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")
        assert client.post("/api/alerts", json={"subject": "x", "text": "y"}).status_code == 401
    status = run_gazette(["digest", "status", "alerts", "--config", str(config)])
    assert status.returncode == 1 and "sent 1" in status.stdout and "b@example.com" in status.stdout
    retried = run_gazette(["digest", "retry", "alerts", "--config", str(config)])  # the edition tools work on it
    assert retried.returncode == 1 and "b@example.com: failed again" in retried.stdout
    assert len(recorder.to("a@example.com")) == 1  # nobody who had it got it again
    services.close()


def test_an_alert_with_ads_waits_for_the_morning_and_goes_only_to_consenting_readers(  # type: ignore[no-untyped-def]
        tmp_path, clock, smtp_server) -> None:
    recorder, url = smtp_server
    clock.now = NOW.replace(hour=14)  # 23:00 in Seoul
    services, _ = make_site(tmp_path, clock, url)
    add(services, "yes@example.com", ["politics"], ["alerts"], ads=True)
    add(services, "no@example.com", ["politics"], ["alerts"])
    desk = services.alerts
    alert = desk.create(AlertDraft(subject="특가 속보", text="오늘만", has_ads=True), created_by=None)
    report = desk.send(alert.id)
    assert (report.recipients, report.sent, report.held) == (1, 0, 1) and recorder.messages == []
    clock.now = NOW.replace(hour=23, minute=1)  # 08:01 in Seoul: the resume job carries it on
    assert "alerts" in services.audience_jobs.resume_editions()
    [raw] = recorder.to("yes@example.com")
    assert str(parsed(raw)["Subject"]) == "(광고) [속보] 특가 속보"
    assert desk.report(alert.id).counts == {"sent": 1}
    services.close()


def test_mail_held_for_the_morning_is_not_sent_when_its_story_was_killed_overnight(  # type: ignore[no-untyped-def]
        tmp_path, clock, smtp_server) -> None:
    from feeds.article_life import ArticleLife
    from tests.test_store import make_article

    recorder, url = smtp_server
    clock.now = NOW.replace(hour=14)  # 23:00 in Seoul
    services, _ = make_site(tmp_path, clock, url)
    story = make_article(1)
    services.store.upsert_articles([story], source_id=None, now=clock.now)
    add(services, "yes@example.com", ["politics"], ["alerts"], ads=True)
    desk = services.alerts
    alert = desk.create(AlertDraft(article_id=story.id, has_ads=True), created_by=None)
    assert desk.send(alert.id).held == 1
    ArticleLife(services.engine).kill(story.id, "오보", now=clock.now)
    clock.now = NOW.replace(hour=23, minute=1)  # 08:01 in Seoul: the resume job comes, the story is gone
    services.audience_jobs.resume_editions()
    assert recorder.messages == [] and desk.report(alert.id).counts == {"skipped": 1}
    services.close()


@pytest.mark.parametrize(("case", "draft", "message"), [
    ("no subject", AlertDraft(text="본문"), "subject"),
    ("no text", AlertDraft(subject="제목"), "text"),
    ("unknown section", AlertDraft(subject="제목", text="본문", categories=("sports",)), "sports"),
    ("javascript link", AlertDraft(subject="제목", text="본문", link="javascript:alert(1)"), "http"),
    ("too long", AlertDraft(subject="제목", text="가" * 2001), "2000"),
])
def test_a_draft_that_cannot_go_is_refused(case: str, draft: AlertDraft, message: str) -> None:
    with pytest.raises(AlertRefused, match=message):
        resolve_alert(draft, category_order=("politics", "economy"))


def test_the_alert_store_on_both_databases(engine) -> None:  # type: ignore[no-untyped-def]
    from newsletter.alerts import AlertContent, AlertStore

    store = AlertStore(engine)
    content = AlertContent(subject="속보", text="본문", link=None, article_id=None, categories=("politics",),
                           has_ads=False)
    first = store.create(content, created_by="editor@example.com", now=NOW)
    second = store.create(replace_subject(content, "두 번째"), created_by=None, now=NOW)  # the same instant
    assert first != second and store.count() == 2
    assert [a.content.subject for a in store.recent()] == ["두 번째", "속보"]
    got = store.get(first)
    assert got is not None and got.content == content and got.created_at == NOW and got.status == "sending"
    assert store.at(NOW) == got and store.at(NOW + timedelta(microseconds=1)).id == second  # type: ignore[union-attr]
    assert store.get(999) is None


def replace_subject(content, subject: str):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(content, subject=subject)


def test_an_alert_whose_send_never_started_is_sent_by_the_resume_job(tmp_path, clock, smtp_server) -> None:  # type: ignore[no-untyped-def]
    recorder, url = smtp_server
    services, _ = make_site(tmp_path, clock, url)
    add(services, "reader@example.com", ["politics"], ["alerts"])
    alert = services.alerts.create(AlertDraft(subject="속보", text="본문"), created_by=None)  # the process stopped here
    assert services.audience_jobs.resume_editions() == "nothing to resume"  # its own send may still be starting
    clock.now += timedelta(minutes=3)
    assert "alerts" in services.audience_jobs.resume_editions()
    assert len(recorder.to("reader@example.com")) == 1 and services.alerts.get(alert.id).status == "done"
    assert services.audience_jobs.resume_editions() == "nothing to resume"
    services.close()
