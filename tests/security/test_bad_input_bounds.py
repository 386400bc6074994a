"""Class 8: bad input gets a 4xx with a message, never a 500 and never a stuck row.

Integers above 2^63 in ids and offsets raised OverflowError in the database driver (89 server errors in one
schemathesis run); an international address (`사용자@예시.한국`) gave a 500 on subscribe and left a pending row
blocked for an hour with no mail sent. Now ids are bounded before any query, and such addresses either go out end
to end (IDNA for the domain, SMTPUTF8 for the local part where the relay offers it) or are refused with a clear
message and nothing stored.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import Clock, SmtpRecorder, free_port
from tests.security.conftest import ADMIN, Gazette, running

HUGE = str(2**64)


def _cursor(key: object) -> str:
    """A cursor as a client could make one: JSON in URL-safe base64, whatever it holds."""
    text = key if isinstance(key, str) else json.dumps(key)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

DOMAIN = "예시.한국"
ASCII_DOMAIN = DOMAIN.encode("idna").decode("ascii")


@pytest.mark.parametrize(("method", "path", "statuses"), [
    ("GET", f"/api/subscribers?offset={HUGE}", {422}),
    ("GET", "/api/subscribers?offset=-1", {422}),
    ("GET", f"/api/subscribers/{HUGE}", {404}),
    ("GET", "/api/subscribers/²", {404}),
    ("DELETE", f"/api/subscribers/{HUGE}", {404}),
    ("GET", f"/api/editions/{HUGE}", {422}),
    ("GET", "/api/editions/1e3", {422}),
    ("GET", "/api/editions/1/deliveries?status=lost", {422}),
    ("GET", "/api/editions/1/deliveries?status=failed%00", {400, 422}),
    ("GET", "/api/editions/1/deliveries?status=FAILED", {422}),
    ("GET", f"/api/editions/1/deliveries?offset={HUGE}", {422}),
    ("GET", "/api/editions/1/deliveries?offset=-1", {422}),
    ("GET", "/api/editions/1/deliveries?limit=99999999999999999999", {422}),
    ("GET", "/api/editions/abc/deliveries", {422}),
    ("GET", f"/api/editions/{HUGE}/deliveries", {422}),
    ("GET", "/api/editions/1/deliveries?status=failed&offset=9223372036854775807", {422}),  # offset is gone
    # Cursors are the client's to change: every key part is checked before it reaches the database.
    ("GET", f"/api/subscribers?cursor={_cursor(['subscribers', 2**64])}", {422}),
    ("GET", f"/api/subscribers?cursor={_cursor(['subscribers', -2**64])}", {422}),
    ("GET", f"/api/subscribers?cursor={_cursor(['subscribers', True])}", {422}),
    ("GET", f"/api/subscribers?cursor={_cursor(['subscribers', 1.5])}", {422}),
    ("GET", f"/api/subscribers?cursor={_cursor(['subscribers', '1'])}", {422}),
    ("GET", f"/api/subscribers?cursor={_cursor(['subscribers'])}", {422}),
    ("GET", f"/api/subscribers?cursor={_cursor(['deliveries', 1])}", {422}),  # another list's
    ("GET", f"/api/subscribers?cursor={_cursor({'subscribers': 1})}", {422}),
    ("GET", f"/api/subscribers?cursor={_cursor('[' * 5000)}", {422}),
    ("GET", "/api/subscribers?cursor=%E2%82%AC%E2%82%AC", {422}),
    ("GET", "/api/subscribers?cursor=====", {422}),
    ("GET", "/api/subscribers?cursor=", {422}),
    ("GET", f"/api/subscribers?cursor={'A' * 513}", {422}),
    ("GET", f"/api/editions?cursor={_cursor(['editions', '2026-11-25T00:00:00', 1])}", {422}),  # no zone
    ("GET", f"/api/editions?cursor={_cursor(['editions', '25 Nov 2026', 1])}", {422}),
    ("GET", f"/api/editions?cursor={_cursor(['editions', '9999-12-31T23:59:59+00:00', 2**63 - 1])}", {200}),
    ("GET", f"/api/editions?cursor={_cursor(['editions', '0001-01-01T00:00:00+14:00', 1])}", {422}),  # before year 1
    ("GET", f"/api/editions?cursor={_cursor(['editions', '9999-12-31T23:59:59-14:00', 1])}", {422}),  # after 9999
    ("GET", f"/api/partners?cursor={_cursor(['partners', 'a' + chr(0) + 'b'])}", {422}),
    ("GET", f"/api/sources?cursor={_cursor(['sources', 'x' * 400])}", {422}),
    ("GET", f"/api/partners/portal/pushes?cursor={_cursor(['pushes', 2**63])}", {422}),
    ("GET", f"/api/editions/1/deliveries?cursor={_cursor(['deliveries', 2**63])}", {422}),
    ("GET", f"/api/alerts?cursor={_cursor(['alerts', '9999-12-31T23:59:59-14:00', 1])}", {422}),
    ("GET", f"/api/alerts?cursor={_cursor(['editions', '2026-11-25T00:00:00+09:00', 1])}", {422}),  # editions'
    ("DELETE", f"/api/partners/portal/keys/{HUGE}", {422}),
    ("GET", "/api/partners/portal/pushes?limit=99999999999999999999", {422}),
    ("GET", f"/archive/{HUGE}/x", {400, 404}),
    ("GET", "/api/subscribers/a%00b", {400}),
    ("GET", "/feeds/all.rss?x=%00", {400}),
    ("GET", "/v/%00.gif", {400}),
])
def test_out_of_range_ids_get_an_answer_not_a_server_error(gazette: Gazette, method: str, path: str,
                                                           statuses: set[int]) -> None:
    answer = gazette.client.request(method, path, headers=ADMIN)
    assert answer.status_code in statuses, (answer.status_code, answer.text[:300])
    if path.startswith("/api/") and answer.status_code >= 400:
        assert answer.headers["content-type"] == "application/problem+json" and answer.json()["detail"]


def test_an_archive_link_with_a_huge_edition(gazette: Gazette) -> None:
    subscriber = gazette.services.subscribers.add("kim@example.com", categories=["politics"], editions=["daily"],
                                                  now=gazette.clock(), confirmed=True, method="admin")[1]
    token = gazette.services.tokens.for_subscriber("preferences", subscriber.public_id)
    answer = gazette.client.get(f"/archive/{HUGE}/{token}")
    assert answer.status_code == 404 and "<html" in answer.text


@pytest.fixture
def ascii_relay(tmp_path: Path, clock: Clock, migrated_sqlite: Path) -> Iterator[Gazette]:
    """The app in front of a relay that does not offer SMTPUTF8 (the `gazette` fixture's does)."""
    from aiosmtpd.controller import Controller

    recorder = SmtpRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=False)
    controller.start()
    with running(tmp_path, recorder, f"smtp://127.0.0.1:{controller.port}", clock, migrated_sqlite) as site:
        yield site
    controller.stop()


