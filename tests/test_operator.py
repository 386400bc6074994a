"""What an operator runs when a send went wrong: `digest status`, `digest retry`, the failures `digest send` prints,
`--dry-run`'s list, `GET /api/editions/{id}/deliveries` and `sources list`; against a real SMTP server on
loopback that refuses, then accepts. Commands run in-process (`run_gazette`, the console script's `service.main`)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from feeds.model import SourceState, source_health
from newsletter.settings import load_settings
from tests.conftest import (
    NOW,
    ROOT,
    Clock,
    CommandResult,
    InProcessClient,
    SmtpRecorder,
    migrated_sqlite_url,
    run_gazette,
    write_config,
)
from tests.test_delivery import ADS, consent_to_ads, make_services
from tests.test_digest import seed

AT = "2026-11-25T09:00"  # NOW, in KST: the run every command below is about
TRANSIENT = "451 4.3.0 relay busy, try later"
PERMANENT = "550 5.1.1 no such user"
# One attempt per send (no back-off to wait out), and one hard bounce suspends an address.
ENV = {"GAZETTE_MAIL_RETRIES": "0", "GAZETTE_MAIL_HARD_BOUNCE_LIMIT": "1", "GAZETTE_MAIL_CONCURRENCY": "1"}


def run(args: list[str], config: Path, expect: int) -> CommandResult:
    return run_gazette(["--config", str(config)] + args, env=ENV, expect=expect)


@pytest.fixture
def site(tmp_path: Path, clock: Clock, smtp_server: tuple[SmtpRecorder, str]) -> Iterator[tuple[Path, SmtpRecorder]]:
    """A configuration whose mail goes to the test's SMTP server; kim, lee and park confirmed for the daily edition
    (seed's kim and lee, and park confirmed here), articles to send."""
    recorder, url = smtp_server
    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path), mail_url=url)
    import service

    services = service.Components(load_settings(config, ENV), clock=clock)
    services.prepare_database(migrate=True)
    seed(services, clock)
    services.subscribers.add("park@example.com", categories=["politics"], editions=["daily"], now=clock(),
                             confirmed=True, method="admin")
    services.close()
    yield config, recorder


def test_a_refused_send_is_shown_retried_and_cleared(site: tuple[Path, SmtpRecorder]) -> None:
    config, relay = site
    relay.fail_rcpt = {"lee@example.com": TRANSIENT, "park@example.com": PERMANENT}

    first = run(["digest", "send", "daily", "--at", AT], config, expect=1).stdout.splitlines()
    assert first[0] == ("daily at 2026-11-25T09:00:00+09:00: 3 recipients, sent 1, nothing new for 0, failed 2, "
                        "already done 0")
    assert first[1] == "failed 2:"
    assert re.fullmatch(r"  #2 lee@example\.com: failed, 1 attempt: gave up after 1 attempts: .*451.*relay busy.*",
                        first[2]), first[2]
    assert re.fullmatch(r"  #3 park@example\.com: failed, 1 attempt: .*550.*no such user.*", first[3]), first[3]
    assert first[4] == "retry them with: gazette digest retry daily --at 2026-11-25T09:00:00+09:00"

    # The same command again: the run is done, and says so, with its failures; still exit 1. (park bounced for
    # good, hard_bounce_limit 1: no longer a recipient.)
    again = run(["digest", "send", "daily", "--at", AT], config, expect=1).stdout
    assert "2 recipients, sent 0" in again and "already done 2" in again and "failed 2:" in again and "relay busy" in again

    status = run(["digest", "status", "daily"], config, expect=1).stdout.splitlines()
    assert re.fullmatch(r"daily at 2026-11-25 09:00 KST \(edition 1\): done; started \d{4}-\d\d-\d\d \d\d:\d\d KST, "
                        r"finished \d{4}-\d\d-\d\d \d\d:\d\d KST", status[0]), status[0]
    assert status[1] == "queued 0, sent 1, skipped 0, failed 2, retry 0, held 0"
    assert status[2] == "failed 2:" and "relay busy" in status[3] and "no such user" in status[4]

    relay.fail_rcpt = {}  # the relay is back
    retried = run(["digest", "retry", "daily", "--at", AT], config, expect=0).stdout.splitlines()
    assert retried[0] == "daily at 2026-11-25 09:00 KST (edition 1): retried 2: sent 1, failed 0, skipped 1"
    assert retried[1] == "  #2 lee@example.com: sent"
    # park's address bounced for good (hard_bounce_limit 1): suppressed, so not mailed again.
    assert retried[2].startswith("  #3 park@example.com: skipped: the subscriber is bounced: not retried "
                                 "(last error: ") and "550" in retried[2]
    assert [rcpts for _, rcpts, _ in relay.messages] == [["kim@example.com"], ["lee@example.com"]]

    cleared = run(["digest", "status", "daily", "--at", AT], config, expect=0).stdout.splitlines()
    assert cleared[1] == "queued 0, sent 2, skipped 1, failed 0, retry 0, held 0"
    assert cleared[2] == "not retried 1:" and "the subscriber is bounced" in cleared[3]
    assert "nothing to retry" in run(["digest", "retry", "daily"], config, expect=0).stdout
    assert len(relay.messages) == 2


