"""Crash safety: a real `gazette digest send` process SIGKILLed mid-edition several times, then run to the end
(in-process: the kills are what needs a process).

Every recipient must have the edition, and a second copy only for messages that were in flight at a kill (handed
to the server, outcome not yet written): at most one recorder interval's worth plus one per worker, per kill.
Duplicates carry the same Message-ID, so mail clients can fold them.
"""

from __future__ import annotations

import email
import os
import signal
import subprocess
from collections import Counter
from email import policy

import pytest
from sqlalchemy import func, select

from newsletter.settings import load_settings
from newsletter.db import deliveries
from tests.conftest import NOW, gazette_command, migrated_sqlite_url, run_gazette, wait_until, write_config
from tests.test_store import make_article

RECIPIENTS = 300
KILLS = 4
CONCURRENCY = 2
# Outcomes are written every 0.05 s: at 100 msg/s that is 5 messages, plus one per worker, plus headroom for a
# slow disk write. Before the recorder flushed on time (only per 100), a kill cost about 45 resends.
IN_FLIGHT = 25


@pytest.mark.slow
def test_killed_sender_resumes_without_losing_or_doubling(tmp_path, clock, smtp_server) -> None:  # type: ignore[no-untyped-def]
    import service

    recorder, url = smtp_server
    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path), mail_url=url)
    settings_env = {"GAZETTE_MAIL_RATE_PER_SECOND": "100", "GAZETTE_MAIL_CONCURRENCY": str(CONCURRENCY)}
    env = {**os.environ, **settings_env}
    services = service.Components(load_settings(config, {}), clock=clock)
    services.prepare_database(migrate=True)
    services.store.upsert_articles([make_article(i, category="economy", published_at=NOW - timedelta_hours(i))
                                    for i in range(1, 6)], source_id=None, now=clock())
    text = "email,categories\n" + "".join(f"r{i:03d}@example.com,economy\n" for i in range(RECIPIENTS))
    assert services.subscribers.import_csv(text, known_categories=["economy"], now=clock(), confirmed=True).added == RECIPIENTS
    args = ["--config", str(config), "digest", "send", "daily", "--at", NOW.isoformat()]

    def kill_after(sent_before_kill: int) -> bool:
        """Start a sender and SIGKILL it once it has sent this many messages; whether it was still running."""
        process = subprocess.Popen(gazette_command() + args, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        start_count = len(recorder.messages)
        wait_until(lambda: len(recorder.messages) >= start_count + sent_before_kill or process.poll() is not None,
                   60, message="the sender neither sent nor ended")
        killed = process.poll() is None
        if killed:
            process.send_signal(signal.SIGKILL)
        process.wait()  # reaped: its edition lease can be taken over at once
        return killed

    # Each run is killed once it has sent this many messages (0.4, 0.6, 0.3 and 0.5 s of sending at 100 a second):
    # counted, not timed, so a slow start on a loaded machine still ends mid-edition.
    kills = sum(kill_after(n) for n in (40, 60, 30, 50))
    assert kills == KILLS, "each run was killed mid-edition"
    assert len({r for _, rcpts, _ in recorder.messages for r in rcpts}) < RECIPIENTS, "the kills came before the end"

    final = run_gazette(args, env=settings_env)
    assert final.returncode == 0, final.stderr
    per_recipient = Counter(rcpt for _, rcpts, _ in recorder.messages for rcpt in rcpts)
    assert set(per_recipient) == {f"r{i:03d}@example.com" for i in range(RECIPIENTS)}, "nobody is lost"
    duplicates = sum(n - 1 for n in per_recipient.values())
    assert duplicates <= KILLS * IN_FLIGHT, f"{duplicates} duplicates"
    ids: dict[str, set[str]] = {}
    for _, rcpts, content in recorder.messages:
        ids.setdefault(rcpts[0], set()).add(email.message_from_bytes(content, policy=policy.default)["Message-ID"])
    assert all(len(v) == 1 for v in ids.values()), "a resent copy has the same Message-ID"
    with services.engine.connect() as conn:
        statuses = dict(conn.execute(select(deliveries.c.status, func.count()).group_by(deliveries.c.status)).all())
    assert statuses == {"sent": RECIPIENTS}
    again = run_gazette(args, env=settings_env)
    assert again.returncode == 0 and f"already done {RECIPIENTS}" in again.stdout
    assert len(recorder.messages) == RECIPIENTS + duplicates  # a finished edition sends nothing more
    print(f"{kills} kills, {duplicates} duplicate(s) of {RECIPIENTS}")
    services.close()


def timedelta_hours(hours: int):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    return timedelta(hours=hours)
