"""The queue path's rules in-process, without a broker: the freeze into batches and a worker's pass over one batch
(newsletter/batches.py), over a real database and a real SMTP server. The broker's part is tests/test_queue.py's."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from newsletter.batch_ledger import BatchLedger
from newsletter.batches import Pace, queue_edition, run_batch
from newsletter.db import editions
from newsletter.outbox import RateGate
from newsletter.settings import load_settings
from tests.conftest import NOW, migrated_sqlite_url, write_config
from tests.test_store import make_article

READERS = 25


class BrokerGone(Exception):
    """The producer's process dies while it publishes (here: the enqueue raises)."""


@pytest.fixture
def services(tmp_path, clock, smtp_server):  # type: ignore[no-untyped-def]
    import service

    _, url = smtp_server
    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path), mail_url=url)
    services = service.Components(load_settings(config, {}), clock=clock)
    services.prepare_database(migrate=False)
    services.store.upsert_articles([make_article(i, category="economy", published_at=NOW - timedelta(hours=i))
                                    for i in range(1, 4)], source_id=None, now=clock())
    text = "email,categories\n" + "".join(f"r{i:03d}@example.com,economy\n" for i in range(READERS))
    services.subscribers.import_csv(text, known_categories=["economy"], now=clock(), confirmed=True)
    yield services
    services.close()


def send_batch(services, batch_id: int) -> str:  # type: ignore[no-untyped-def]
    """A worker's task, run here, over one connection to the relay as a worker's thread has."""
    transport = services.transport()
    try:
        return run_batch(batch_id, run=services.edition_run(), batches=BatchLedger(services.engine),
                         edition_of=services.edition, holder="test-host:1:abcdef01|1", connection=lambda: transport,
                         pace=Pace(RateGate(10_000).turns), enqueue_later=lambda batch, wait: None)
    finally:
        transport.close()


def status(services) -> str:  # type: ignore[no-untyped-def]
    with services.engine.connect() as conn:
        return conn.execute(select(editions.c.status)).scalar_one()


def test_a_freeze_cut_short_is_never_finished_by_the_workers_and_the_resume_job_freezes_the_rest(  # type: ignore[no-untyped-def]
        services, smtp_server) -> None:
    recorder, _ = smtp_server
    batches, published = BatchLedger(services.engine), []

    def publish_then_die(batch_id: int) -> None:
        if published:
            raise BrokerGone()
        published.append(batch_id)

    with pytest.raises(BrokerGone):  # the first page's batch went out; the producer died on the second
        queue_edition(services.edition("daily"), scheduled_at=NOW, run=services.edition_run(), batches=batches,
                      enqueue=publish_then_die, size=10, everyone=True)
    assert "sent 10" in send_batch(services, published[0])
    assert status(services) == "sending", "the workers did not finish a run whose freeze was cut short"
    assert [name for name, _ in services.deliveries.unfinished(NOW)] == ["daily"]  # the resume job will see it

    again: list[int] = []
    report = queue_edition(services.edition("daily"), scheduled_at=NOW, run=services.edition_run(), batches=batches,
                           enqueue=again.append, size=10, everyone=True)
    assert report.requeued == 1 and len(again) == 1, report.line()  # the batch the broker may never have got
    assert "sent 10" in send_batch(services, again[0])
    assert status(services) == "sending"

    rest: list[int] = []  # the resume job's next pass freezes the readers the crash left without a row
    report = queue_edition(services.edition("daily"), scheduled_at=NOW, run=services.edition_run(), batches=batches,
                           enqueue=rest.append, size=10, everyone=True)
    assert (report.queued, report.already_done, len(rest)) == (READERS - 20, 20, 1), report.line()
    assert "sent 5" in send_batch(services, rest[0])
    assert status(services) == "done"
    per_reader = Counter(rcpt for _, rcpts, _ in recorder.messages for rcpt in rcpts)
    assert len(per_reader) == READERS and set(per_reader.values()) == {1}


def test_a_batch_delivered_twice_sends_nothing_the_second_time(services, smtp_server) -> None:  # type: ignore[no-untyped-def]
    recorder, _ = smtp_server
    published: list[int] = []
    queue_edition(services.edition("daily"), scheduled_at=NOW, run=services.edition_run(),
                  batches=BatchLedger(services.engine), enqueue=published.append, size=100, everyone=True)
    assert send_batch(services, published[0]).startswith("sent 25, failed 0")
    assert send_batch(services, published[0]) == "done already"
    assert len(recorder.messages) == READERS and status(services) == "done"