def test_a_send_that_cannot_connect_fails_with_the_reason(tmp_path: Path, site: tuple[Path, SmtpRecorder]) -> None:
    config, _ = site
    from tests.conftest import free_port

    refused = config.read_text(encoding="utf-8").replace(re.search(r'smtp://[^"]+', config.read_text())[0],  # type: ignore[index]
                                                          f"smtp://127.0.0.1:{free_port()}")
    config.write_text(refused, encoding="utf-8")
    out = run(["digest", "send", "daily", "--at", AT], config, expect=1).stdout
    assert "failed 3" in out and out.count("Connection refused") + out.count("connection refused") >= 3, out


def test_status_and_retry_refuse_what_does_not_exist(site: tuple[Path, SmtpRecorder]) -> None:
    config, _ = site
    unknown = run(["digest", "status", "monthly"], config, expect=2).stderr
    assert "unknown edition 'monthly'; configured: daily, weekly" in unknown
    assert "no run of daily yet" in run(["digest", "status", "daily"], config, expect=1).stderr
    assert "no run of daily at 2026-11-25 09:00 KST yet" in run(["digest", "retry", "daily", "--at", AT], config,
                                                                 expect=1).stderr
    helped = " ".join(run(["digest", "status", "--help"], config, expect=0).stdout.split())
    assert "Exit 0 when the run has no failed delivery, 1 when it has" in helped


def test_dry_run_lists_who_would_get_what(site: tuple[Path, SmtpRecorder]) -> None:
    config, relay = site
    lines = run(["digest", "send", "daily", "--at", AT, "--dry-run", "--limit", "2"], config, expect=0).stdout.splitlines()
    assert re.fullmatch(r"#1 kim@example\.com Asia/Seoul segment [0-9a-f]{8} 5 articles: "
                        r"\[한빛일보\] 오늘의 뉴스 · 2026년 11월 25일", lines[0]), lines[0]
    assert re.fullmatch(r"#2 lee@example\.com Asia/Seoul segment [0-9a-f]{8} 2 articles: .*", lines[1]), lines[1]
    assert lines[2] == "and 1 more (--limit 0 lists all)"
    assert lines[3] == ("dry run of daily at 2026-11-25 09:00 KST: 3 recipients, would send 3 from 3 segments, "
                        "nothing new for 0; nothing sent or recorded")
    everyone = run(["digest", "send", "daily", "--at", AT, "--dry-run", "--limit", "0"], config, expect=0).stdout
    assert everyone.count("\n#") + everyone.startswith("#") == 3 and "#3 park@example.com" in everyone
    assert relay.messages == []
    assert "no run of daily yet" in run(["digest", "status", "daily"], config, expect=1).stderr  # nothing recorded


def test_send_shows_its_time_in_the_site_zone(site: tuple[Path, SmtpRecorder]) -> None:
    config, _ = site
    line = run(["digest", "send", "daily"], config, expect=0).stdout.splitlines()[0]  # now: nothing new by then
    assert re.match(r"daily at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+09:00: ", line), line


# --- retry in-process: the night rule, the lease -------------------------------------------------------------

