"""Delivering digests over real SMTP (aiosmtpd on 127.0.0.1): headers, DKIM, segments, retries, bounces, the rate
limit, the night guard, time zones, "view in browser", edition statistics, preview and "email this article".
The app's pages are asked in-process (`InProcessClient`)."""

from __future__ import annotations

import email
import re
import time
from datetime import timedelta
from email import policy
from pathlib import Path

import dkim
import pytest

from newsletter.db import edition_segments
from newsletter.settings import load_settings
from tests.conftest import (
    DATA,
    NOW,
    Clock,
    InProcessClient,
    migrated_sqlite_url,
    write_config,
)
from tests.test_digest import seed
from tests.test_store import make_article

DKIM_ENV = {"GAZETTE_MAIL_DKIM_SELECTOR": "test", "GAZETTE_MAIL_DKIM_KEY_FILE": str(DATA / "dkim" / "test.key")}
PUBLIC_KEY = (DATA / "dkim" / "test.pub.b64").read_text().strip()
ADS = """
[digests.daily]
schedule = "0 7 * * *"
ad = true

[digests.weekly]
schedule = "0 8 * * mon"
"""


def consent_to_ads(services, clock, *addresses: str) -> None:  # type: ignore[no-untyped-def]
    from newsletter.records import Choices

    for address in addresses:
        s = services.subscribers.find(address)
        services.subscribers.update_preferences(s.id, s.public_id, Choices(s.categories, s.editions, ads=True),
                                                is_paused=False, now=clock())


def dns(name: bytes, timeout: int = 5) -> bytes:
    assert name == b"test._domainkey.example.com."
    return f"v=DKIM1; k=rsa; p={PUBLIC_KEY}".encode()


