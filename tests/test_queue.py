"""[queue]: editions sent by `gazette worker` processes over a real RabbitMQ, with the mail rate shared in a real Redis.

Real processes are the point here (workers killed with SIGKILL, a broker stopped under them), so the workers run as
the installed script; the producer (`gazette digest send`) runs in-process. Each test has a RabbitMQ virtual host of
its own (made with rabbitmqctl), so tests running at once never take each other's tasks. The tests that stop the
broker's app or measure a rate run alone.
"""

from __future__ import annotations

import email
import os
import random
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from newsletter.batches import CLAIM
from newsletter.db import deliveries, editions
from newsletter.settings import load_settings
from tests.conftest import NOW, SmtpRecorder, gazette_command, migrated_sqlite_url, run_gazette, wait_until, write_config
from tests.test_store import make_article

REDIS_URL = "redis://127.0.0.1:6379/0"
THREADS = 2  # per worker: a kill can send again at most CLAIM rows per thread


def _rabbitmq_missing() -> str | None:
    if shutil.which("rabbitmqctl") is None:
        return "rabbitmqctl is not installed: no RabbitMQ to test the queue against"
    import socket

    for port, what in ((5672, "RabbitMQ"), (6379, "Redis")):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return f"no {what} answers on 127.0.0.1:{port}"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(_rabbitmq_missing()), reason=_rabbitmq_missing() or "")]


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


@pytest.fixture
def broker() -> Iterator[str]:
    """A RabbitMQ virtual host of this test's own; its amqp:// URL."""
    yield from virtual_host()


def virtual_host() -> Iterator[str]:
    """A new RabbitMQ virtual host, deleted afterwards; its amqp:// URL."""
    vhost = f"gazette-test-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=120)


class Deployment:
    """A database with readers and articles, a config with [queue], and the worker processes started on it."""

    def __init__(self, folder: Path, database_url: str, mail_url: str, broker_url: str, clock,  # type: ignore[no-untyped-def]
                 *, readers: int, rate: int, extra: str = "") -> None:
        import service

        self.config = write_config(folder / "gazette.toml", database_url=database_url, mail_url=mail_url, extra=f"""
            [queue]
            url = "{broker_url}"
            redis_url = "{REDIS_URL}"
            batch_size = 500
            """ + extra)
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("GAZETTE_")},
                    "GAZETTE_MAIL_RATE_PER_SECOND": str(rate)}
        self.services = service.Components(load_settings(self.config, self.env), clock=clock)
        self.services.prepare_database(migrate=True)
        self.services.store.upsert_articles([make_article(i, category="economy", published_at=NOW - timedelta(hours=i))
                                             for i in range(1, 4)], source_id=None, now=clock())
        text = "email,categories\n" + "".join(f"r{i:05d}@example.com,economy\n" for i in range(readers))
        added = self.services.subscribers.import_csv(text, known_categories=["economy"], now=clock(), confirmed=True)
        assert added.added == readers
        self.readers = readers
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs = folder

    def start_worker(self) -> subprocess.Popen[bytes]:
        with open(self.logs / f"worker-{len(self.workers)}.log", "wb") as log:  # the child keeps its own copy
            process = subprocess.Popen(gazette_command() + ["--config", str(self.config), "worker", "--concurrency",
                                                            str(THREADS)], env=self.env, stdout=log, stderr=log)
        self.workers.append(process)
        return process

    def send(self) -> str:
        done = run_gazette(["--config", str(self.config), "digest", "send", "daily", "--at", NOW.isoformat()],
                           env={"GAZETTE_MAIL_RATE_PER_SECOND": self.env["GAZETTE_MAIL_RATE_PER_SECOND"]})
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def edition_done(self) -> bool:
        with self.services.engine.connect() as conn:
            return conn.execute(select(editions.c.status)).scalar() == "done"

    def statuses(self) -> dict[str, int]:
        with self.services.engine.connect() as conn:
            return dict(conn.execute(select(deliveries.c.status, func.count()).group_by(deliveries.c.status)).all())

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.services.close()

    def worker_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.logs.glob("worker-*.log")))