def test_retry_keeps_an_ad_edition_for_the_morning(tmp_path: Path, clock: Clock, smtp_server) -> None:  # type: ignore[no-untyped-def]
    relay, url = smtp_server
    services = make_services(tmp_path, clock, url, {"GAZETTE_MAIL_RETRIES": "0"}, extra=ADS)
    seed(services, clock)
    consent_to_ads(services, clock, "kim@example.com", "lee@example.com")  # an ad edition goes only to them
    relay.fail_rcpt = {"lee@example.com": TRANSIENT}
    clock.now = NOW + timedelta(minutes=30)  # 09:30 KST
    report = services.send("daily", NOW, everyone=True)
    assert (report.sent, report.failed) == (1, 1)
    edition_id = services.deliveries.find_edition("daily")
    relay.fail_rcpt = {}

    clock.now = NOW + timedelta(hours=13)  # 22:00 KST: no advertising mail until 08:00
    night = services.retry("daily", edition_id, NOW)
    [held] = night.outcomes
    assert (held.email, held.status, held.at) == ("lee@example.com", "held", datetime(2026, 11, 25, 23, tzinfo=timezone.utc))
    assert night.failed == 0 and len(relay.messages) == 1
    assert services.deliveries.stats(edition_id)[0].status == "sending"  # the resume task sends it at 08:00

    clock.now = NOW + timedelta(hours=23, minutes=5)  # 08:05 KST
    morning = services.retry("daily", edition_id, NOW)
    assert [(o.email, o.status) for o in morning.outcomes] == [("lee@example.com", "sent")]
    assert relay.to("lee@example.com") and services.deliveries.counts(edition_id) == {"sent": 2}
    assert services.deliveries.stats(edition_id)[0].status == "done"
    services.close()


def test_retry_waits_for_a_sender_holding_the_edition(tmp_path: Path, clock: Clock, smtp_server) -> None:  # type: ignore[no-untyped-def]
    from feeds.core.scheduling import Lease
    from newsletter.edition_run import EDITION_LEASE_TTL

    relay, url = smtp_server
    services = make_services(tmp_path, clock, url, {"GAZETTE_MAIL_RETRIES": "0"})
    seed(services, clock)
    relay.fail_rcpt = {"lee@example.com": TRANSIENT}
    services.send("daily", NOW, everyone=True)
    edition_id = services.deliveries.find_edition("daily", NOW)
    relay.fail_rcpt = {}
    other = Lease(services.engine, f"edition:{edition_id}", "another-host:1", EDITION_LEASE_TTL, clock)
    assert other.acquire()
    busy = services.retry("daily", edition_id, NOW)
    assert busy.is_busy and busy.outcomes == () and len(relay.messages) == 1
    other.release()
    assert [o.status for o in services.retry("daily", edition_id, NOW).outcomes] == ["sent"]
    services.close()


# --- the API --------------------------------------------------------------------------------------------------

