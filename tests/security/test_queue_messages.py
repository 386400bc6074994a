"""Messages off the broker are input: anyone who can publish to the queue can send a worker any arguments. A worker
drops what is not a batch id or a configured source, fetches nothing a message names, and never enqueues a
malformed message again (that would make one bad message a loop)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from feeds.core.work_queue import BATCH, INGEST, QUEUE
from newsletter.cli.worker import register_tasks
from newsletter.settings import load_settings
from tests.conftest import migrated_sqlite_url, write_config
from tests.test_queue import REDIS_URL, _rabbitmq_missing, virtual_host

pytestmark = pytest.mark.skipif(bool(_rabbitmq_missing()), reason=_rabbitmq_missing() or "")


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    """One virtual host for the module: nothing here may leave a message in it (each test checks)."""
    yield from virtual_host()


@pytest.fixture
def worker_app(tmp_path, clock, broker):  # type: ignore[no-untyped-def]
    import service

    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path), extra=f"""
        [queue]
        url = "{broker}"
        redis_url = "{REDIS_URL}"
        """)
    services = service.Components(load_settings(config, {}), clock=clock)
    services.prepare_database(migrate=False)
    app = services.work_queue.app
    register_tasks(app, services, "test-host:1:abcdef01")
    yield app, services
    services.close()


def waiting(app) -> int:  # type: ignore[no-untyped-def]
    with app.connection_for_write() as connection:
        return connection.default_channel.queue_declare(QUEUE, durable=True, auto_delete=False).message_count


@pytest.mark.parametrize("hostile", ["1; DROP TABLE deliveries", "../../etc/passwd", -1, 0, True, 1.5, None,
                                     {"id": 1}, [1, 2], "9" * 5000])
def test_a_malformed_batch_message_is_dropped_not_looped(worker_app, hostile) -> None:  # type: ignore[no-untyped-def]
    app, services = worker_app
    app.tasks[BATCH](hostile)
    assert waiting(app) == 0
    with services.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM deliveries").scalar() == 0


def test_an_unknown_batch_is_done_already(worker_app) -> None:  # type: ignore[no-untyped-def]
    app, services = worker_app
    assert services.run_batch(10_000, "test-host:1:abcdef01") == "done already"
    app.tasks[BATCH](10_000)
    assert waiting(app) == 0


@pytest.mark.parametrize("hostile", ["http://127.0.0.1:{port}/latest/meta-data/", "file:///etc/passwd",
                                     "ingest:cms\r\nX: y", "x" * 5000, 7, None])
def test_a_poll_message_fetches_only_a_configured_source(worker_app, hostile) -> None:  # type: ignore[no-untyped-def]
    import socket

    app, services = worker_app
    with socket.socket() as listener:  # where a fetch of the message's address would land
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        if isinstance(hostile, str):
            hostile = hostile.replace("{port}", str(listener.getsockname()[1]))
        app.tasks[INGEST](hostile)
        if isinstance(hostile, str) and len(hostile) <= 200:
            assert "skipped" in services.poll_queued(hostile)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    assert waiting(app) == 0
    assert all(s.last_checked_at is None for s in services.store.sources())
