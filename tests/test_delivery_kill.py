"""Crash safety: a real `gazette digest send` process SIGKILLed mid-edition several times, then run to the end.

Every recipient must have the edition, and a second copy only for messages that were in flight at a kill (handed
to the server, outcome not yet written): at most one recorder interval's worth plus one per worker, per kill.
Duplicates carry the same Message-ID, so mail clients can fold them.
"""

from __future__ import annotations

import email
import os
import signal
import subprocess
import time
from collections import Counter
from email import policy

import pytest
from sqlalchemy import func, select

from newsletter.settings import load_settings
from newsletter.db import deliveries
from tests.conftest import NOW, gazette_command, write_config
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
    config = write_config(tmp_path / "gazette.toml", database_url=f"sqlite:///{tmp_path / 'g.db'}", mail_url=url)
    env = {**os.environ, "GAZETTE_MAIL_RATE_PER_SECOND": "100", "GAZETTE_MAIL_CONCURRENCY": str(CONCURRENCY)}
    services = service.Services(load_settings(config, {}), clock=clock)
    services.prepare_database(migrate=True)
    services.store.upsert_articles([make_article(i, category="economy", published_at=NOW - timedelta_hours(i))
                                    for i in range(1, 6)], source_id=None, now=clock())
    text = "email,categories\n" + "".join(f"r{i:03d}@example.com,economy\n" for i in range(RECIPIENTS))
    assert services.subscribers.import_csv(text, known_categories=["economy"], now=clock(), confirmed=True).added == RECIPIENTS
    command = gazette_command() + ["--config", str(config), "digest", "send", "daily", "--at", NOW.isoformat()]

    kills = 0
    for delay in (0.4, 0.6, 0.3, 0.5):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        start_count = len(recorder.messages)
        while len(recorder.messages) == start_count and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)  # wait until this run is really sending
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()  # reaped: its edition lease can be taken over at once
    assert kills == KILLS, "each run was killed mid-edition"
    assert len({r for _, rcpts, _ in recorder.messages for r in rcpts}) < RECIPIENTS, "the kills came before the end"

    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
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
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and f"already done {RECIPIENTS}" in again.stdout
    assert len(recorder.messages) == RECIPIENTS + duplicates  # a finished edition sends nothing more
    print(f"{kills} kills, {duplicates} duplicate(s) of {RECIPIENTS}")
    services.close()


def timedelta_hours(hours: int):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    return timedelta(hours=hours)
