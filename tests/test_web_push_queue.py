"""[push] with [queue]: an alert's pushes run as a `gazette.alert.push` task on a `gazette worker` process (a real
RabbitMQ, a real Redis for the shared push rate), reaching each browser once through the loopback push service,
while the mail goes out from the sending process."""

from __future__ import annotations

import pytest

from newsletter.alerts import AlertDraft
from newsletter.push_subscriptions import parse_subscription
from tests.conftest import NOW, wait_until
from tests.push_service import LoopbackPushService
from tests.test_queue import Deployment, _rabbitmq_missing, broker  # noqa: F401 (the broker fixture)
from tests.test_web_push import SUBJECT, push_config

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(_rabbitmq_missing()), reason=_rabbitmq_missing() or "")]


def test_a_worker_pushes_the_alert_once_to_each_browser(tmp_path, clock, smtp_server, broker) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    recorder, url = smtp_server
    section, public = push_config(tmp_path, admin=False)
    deployment = Deployment(tmp_path, f"sqlite:///{tmp_path / 'g.db'}", url, broker, clock, readers=1, rate=100,
                            extra=section)
    services = deployment.services
    services.subscribers.add("alerts@example.com", categories=["economy"], editions=["alerts"], now=NOW,
                             confirmed=True, method="admin", consent_text="given elsewhere")
    try:
        with LoopbackPushService(public, SUBJECT) as push_service:
            browsers = [push_service.browser(name) for name in ("a", "b")]
            for browser in browsers:
                services.push_store.subscribe(parse_subscription({"subscription": browser.subscription()},
                                                                 categories=["politics", "economy"],
                                                                 languages=("ko", "en"), allow_insecure=True), NOW)
            deployment.start_worker()
            alert = services.alerts.create(AlertDraft(subject="속보", text="본문"), created_by=None)
            services.alerts.send(alert.id)  # the mail here; the pushes put on the queue
            wait_until(lambda: all(push_service.messages(n) for n in ("a", "b")), timeout=90,
                       message="the worker did not push: " + deployment.worker_logs())
            wait_until(lambda: f"alert {alert.id}: 2 pushed" in deployment.worker_logs(), timeout=60,
                       message="the first task did not end: " + deployment.worker_logs())  # its lease released
            assert services.push_store.counts(alert.id) == {"sent": 2}
            services.alerts.send(alert.id)  # again: the second task finds nothing left to push
            wait_until(lambda: f"alert {alert.id}: 0 pushed" in deployment.worker_logs(), timeout=60,
                       message="the second task did not run: " + deployment.worker_logs())
            assert [len(push_service.messages(n)) for n in ("a", "b")] == [1, 1] and push_service.refusals == []
            assert len(recorder.to("alerts@example.com")) == 1
    finally:
        deployment.stop()
