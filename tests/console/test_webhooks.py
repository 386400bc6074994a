"""`/admin/webhooks` through the console as an admin uses it (httpx.ASGITransport, a logged-in session): add an
endpoint and see its secret once, send a test event to a real receiver on loopback and find it in the log, change
the events, see a failed test parked and retry it, rotate the secret, delete the endpoint."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Clock, SmtpRecorder
from tests.console.conftest import Console, console_over
from tests.test_webhooks import Receiver

PRIVATE = """
[webhooks]
allow_private_network = true
"""


@pytest.fixture
def hooked(tmp_path: Path, smtp_server: tuple[SmtpRecorder, str], clock: Clock,
           migrated_sqlite: Path) -> Iterator[Console]:
    """The console whose operator lets webhooks reach loopback (the receiver runs there)."""
    smtp, smtp_url = smtp_server
    with console_over(tmp_path, smtp, clock, migrated_sqlite, mail_url=smtp_url, extra=PRIVATE) as site:
        yield site


def secret_on(page: str) -> str:
    value = re.search(r'<input type="text" readonly value="([^"]+)" id="new-secret"', page)
    assert value, "no secret on the page"
    return html.unescape(value[1])


def test_add_test_edit_retry_rotate_delete(hooked: Console) -> None:
    admin = hooked.login("admin")
    store = hooked.services.webhooks
    codes = iter([204, 500])
    with Receiver(lambda n: next(codes, 204)) as crm:
        listing = admin.client.get("/admin/webhooks")
        assert listing.status_code == 200 and 'href="/admin/webhooks"' in listing.text  # in the admin's navigation
        made = admin.post("/admin/webhooks", {"name": "편집국 CRM", "url": crm.url,
                                              "events": ["subscriber.confirmed", "edition.sent"], "is_active": "on"})
        assert made.status_code == 201 and made.headers["cache-control"] == "no-store"
        [endpoint] = store.endpoints()
        crm.secret = secret_on(made.text)
        assert crm.secret == endpoint.secret and endpoint.events == ("subscriber.confirmed", "edition.sent")
        page = admin.client.get(f"/admin/webhooks/{endpoint.id}")
        assert page.status_code == 200 and crm.secret not in page.text and "편집국 CRM" in page.text

        sent = admin.post(f"/admin/webhooks/{endpoint.id}/test")
        assert sent.status_code == 303 and "console_flash_webhook_test_delivered" in sent.headers["location"]
        shown = admin.client.get(sent.headers["location"]).text
        assert "테스트 이벤트가 전달되었습니다." in shown and "webhook.test" in shown and ">204<" in shown
        assert crm.bad == 0 and crm.taken()[0]["type"] == "webhook.test"

        edited = admin.post(f"/admin/webhooks/{endpoint.id}", {"name": "편집국 CRM", "url": crm.url,
                                                               "events": ["edition.sent"], "is_active": "on"})
        assert edited.status_code == 303
        assert store.endpoint(endpoint.id).events == ("edition.sent",)
        refused = admin.post(f"/admin/webhooks/{endpoint.id}", {"name": "x", "url": "ftp://crm.example.com/",
                                                                "events": ["edition.sent"]})
        assert refused.status_code == 422 and "only http and https" in refused.text
        assert store.endpoint(endpoint.id).url == crm.url

        failed = admin.post(f"/admin/webhooks/{endpoint.id}/test")
        assert "console_flash_webhook_test_failed" in failed.headers["location"]
        [parked] = store.deliveries(endpoint.id, "parked")
        shown = admin.client.get(failed.headers["location"]).text
        assert "HTTP 500" in shown and f"/deliveries/{parked.delivery_id}/retry" in shown
        retried = admin.post(f"/admin/webhooks/{endpoint.id}/deliveries/{parked.delivery_id}/retry")
        assert retried.status_code == 303 and store.deliveries(endpoint.id, "parked") == []

        rotated = admin.post(f"/admin/webhooks/{endpoint.id}/secret")
        assert rotated.status_code == 201
        fresh = secret_on(rotated.text)
        assert fresh != crm.secret and fresh == store.endpoint(endpoint.id).secret

    audit = hooked.services.audit.entries(action="webhook.")
    assert {e.action for e in audit} == {"webhook.create", "webhook.test", "webhook.update", "webhook.retry",
                                         "webhook.secret_rotate"}
    assert all(crm.secret not in str(e.after) + str(e.before) and fresh not in str(e.after) for e in audit)
    assert admin.post(f"/admin/webhooks/{endpoint.id}/delete").status_code == 303
    assert store.endpoints() == []
    assert admin.client.get(f"/admin/webhooks/{endpoint.id}").status_code == 404
