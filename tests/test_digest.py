"""Digests end to end: candidates per subscriber, once per edition, maildir and a real SMTP server."""

from __future__ import annotations

import email
import mailbox
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest

from newsletter.settings import load_settings
from newsletter.digest import build_digest
from newsletter.deliveries import DeliveryStore
from newsletter.subscribers import SubscriberStore
from newsletter.transport import SmtpTransport
from tests.conftest import NOW, migrated_sqlite_url, write_config
from tests.test_store import make_article


@pytest.fixture
def services(tmp_path, database_url, clock):  # type: ignore[no-untyped-def]
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url,
                                          mail_url=f"maildir://{tmp_path / 'outbox'}"), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    yield services
    services.engine.dispose()


def read_maildir(path: Path) -> list[email.message.EmailMessage]:
    box = mailbox.Maildir(str(path), create=False)
    return [email.message_from_bytes(box.get_bytes(key), policy=policy.default) for key in sorted(box.keys())]


def seed(services, clock) -> None:  # type: ignore[no-untyped-def]
    articles = [make_article(i, category="politics" if i <= 3 else "economy", published_at=NOW - timedelta(hours=i))
                for i in range(1, 6)]
    services.store.upsert_articles(articles, source_id=None, now=clock())
    services.store.add_views_batch([(articles[4].id, NOW - timedelta(hours=2), 40)])
    services.store.add_views_batch([(articles[0].id, NOW - timedelta(hours=1), 7)])
    subs = services.subscribers
    subs.add("kim@example.com", name="김독자", categories=["politics", "economy"], editions=["daily"], now=clock(),
             confirmed=True, method="admin")
    subs.add("lee@example.com", categories=["economy"], editions=["daily"], now=clock(), confirmed=True, method="admin")
    subs.add("park@example.com", categories=["politics"], editions=["daily"], now=clock(), confirmed=False,
             method="form")  # pending: gets nothing
    subs.add("choi@example.com", categories=["politics"], editions=["weekly"], now=clock(), confirmed=True,
             method="admin")  # another edition