def check_once_each(deployment: Deployment, recorder: SmtpRecorder, *, bound: int) -> int:
    """Everyone has the edition; copies beyond one at most `bound`, each with the first's Message-ID; the ledger
    agrees with the sink. The number of duplicates."""
    per_recipient = Counter(rcpt for _, rcpts, _ in recorder.messages for rcpt in rcpts)
    assert set(per_recipient) == {f"r{i:05d}@example.com" for i in range(deployment.readers)}, "nobody is lost"
    duplicates = sum(n - 1 for n in per_recipient.values())
    assert duplicates <= bound, f"{duplicates} duplicates, more than the bound {bound}"
    ids: dict[str, set[str]] = {}
    for _, rcpts, content in recorder.messages:
        ids.setdefault(rcpts[0], set()).add(email.message_from_bytes(content, policy=policy.default)["Message-ID"])
    assert all(len(v) == 1 for v in ids.values()), "a copy sent again has the same Message-ID"
    assert deployment.statuses() == {"sent": deployment.readers}
    return duplicates


def test_workers_send_an_edition_once_each_and_finish_it(tmp_path, clock, smtp_server, broker) -> None:  # type: ignore[no-untyped-def]
    recorder, url = smtp_server
    deployment = Deployment(tmp_path, migrated_sqlite_url(tmp_path), url, broker, clock, readers=1200, rate=2000)
    try:
        for _ in range(2):
            deployment.start_worker()
        out = deployment.send()
        assert "queued 1200 in 3 batches for the workers" in out
        wait_until(deployment.edition_done, 120, interval=0.2,
                   message=f"the edition did not finish:\n{deployment.worker_logs()}")
        assert check_once_each(deployment, recorder, bound=0) == 0
        again = deployment.send()  # a finished run sends nothing more
        assert "already done 1200" in again and len(recorder.messages) == 1200
    finally:
        deployment.stop()