def sign_up(site: Gazette, address: str):  # type: ignore[no-untyped-def]
    fields = site.form("/subscribe")
    return site.client.post("/subscribe", data={**fields, "email": address, "categories": ["politics"]})


@pytest.mark.parametrize("relay", ["gazette", "ascii_relay"])
def test_an_international_domain_goes_out_in_its_ascii_form(request: pytest.FixtureRequest, relay: str) -> None:
    site: Gazette = request.getfixturevalue(relay)
    answer = sign_up(site, f"reader@{DOMAIN}")
    assert answer.status_code == 200, answer.text
    [(_, rcpts, raw)] = site.smtp.messages
    assert rcpts == [f"reader@{ASCII_DOMAIN}"] and f"reader@{ASCII_DOMAIN}".encode() in raw
    assert site.services.subscribers.find(f"reader@{DOMAIN}").status == "pending"


def test_an_international_local_part_goes_out_with_smtputf8(gazette: Gazette) -> None:
    answer = sign_up(gazette, f"사용자@{DOMAIN}")
    assert answer.status_code == 200, answer.text
    [(_, rcpts, raw)] = gazette.smtp.messages
    assert rcpts == [f"사용자@{ASCII_DOMAIN}"] and "사용자@".encode() in raw


def test_an_international_local_part_without_smtputf8_is_refused_and_forgotten(ascii_relay: Gazette) -> None:
    answer = sign_up(ascii_relay, f"사용자@{DOMAIN}")
    assert answer.status_code == 400 and "메일을 보낼 수 없습니다" in answer.text
    assert ascii_relay.smtp.messages == []
    assert ascii_relay.services.subscribers.find(f"사용자@{DOMAIN}") is None  # nothing stored, nothing blocked
    assert ascii_relay.services.subscribers.list()[0] == 0