def make_services(tmp_path: Path, clock: Clock, mail_url: str, env: dict[str, str] | None = None, extra: str = ""):  # type: ignore[no-untyped-def]
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path),
                                          mail_url=mail_url, extra=extra), env or {})

    def sleep(seconds: float) -> None:  # the test clock moves instead of the test waiting
        clock.now += timedelta(seconds=seconds)

    services = service.Components(settings, clock=clock, sleep=sleep)
    services.prepare_database(migrate=True)
    return services


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def test_headers_dkim_and_one_click_links(tmp_path, clock, smtp_server) -> None:  # type: ignore[no-untyped-def]
    recorder, url = smtp_server
    services = make_services(tmp_path, clock, url, {**DKIM_ENV, "GAZETTE_MAIL_CONCURRENCY": "2"})
    seed(services, clock)
    assert services.send("daily", NOW, everyone=True).sent == 2
    [raw] = recorder.to("kim@example.com")
    assert dkim.verify(raw, dnsfunc=dns), "the DKIM signature must verify"
    signed = re.search(rb"h=([^;]+);", raw.replace(b"\r\n ", b" ").replace(b"\r\n\t", b" "))[1]  # type: ignore[index]
    names = {h.strip().lower() for h in signed.replace(b" ", b"").split(b":")}
    assert {b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe", b"list-unsubscribe-post"} <= names
    head = raw.split(b"\r\n\r\n", 1)[0].decode() + "\r\nEnd: of head"
    assert "=?utf-8?" not in re.search(r"List-Unsubscribe:.*?(?=\r\n\S)", head, re.S)[0].lower()  # type: ignore[index]
    message = parsed(raw)
    assert message["Subject"] == "[한빛일보] 오늘의 뉴스 · 2026년 11월 25일"  # no space lost between encoded words
    assert re.search(r"\r\nDate: Wed, 25 Nov 2026 00:00:00 GMT\r\n", head)  # GMT, not -0000
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
    assert https.startswith("https://news.example.com/unsubscribe/") and mailto.startswith("mailto:unsubscribe@example.com?subject=unsubscribe%20")
    tag = services.tags.digest(1, services.subscribers.find("kim@example.com").id)  # type: ignore[union-attr]
    assert message["Message-ID"] == f"<{tag}@example.com>"  # signed: bounces about it can be tied to kim
    assert message["List-Id"].endswith("<daily.example.com>")
    assert message["To"].addresses[0].display_name == "김독자"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert https in text and https in html.replace("&amp;", "&")
    assert "/archive/1/" in text and "/preferences/" in text
    assert "<style" in html and "word-break:keep-all" in html.replace(" ", "")  # inlined, media queries kept
    assert "@media (prefers-color-scheme: dark)" in html
    for link in re.findall(r"https://news\.example\.com/r/\S+", text):
        target = services.redirects.target(link.rsplit("/", 1)[1])
        assert target is not None and target.channel == "email" and target.query["utm_campaign"] == "daily-1"
    # The one-click POST a mail client makes from the header works without any cookie.
    with InProcessClient(__import__("service").create_app(services)) as client:
        answer = client.post(https, data={"List-Unsubscribe": "One-Click"})
        assert answer.status_code == 200
    assert services.subscribers.find("kim@example.com").status == "unsubscribed"
    services.close()


def test_one_render_per_segment(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    services = make_services(tmp_path, clock, f"maildir://{tmp_path / 'out'}")
    seed(services, clock)
    for i in range(5):
        services.subscribers.add(f"same{i}@example.com", categories=["economy"], editions=["daily"], now=clock(),
                                 confirmed=True, method="admin")
    report = services.send("daily", NOW, everyone=True)
    assert report.sent == 7
    with services.engine.connect() as conn:
        segments = conn.execute(edition_segments.select()).all()
    assert len(segments) == 2  # politics+economy (kim) and economy (lee and the five others)
    services.close()


@pytest.mark.parametrize("is_pipelining", [False, True], ids=["one command a time", "pipelining"])
def test_transient_failures_are_retried_and_permanent_ones_count_as_bounces(tmp_path, clock, smtp_server,
                                                                            is_pipelining: bool) -> None:
    recorder, url = smtp_server
    recorder.is_pipelining = is_pipelining
    recorder.fail_rcpt["kim@example.com"] = "451 4.3.0 try again later"
    recorder.fail_times["kim@example.com"] = 2
    recorder.fail_rcpt["lee@example.com"] = "550 5.1.1 no such user"
    services = make_services(tmp_path, clock, url, {"GAZETTE_MAIL_RETRY_DELAY": "30s"})
    seed(services, clock)
    report = services.send("daily", NOW, everyone=True)
    assert (report.sent, report.failed) == (1, 1)
    assert len(recorder.to("kim@example.com")) == 1  # delivered on the third try, once
    assert clock.now >= NOW + timedelta(seconds=90)  # waited 30 s, then 60 s
    kim, lee = services.subscribers.find("kim@example.com"), services.subscribers.find("lee@example.com")
    state = services.deliveries.delivery(report.edition_id, kim.id)
    assert (state["status"], state["attempts"]) == ("sent", 3)
    failed = services.deliveries.delivery(report.edition_id, lee.id)
    assert failed["status"] == "failed" and "550" in failed["last_error"]
    # Two more hard bounces in later editions suspend the address.
    for hours in (25, 49):
        clock.now = NOW + timedelta(hours=hours)
        services.store.upsert_articles([make_article(100 + hours, category="economy", published_at=clock.now - timedelta(hours=1))],
                                       source_id=None, now=clock())
        services.send("daily", clock.now, everyone=True)
    assert services.subscribers.find("lee@example.com").status == "bounced"
    assert services.subscribers.is_suppressed("lee@example.com")
    services.close()


@pytest.mark.parametrize("is_pipelining", [False, True], ids=["one command a time", "pipelining"])
def test_smtp_transport_stuffs_dots_and_keeps_the_bytes(smtp_server, is_pipelining: bool) -> None:
    from newsletter.transport import SmtpTransport

    recorder, url = smtp_server
    recorder.is_pipelining = is_pipelining
    message = b"Subject: dots\r\n\r\n.a line that starts with a dot\r\n..two\r\n.\r\nend\r\n"
    transport = SmtpTransport(url)
    for _ in range(3):
        transport.send("news@example.com", "kim@example.com", message)
    transport.close()
    assert recorder.sessions == 1
    assert [content for _, _, content in recorder.messages] == [message] * 3


def test_rate_limit_and_connection_reuse(tmp_path, clock, smtp_server) -> None:  # type: ignore[no-untyped-def]
    recorder, url = smtp_server
    services = make_services(tmp_path, clock, url, {"GAZETTE_MAIL_RATE_PER_SECOND": "20", "GAZETTE_MAIL_CONCURRENCY": "2"})
    seed(services, clock)
    for i in range(18):
        services.subscribers.add(f"r{i}@example.com", categories=["economy"], editions=["daily"], now=clock(),
                                 confirmed=True, method="admin")
    started = time.monotonic()
    assert services.send("daily", NOW, everyone=True).sent == 20
    assert time.monotonic() - started >= 0.9  # 20 messages at 20 a second
    assert recorder.sessions <= 2  # each worker keeps its connection
    services.close()


def test_ads_are_held_for_the_night_and_labelled(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    services = make_services(tmp_path, clock, f"maildir://{tmp_path / 'out'}", extra=ADS)
    seed(services, clock)
    consent_to_ads(services, clock, "kim@example.com", "lee@example.com")
    clock.now = NOW + timedelta(hours=13)  # 22:00 KST
    night = services.send("daily", clock.now, everyone=True)
    assert (night.sent, night.held) == (0, 2)
    assert services.audience_jobs.resume_editions() == "nothing to resume"  # nothing is due before 08:00
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out" / "new").iterdir())
    clock.now = NOW + timedelta(hours=23, minutes=1)  # 08:01 KST the next day
    assert "sent 2" in services.audience_jobs.resume_editions()
    mails = [parsed(p.read_bytes()) for p in (tmp_path / "out" / "new").iterdir()]
    assert len(mails) == 2 and all(m["Subject"].startswith("(광고) [한빛일보]") for m in mails)
    services.close()


def test_each_reader_gets_the_edition_at_their_own_hour(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    services = make_services(tmp_path, clock, f"maildir://{tmp_path / 'out'}")
    seed(services, clock)
    london = services.subscribers.find("lee@example.com")
    from newsletter.records import Choices

    services.subscribers.update_preferences(london.id, london.public_id,
                                            Choices(("economy",), ("daily",), timezone="Europe/London"),
                                            is_paused=False, now=clock())
    seoul_7am = NOW - timedelta(hours=2)  # 07:00 KST
    london_7am = NOW + timedelta(hours=7)  # 07:00 in London (GMT in November)
    first = services.send("daily", seoul_7am)
    assert first.recipients == 1 and first.sent == 1  # kim only
    second = services.send("daily", london_7am)
    assert second.recipients == 1 and second.sent == 1  # lee only
    specs = {spec.key for spec in services.task_specs()}
    assert {"digest:due", "digest:resume"} <= specs  # one tick for every zone, not a job per listed zone
    services.close()


def test_archive_page_stats_and_preview(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    import service

    services = make_services(tmp_path, clock, f"maildir://{tmp_path / 'out'}",
                             extra='[admin]\ntoken = "admin-token-0123456789"\n')
    seed(services, clock)
    preview = services.preview("daily", NOW, "kim@example.com")
    assert preview is not None and "기사 1" in preview["text"] and "GZX" not in preview["html"]
    assert b"List-Unsubscribe-Post" in preview["eml"]
    assert services.preview("daily", NOW, "nobody@example.com")["text"].count("* 기사") == 5  # every category
    report = services.send("daily", NOW, everyone=True)
    mail = next(m for m in (parsed(p.read_bytes()) for p in (tmp_path / "out" / "new").iterdir())
                if m["To"].addresses[0].addr_spec == "kim@example.com")
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    archive = re.search(r"https://news\.example\.com(/archive/\S+)", text)[1]  # type: ignore[index]
    link = re.search(r"https://news\.example\.com(/r/\S+)", text)[1]  # type: ignore[index]
    with InProcessClient(service.create_app(services)) as client:
        page = client.get(archive)
        assert page.status_code == 200 and "오늘의 뉴스" in page.text and "GZX" not in page.text
        # Forwarded digests open it: nobody's address or links on it (the reader's own are in the mail only).
        assert "kim@example.com" not in page.text and "/unsubscribe/" not in page.text
        assert "/preferences/" not in page.text and "(주소 숨김)" in page.text and "/link" in page.text
        assert client.get(archive[:-3] + "xyz").status_code == 400
        assert client.get(archive.replace("/archive/1/", "/archive/2/")).status_code == 404
        assert client.get(link, headers={"User-Agent": "Mozilla/5.0"}).status_code == 302
        stats = client.get(f"/api/editions/{report.edition_id}", headers={"Authorization": "Bearer admin-token-0123456789"}).json()
        assert (stats["sent"], stats["skipped"], stats["failed"], stats["clicks"]) == (2, 0, 0, 1)
    assert services.preview("daily", NOW, "kim@example.com") is None  # sent: nothing new until the next article
    services.close()


def test_email_this_article(tmp_path, clock, smtp_server) -> None:  # type: ignore[no-untyped-def]
    import service

    recorder, url = smtp_server
    services = make_services(tmp_path, clock, url)
    seed(services, clock)
    article = services.store.articles(limit=1)[0]
    with InProcessClient(service.create_app(services)) as client:
        path = f"/articles/{article.id}/share"
        ok = client.post(path, data={"sender_name": "홍길동", "recipient": "friend@example.com",
                                     "note": "<b>꼭 읽어 봐</b>"}, headers={"Accept": "application/json"})
        assert ok.status_code == 200, ok.text
        [raw] = recorder.to("friend@example.com")
        message = parsed(raw)
        assert message["Subject"].startswith("[한빛일보] 홍길동 님이 보낸 기사:")
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert "&lt;b&gt;꼭 읽어 봐&lt;/b&gt;" in html and "<b>꼭" not in html
        bad = {
            "link in note": ({"note": "싸게 팝니다 http://spam.example"}, 400),
            "bad address": ({"recipient": "a@b\r\nBcc: x@example.com"}, 400),
            "no sender": ({"sender_name": ""}, 400),
        }
        for case, (change, status) in bad.items():
            data = {"sender_name": "홍길동", "recipient": "friend2@example.com", "note": "", **change}
            assert client.post(path, data=data).status_code == status, case
        assert client.post("/articles/nope/share", data={"sender_name": "a", "recipient": "b@example.com"}).status_code == 404
        for _ in range(2):
            client.post(path, data={"sender_name": "a", "recipient": "friend@example.com"})
        limited = client.post(path, data={"sender_name": "a", "recipient": "friend@example.com"})
        assert limited.status_code == 429 and "retry-after" in limited.headers
        assert len(recorder.to("friend@example.com")) == 3  # 3 a day per recipient
    services.close()