@pytest.mark.alone
@pytest.mark.postgres
def test_killed_workers_lose_nothing_and_send_again_at_most_what_they_held(tmp_path, clock, smtp_server, broker,  # type: ignore[no-untyped-def]
                                                                           postgres_url) -> None:
    """20,000 readers, 3 workers, 5 SIGKILLs at random points, a new worker started after each."""
    readers, kills = 20_000, 5
    recorder, url = smtp_server
    deployment = Deployment(tmp_path, postgres_url, url, broker, clock, readers=readers, rate=100_000)
    rng = random.Random(17)
    try:
        for _ in range(3):
            deployment.start_worker()
        deployment.send()
        marks = sorted(rng.sample(range(readers // 10, readers * 8 // 10), kills))
        killed = 0
        for mark in marks:
            wait_until(lambda: len(recorder.messages) >= mark, 300, interval=0.05,
                       message=f"sending stalled before {mark}:\n{deployment.worker_logs()}")
            victim = rng.choice([w for w in deployment.workers if w.poll() is None])
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed += 1
            deployment.start_worker()
        wait_until(deployment.edition_done, 300, interval=0.2,
                   message=f"the edition did not finish:\n{deployment.worker_logs()}")
        duplicates = check_once_each(deployment, recorder, bound=kills * CLAIM * THREADS)
        print(f"{killed} kills, {duplicates} duplicates of {readers}")
    finally:
        deployment.stop()


@pytest.mark.alone
def test_the_edition_completes_after_the_broker_comes_back(tmp_path, clock, smtp_server, broker) -> None:  # type: ignore[no-untyped-def]
    readers = 3000
    recorder, url = smtp_server
    deployment = Deployment(tmp_path, migrated_sqlite_url(tmp_path), url, broker, clock, readers=readers, rate=300)
    try:
        for _ in range(2):
            deployment.start_worker()
        deployment.send()
        wait_until(lambda: len(recorder.messages) >= readers // 4, 120, interval=0.05,
                   message=f"sending did not start:\n{deployment.worker_logs()}")
        rabbitmqctl("stop_app")
        try:
            stopped_at = len(recorder.messages)
        finally:
            rabbitmqctl("start_app")
        wait_until(deployment.edition_done, 300, interval=0.2,
                   message=f"the edition did not finish after the broker came back:\n{deployment.worker_logs()}")
        assert stopped_at < readers, "the broker went away mid-edition"
        # A worker cut off from the broker finishes the task it runs; its message goes to another worker, which
        # skips what the first holds or sent: nothing goes twice beyond what a kill could send again.
        check_once_each(deployment, recorder, bound=2 * THREADS * CLAIM)
    finally:
        deployment.stop()


@pytest.mark.alone
def test_three_workers_share_one_rate_limit(tmp_path, clock, smtp_server, broker) -> None:  # type: ignore[no-untyped-def]
    readers, rate = 600, 100
    recorder, url = smtp_server
    deployment = Deployment(tmp_path, migrated_sqlite_url(tmp_path), url, broker, clock, readers=readers, rate=rate)
    try:
        for _ in range(3):
            deployment.start_worker()
        deployment.send()
        wait_until(deployment.edition_done, 120, interval=0.2,
                   message=f"the edition did not finish:\n{deployment.worker_logs()}")
        check_once_each(deployment, recorder, bound=0)
        times = sorted(recorder.times)
        measured = (len(times) - 1) / (times[-1] - times[0])
        print(f"3 workers at a limit of {rate}/s: {measured:.1f}/s")
        assert measured <= rate * 1.05, f"{measured:.1f} messages a second, over the limit {rate}"
    finally:
        deployment.stop()


def test_a_paused_edition_stops_on_every_worker_and_a_resume_finishes_it(tmp_path, clock, smtp_server, broker) -> None:  # type: ignore[no-untyped-def]
    readers = 1500
    recorder, url = smtp_server
    deployment = Deployment(tmp_path, migrated_sqlite_url(tmp_path), url, broker, clock, readers=readers, rate=200)
    try:
        for _ in range(2):
            deployment.start_worker()
        deployment.send()
        wait_until(lambda: len(recorder.messages) >= 100, 120, interval=0.05,
                   message=f"sending did not start:\n{deployment.worker_logs()}")
        with deployment.services.engine.connect() as conn:
            edition_id = conn.execute(select(editions.c.id)).scalar_one()
        deployment.services.pause(edition_id)
        paused_at = len(recorder.messages)

        def settled() -> bool:  # every worker has seen the pause: nothing more arrives
            before = len(recorder.messages)
            time.sleep(0.5)
            return len(recorder.messages) == before
        wait_until(settled, 30, interval=0.1, message="the workers kept sending after the pause")
        stopped = len(recorder.messages)
        assert stopped < readers and stopped - paused_at <= 2 * THREADS * CLAIM, "the pause stopped the workers"
        assert deployment.statuses().get("queued", 0) == readers - stopped
        report = deployment.services.resume(edition_id)
        assert report.requeued >= 1, report.line()
        wait_until(deployment.edition_done, 120, interval=0.2,
                   message=f"the edition did not finish after the resume:\n{deployment.worker_logs()}")
        check_once_each(deployment, recorder, bound=0)
    finally:
        deployment.stop()


def test_source_polls_run_on_the_workers(tmp_path, clock, smtp_server, broker) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import DATA

    recorder, url = smtp_server
    deployment = Deployment(tmp_path, migrated_sqlite_url(tmp_path), url, broker, clock, readers=1, rate=100, extra=f"""
        [[sources]]
        name = "cms"
        kind = "jsonl"
        path = "{DATA / 'sources' / 'cms_export.jsonl'}"
        category = "economy"
        """)
    try:
        deployment.services.prepare_database(migrate=False)  # the source's row
        deployment.start_worker()
        spec = next(s for s in deployment.services.task_specs() if s.key == "ingest:cms")
        assert spec.run(clock()) == "cms: queued for a worker"  # the scheduler only enqueues

        def polled() -> bool:
            return any(s.name == "cms" and s.last_success_at is not None for s in deployment.services.store.sources())
        wait_until(polled, 60, interval=0.2, message=f"no worker polled the source:\n{deployment.worker_logs()}")
        assert len(deployment.services.store.articles(limit=50)) > 3
    finally:
        deployment.stop()


def test_check_names_the_queue_without_its_passwords(tmp_path) -> None:
    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path), extra="""
        [queue]
        url = "amqp://gazette:broker-secret@mq.example:5672/news"
        redis_url = "redis://:redis-secret@cache.example:6379/0"
        """)
    done = run_gazette(["--config", str(config), "check"], expect=0)
    assert "queue: amqp://gazette:***@mq.example:5672/news, batches of 1000" in done.stdout
    assert "shared state: redis://" in done.stdout and "secret" not in done.stdout


def test_a_worker_without_a_queue_stops_with_the_key_and_the_reason(tmp_path) -> None:
    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path))
    done = run_gazette(["--config", str(config), "worker"])
    assert done.returncode == 2 and "queue.url" in done.stderr


def test_a_queue_without_redis_stops_the_start(tmp_path) -> None:
    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path), extra="""
        [queue]
        url = "amqp://guest:guest@127.0.0.1:5672//"
        """)
    done = run_gazette(["--config", str(config), "check"])
    assert done.returncode == 2 and "queue.redis_url" in done.stderr and "rate limit" in done.stderr