def test_api_lists_an_editions_failed_deliveries(tmp_path: Path, clock: Clock, smtp_server) -> None:  # type: ignore[no-untyped-def]
    import service

    relay, url = smtp_server
    services = make_services(tmp_path, clock, url, {"GAZETTE_MAIL_RETRIES": "0", "GAZETTE_ADMIN_TOKEN":
                                                    "admin-token-0123456789"})
    seed(services, clock)
    relay.fail_rcpt = {"lee@example.com": PERMANENT}
    services.send("daily", NOW, everyone=True)
    admin = {"Authorization": "Bearer admin-token-0123456789"}
    with InProcessClient(service.create_app(services)) as client:
        failed = client.get("/api/editions/1/deliveries?status=failed", headers=admin)
        assert failed.status_code == 200, failed.text
        body = failed.json()
        assert body["total"] == 1
        [row] = body["items"]
        assert (row["subscriber_id"], row["email"], row["status"], row["attempts"]) == (2, "lee@example.com", "failed", 1)
        assert "550" in row["last_error"] and row["sent_at"] is None and row["next_attempt_at"] is None

        first = client.get("/api/editions/1/deliveries?limit=1", headers=admin).json()
        assert first["total"] == 2 and [d["subscriber_id"] for d in first["items"]] == [1] and first["next_cursor"]
        every = client.get("/api/editions/1/deliveries", params={"limit": 1, "cursor": first["next_cursor"]},
                           headers=admin).json()
        assert every["total"] == 2 and [d["subscriber_id"] for d in every["items"]] == [2]
        assert every["next_cursor"] is None
        sent = client.get("/api/editions/1/deliveries?status=sent", headers=admin).json()
        assert [d["email"] for d in sent["items"]] == ["kim@example.com"] and sent["items"][0]["sent_at"]

        for path, status in [("/api/editions/1/deliveries?status=lost", 422), ("/api/editions/9/deliveries", 404),
                             ("/api/editions/1/deliveries?limit=0", 422),
                             ("/api/editions/1/deliveries?offset=1", 422),  # gone: cursors page now
                             ("/api/editions/1/deliveries?cursor=WyJzdWJzY3JpYmVycyIsMV0", 422)]:  # another list's
            answer = client.get(path, headers=admin)
            assert answer.status_code == status, (path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json" and answer.json()["detail"]
        assert client.get("/api/editions/1/deliveries").status_code == 401
        schema = client.get("/api/openapi.json", headers=admin).json()
        parameters = schema["paths"]["/api/editions/{edition_id}/deliveries"]["get"]["parameters"]
        [status_parameter] = [p for p in parameters if p["name"] == "status"]
        assert "failed" in str(status_parameter["schema"]) and "held" in str(status_parameter["schema"])
    services.close()


# --- sources ----------------------------------------------------------------------------------------------------

def _state(**fields: Any) -> SourceState:
    values: dict[str, Any] = dict(id=1, name="wire", kind="feed", location="https://x/feed", category=None,
                                  interval_seconds=600, fetch_url=None, etag=None, last_modified=None, body_hash=None,
                                  last_checked_at=None, last_success_at=None, last_error=None, last_error_at=None,
                                  consecutive_failures=0, next_check_at=None, disabled_reason=None)
    values.update(fields)
    return SourceState(**values)


@pytest.mark.parametrize("state, expected", [
    pytest.param(_state(), "new", id="never-read"),
    pytest.param(_state(last_success_at=NOW), "ok", id="read"),
    pytest.param(_state(last_success_at=NOW, consecutive_failures=1), "failing", id="one-failure"),
    pytest.param(_state(consecutive_failures=4), "failing", id="below-the-limit"),
    pytest.param(_state(consecutive_failures=5), "unhealthy", id="at-the-limit"),
    pytest.param(_state(consecutive_failures=9, disabled_reason="moved away"), "disabled", id="disabled-wins"),
])
def test_source_health(state: SourceState, expected: str) -> None:
    assert source_health(state, failure_limit=5) == expected


def test_sources_list_shows_health_and_times_in_the_site_zone(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path), extra=f"""
        [fetch]
        parse_processes = 0  # parsed in the fetching thread (quicker): what is listed does not depend on where

        [[sources]]
        name = "missing"
        kind = "jsonl"
        path = "{tmp_path / 'absent.jsonl'}"
        category = "politics"

        [[sources]]
        name = "good"
        kind = "feed"
        path = "{ROOT / 'tests' / 'data' / 'sources' / 'atom_basic.atom'}"
        category = "economy"
        """)
    before = run(["sources", "list"], config, expect=0).stdout.splitlines()
    assert before[0] == "missing (from config): new; last fetch never, next check when the scheduler next runs, 0 failures in a row"
    run(["ingest"], config, expect=1)
    lines = run(["sources", "list"], config, expect=0).stdout.splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d KST"
    assert re.fullmatch(rf"missing \(from config\): failing; last fetch {stamp}, next check {stamp}, 1 failure in a row", lines[0])
    assert re.fullmatch(rf"  last error \({stamp}\): .*absent\.jsonl: no such file", lines[1]), lines[1]
    assert re.fullmatch(rf"good \(from config\): ok; last fetch {stamp}, next check {stamp}, 0 failures in a row", lines[2])
    failing = run(["sources", "list", "--failing"], config, expect=0).stdout.splitlines()
    assert [line.split(" ")[0] for line in failing if not line.startswith(" ")] == ["missing"]


# --- the store's new reads and writes, on SQLite and PostgreSQL ------------------------------------------------

def test_retry_on_each_database(tmp_path: Path, database_url: str, clock: Clock) -> None:
    import service
    from newsletter.db import deliveries

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url,
                                          mail_url=f"maildir://{tmp_path / 'outbox'}"), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    seed(services, clock)
    services.send("daily", NOW, everyone=True)
    edition_id = services.deliveries.find_edition("daily", NOW)
    assert edition_id is not None and services.deliveries.find_edition("daily", NOW + timedelta(days=1)) is None
    lee = services.subscribers.find("lee@example.com")
    with services.engine.begin() as conn:  # as the relay's refusal leaves it
        conn.execute(deliveries.update().where(deliveries.c.subscriber_id == lee.id)  # type: ignore[union-attr]
                     .values(status="failed", last_error="451 busy", sent_at=None))
    total, [row] = services.deliveries.rows(edition_id, statuses=("failed",), has_error=True)
    assert (total, row.email, row.last_error, row.attempts) == (1, "lee@example.com", "451 busy", 1)
    assert [o.status for o in services.retry("daily", edition_id, NOW).outcomes] == ["sent"]
    assert services.deliveries.counts(edition_id) == {"sent": 2}
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 3
    services.close()
