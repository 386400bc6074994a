"""Pausing and resuming an edition run, over real SMTP (aiosmtpd on 127.0.0.1): the workers stop soon after a pause,
the mail in flight is recorded, nothing resumes a paused run by itself, and a resume ends with every reader having
exactly one mail."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from click.testing import CliRunner

from newsletter.errors import EditionState, UnknownEdition
from tests.conftest import NOW, wait_until
from tests.test_delivery import make_services
from tests.test_digest import seed

READERS = 40
AT = NOW - timedelta(hours=2)  # 07:00 in Seoul, the daily edition's hour: a scheduled run reaches the readers
SLOW = {"GAZETTE_MAIL_RATE_PER_SECOND": "15", "GAZETTE_MAIL_CONCURRENCY": "2"}


def many_readers(services, clock) -> set[str]:  # type: ignore[no-untyped-def]
    seed(services, clock)
    for i in range(READERS):
        services.subscribers.add(f"reader{i}@example.com", categories=["politics", "economy"][: 1 + i % 2],
                                 editions=["daily"], now=clock(), confirmed=True, method="admin")
    return {"kim@example.com", "lee@example.com"} | {f"reader{i}@example.com" for i in range(READERS)}


def received(recorder) -> Counter[str]:  # type: ignore[no-untyped-def]
    return Counter(to for _, tos, _ in recorder.messages for to in tos)


def send_in_background(services, **kwargs):  # type: ignore[no-untyped-def]
    reports: list = []
    thread = threading.Thread(target=lambda: reports.append(services.send("daily", AT, **kwargs)))
    thread.start()
    return thread, reports


def pause_after(services, recorder, count: int) -> int:  # type: ignore[no-untyped-def]
    wait_until(lambda: len(recorder.messages) >= count, message="the run did not start sending")
    edition_id = wait_until(lambda: services.deliveries.find_edition("daily", AT))
    stats = services.pause(edition_id)
    assert stats.status == "paused" and stats.paused_at is not None
    return edition_id


@pytest.mark.parametrize("everyone", [True, False], ids=["manual", "scheduled"])
def test_pause_mid_run_then_resume_sends_each_reader_exactly_one_mail(tmp_path, clock, smtp_server,
                                                                     everyone) -> None:  # type: ignore[no-untyped-def]
    recorder, url = smtp_server
    services = make_services(tmp_path, clock, url, SLOW)
    readers = many_readers(services, clock)
    thread, reports = send_in_background(services, everyone=everyone)
    edition_id = pause_after(services, recorder, 5)
    thread.join(timeout=30)
    assert not thread.is_alive(), "the run did not stop after the pause"
    [report] = reports
    assert report.is_paused and "paused" in report.line() and f"digest resume {edition_id}" in report.line()
    [stats] = services.deliveries.stats(edition_id)
    assert stats.status == "paused" and stats.finished_at is None
    assert stats.audience == ("everyone" if everyone else "zones")
    # What went is recorded as sent; what did not is not (in flight finished): the ledger and the server agree.
    got = received(recorder)
    assert set(got.values()) == {1}
    assert 5 <= len(got) < len(readers), "the pause stopped nothing"
    assert stats.counts.get("sent", 0) == len(got) == report.sent
    assert stats.counts.get("failed", 0) == 0

    # Nothing carries a paused run on by itself: not the resume job, not the scheduler's tick, not a send.
    clock.now = NOW + timedelta(minutes=10)
    assert services.audience_jobs.resume_editions() == "nothing to resume"
    assert services.audience_jobs.send_due(NOW + timedelta(minutes=1)) == "no edition due"
    again = services.send("daily", AT, everyone=everyone)
    assert again.is_paused and again.sent == 0
    assert received(recorder) == got
    with pytest.raises(EditionState):
        services.retry("daily", edition_id, AT)  # a retry is sending too: resume first
    with pytest.raises(EditionState):
        services.pause(edition_id)  # paused already

    done = services.resume(edition_id)
    assert not done.is_paused and done.sent == len(readers) - len(got)
    assert received(recorder) == Counter({address: 1 for address in readers})
    [stats] = services.deliveries.stats(edition_id)
    assert stats.status == "done" and stats.counts == {"sent": len(readers)}
    with pytest.raises(EditionState):
        services.resume(edition_id)  # nothing to resume
    with pytest.raises(EditionState):
        services.pause(edition_id)  # done
    with pytest.raises(UnknownEdition):
        services.pause(edition_id + 100)
    services.close()


def test_a_run_paused_and_resumed_on_another_thread_while_the_page_answers(tmp_path, clock,
                                                                          smtp_server) -> None:  # type: ignore[no-untyped-def]
    recorder, url = smtp_server
    services = make_services(tmp_path, clock, url, SLOW)
    readers = many_readers(services, clock)
    thread, _ = send_in_background(services, everyone=True)
    edition_id = pause_after(services, recorder, 3)
    thread.join(timeout=30)
    resumed = services.resume_soon(edition_id)
    assert resumed.status == "sending"
    wait_until(lambda: services.deliveries.stats(edition_id)[0].status == "done", timeout=30)
    assert received(recorder) == Counter({address: 1 for address in readers})
    services.close()


def test_pause_and_resume_commands(tmp_path, clock, smtp_server) -> None:  # type: ignore[no-untyped-def]
    import service

    recorder, url = smtp_server
    services = make_services(tmp_path, clock, url, SLOW)
    readers = many_readers(services, clock)
    thread, _ = send_in_background(services, everyone=True)
    edition_id = wait_until(lambda: services.deliveries.find_edition("daily", AT))
    runner = CliRunner()
    config = str(tmp_path / "gazette.toml")
    env = {k: v for k, v in SLOW.items()}
    answer = runner.invoke(service.main, ["digest", "pause", str(edition_id), "--config", config], env=env)
    assert answer.exit_code == 0, answer.output
    assert f"paused; resume it with: gazette digest resume {edition_id}" in answer.output
    thread.join(timeout=30)
    assert not thread.is_alive()
    answer = runner.invoke(service.main, ["digest", "pause", str(edition_id), "--config", config], env=env)
    assert answer.exit_code == 1 and "only a run that is sending can be paused" in answer.output
    answer = runner.invoke(service.main, ["digest", "status", "daily", "--at", AT.isoformat(), "--config", config])
    assert f"(edition {edition_id}): paused;" in answer.output
    assert f"gazette digest resume {edition_id} carries it on" in answer.output
    answer = runner.invoke(service.main, ["digest", "resume", str(edition_id), "--config", config], env=env)
    assert answer.exit_code == 0, answer.output
    assert received(recorder) == Counter({address: 1 for address in readers})
    answer = runner.invoke(service.main, ["digest", "resume", str(edition_id), "--config", config], env=env)
    assert answer.exit_code == 1 and "only a paused run can be resumed" in answer.output
    services.close()