def test_digest_goes_once_to_each_confirmed_subscriber(services, clock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seed(services, clock)
    report = services.send("daily", NOW, everyone=True)
    assert (report.recipients, report.sent, report.skipped, report.failed) == (2, 2, 0, 0)
    mails = read_maildir(tmp_path / "outbox")
    by_to = {m["To"].addresses[0].addr_spec: m for m in mails}
    assert set(by_to) == {"kim@example.com", "lee@example.com"}

    kim = by_to["kim@example.com"]
    assert kim["Subject"] == "[한빛일보] 오늘의 뉴스 · 2026년 11월 25일"
    assert kim["From"].addresses[0].display_name == "한빛일보"
    assert kim["Message-ID"] and kim["Date"] and kim["List-Id"]
    text = kim.get_body(("plain",)).get_content()
    html = kim.get_body(("html",)).get_content()
    assert "== 정치 ==" in text and "== 경제 ==" in text and "기사 1" in text and "기사 5" in text
    assert text.index("== 정치 ==") < text.index("== 경제 ==")  # configured category order
    assert "== 많이 본 뉴스 ==" in text and "1. 기사 5 (조회 40)" in text and "2. 기사 1 (조회 7)" in text
    assert "\n  홍길동 기자 · 11/25 08:00\n" in text  # byline line keeps its indent, time in KST
    assert "한빛시 중앙로 1" in text and "kim@example.com 주소로" in text and "lee@example.com" not in text
    assert "<h2" in html and "많이 본 뉴스" in html
    lee_text = by_to["lee@example.com"].get_body(("plain",)).get_content()
    assert "기사 4" in lee_text and "== 정치 ==" not in lee_text

    again = services.send("daily", NOW, everyone=True)  # the same firing again (a retry, a second process)
    assert (again.sent, again.already_done) == (0, 2)
    assert len(read_maildir(tmp_path / "outbox")) == 2


def test_next_edition_sends_only_what_is_new(services, clock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seed(services, clock)
    services.send("daily", NOW, everyone=True)
    nothing_new = services.send("daily", NOW + timedelta(hours=1), everyone=True)
    assert (nothing_new.sent, nothing_new.skipped) == (0, 2)

    clock.now = NOW + timedelta(hours=2)
    services.store.upsert_articles([make_article(9, category="economy", published_at=NOW + timedelta(hours=1))],
                                   source_id=None, now=clock())
    fresh = services.send("daily", NOW + timedelta(hours=2), everyone=True)
    assert fresh.sent == 2
    mails = read_maildir(tmp_path / "outbox")
    assert len(mails) == 4
    newest = [m.get_body(("plain",)).get_content() for m in mails if "기사 9" in m.get_body(("plain",)).get_content()]
    assert len(newest) == 2
    assert all("* 기사 1\n" not in body and "* 기사 4\n" not in body for body in newest)


def test_high_water_marks_move_with_sent_mail_only(services, clock) -> None:  # type: ignore[no-untyped-def]
    """A reader's mark is kept in `reader_marks` as mail is recorded sent (one key lookup at any history length): it
    only ever moves forward, and a failed or retrying delivery leaves it alone."""
    from newsletter.deliveries import Outcome

    seed(services, clock)
    ledger = DeliveryStore(services.engine)
    later, earlier = NOW - timedelta(hours=1), NOW - timedelta(hours=5)
    for name, at, high_water in [("daily", NOW, later), ("weekly", NOW + timedelta(hours=1), earlier)]:
        edition_id = ledger.open_edition(name, at, at - timedelta(days=1), clock())
        ledger.queue(edition_id, [(1, f"<{name}-1@x>"), (2, f"<{name}-2@x>")], segment_id=None, articles=1,  # type: ignore[arg-type]
                     high_water_at=high_water)
        ledger.record(edition_id, [Outcome(1, "sent", None, 1, at=clock()),
                                   Outcome(2, "retry", "421 busy", 1, at=clock() + timedelta(minutes=1))])
    assert ledger.high_waters([1, 2]) == {1: later}  # the older weekly article did not move it back


def test_a_send_reads_its_readers_a_page_at_a_time(services, clock) -> None:  # type: ignore[no-untyped-def]
    from newsletter.records import Audience

    subs: SubscriberStore = services.subscribers
    for i in range(7):
        subs.add(f"page{i}@example.com", categories=[], editions=["daily"], now=clock(), confirmed=True, method="admin")
    pages = list(subs.pages(Audience("daily"), size=3))
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [r.id for p in pages for r in p] == [r.id for r in subs.confirmed("daily")]


def test_dry_run_sends_and_records_nothing(services, clock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seed(services, clock)
    report = services.send("daily", NOW, everyone=True, dry_run=True)
    assert report.sent == 2 and report.is_dry_run
    assert not (tmp_path / "outbox").exists() or read_maildir(tmp_path / "outbox") == []
    assert DeliveryStore(services.engine).high_waters([1, 2]) == {}


def test_build_digest_is_none_without_articles() -> None:
    assert build_digest("daily", candidates=[], most_viewed=[], category_order=[], labels={}, max_articles=5,
                        period_end=NOW) is None


def test_suppressed_addresses_are_not_reactivated(services, clock) -> None:  # type: ignore[no-untyped-def]
    from newsletter.db import subscribers

    subs: SubscriberStore = services.subscribers
    subs.add("gone@example.com", categories=[], editions=["daily"], now=clock(), confirmed=True, method="admin")
    with services.engine.begin() as conn:
        conn.execute(subscribers.update().values(status="unsubscribed"))
    report = subs.import_csv("email,name\ngone@example.com,x\nnot-an-address,y\nnew@example.com,z\n",
                             known_categories=["politics"], now=clock(), confirmed=True)
    assert (report.added, report.suppressed, [n for n, _ in report.invalid]) == (1, (2,), [3])
    assert [s.email for s in subs.confirmed("daily")] == ["new@example.com"]


def test_smtp_delivery_reuses_one_connection(tmp_path, clock, smtp_server) -> None:  # type: ignore[no-untyped-def]
    import service

    recorder, url = smtp_server
    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path),
                                          mail_url=url), {"GAZETTE_MAIL_CONCURRENCY": "1"})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    seed(services, clock)
    report = services.send("daily", NOW, everyone=True)
    assert report.sent == 2
    assert recorder.sessions == 1  # one worker: one connection for the whole edition
    assert sorted(rcpt[0] for _, rcpt, _ in recorder.messages) == ["kim@example.com", "lee@example.com"]
    # VERP: each message's return path carries its signed tag, so a bounce names the message it is about.
    for mail_from, [rcpt], _ in recorder.messages:
        tag = services.tags.find(mail_from)
        assert mail_from.startswith("bounce+d") and mail_from.endswith("@example.com")
        assert tag is not None and tag.subscriber_id == services.subscribers.find(rcpt).id  # type: ignore[union-attr]
    parsed = email.message_from_bytes(recorder.messages[0][2], policy=policy.default)
    assert parsed["Subject"].startswith("[한빛일보]")
    services.engine.dispose()


def test_smtp_refusal_is_a_delivery_error() -> None:
    from newsletter.errors import DeliveryError

    transport = SmtpTransport("smtp://127.0.0.1:1")  # nothing listens on port 1
    with pytest.raises(DeliveryError) as info:
        transport.send("a@example.com", "b@example.com", b"Subject: x\r\n\r\nx\r\n")
    assert not info.value.is_permanent
    transport.close()
