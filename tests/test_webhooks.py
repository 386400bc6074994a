"""Webhooks for the newsroom's own systems: a real receiver on loopback checks every signature; events reach each
endpoint that wants them once (retried after failures, parked after the last attempt, never sent by two workers);
the audience events are recorded where they happen (a confirmation through the pages, a one-click unsubscribe, a
complaint, an edition run, an erasure) and delivered; the admin API lists, pages, retries and tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Callable
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import pytest

from feeds import events
from feeds.errors import InvalidValue
from feeds.events import AUDIENCE_EVENTS, EventLog
from feeds.push import PushPolicy, is_signed
from feeds.webhook_worker import WebhookSender, WebhookWorker
from feeds.webhooks import check_events, check_url
from newsletter.settings import load_settings
from tests.conftest import (
    NOW,
    ROOT,
    Clock,
    InProcessClient,
    filled,
    free_port,
    write_config,
)
from tests.test_store import make_article
from tests.test_subscribers import ONE_CLICK, confirm, link_in

ADMIN = {"Authorization": "Bearer admin-token-0123456789"}
CONFIG = """
[admin]
token = "admin-token-0123456789"

[feeds]
refresh = "1h"

[webhooks]
allow_private_network = true
max_attempts = 3

[digests.daily]
schedule = "0 7 * * *"
"""


class Receiver:
    """A newsroom system's endpoint on 127.0.0.1: checks each signature with `secret` and answers what `answer`
    says for the n-th call (a status, or a status and headers)."""

    def __init__(self, answer: Callable[[int], int | tuple[int, dict[str, str]]] = lambda n: 204,
                 body: bytes = b"") -> None:
        self.secret = ""
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.bad = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                if not is_signed(receiver.secret, raw, self.headers.get("X-Gazette-Signature")):
                    receiver.bad += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                receiver.calls.append((dict(self.headers), raw))
                found = answer(len(receiver.calls))
                status, headers = found if isinstance(found, tuple) else (found, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def taken(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for _, raw in self.calls]

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def worker(services: Any, clock: Clock, *, is_leader: bool = True, attempts: int = 3) -> WebhookWorker:
    sender = WebhookSender(services.webhooks, services.store, user_agent="Gazette test", allow_private_network=True,
                           policy=PushPolicy(max_attempts=attempts, first_delay=timedelta(seconds=10), timeout=5),
                           clock=clock)
    return WebhookWorker(services.webhooks, sender, clock, is_leader=lambda: is_leader, interval=timedelta(hours=1))


def components(tmp_path: Path, database_url: str, clock: Clock, mail_url: str = "maildir://var/outbox") -> Any:
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url, mail_url=mail_url,
                                          extra=CONFIG), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    return services


# --- pure rules -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("case", "url", "private", "problem"), [
    ("https", "https://crm.example.com/hooks", False, None),
    ("http with a port", "http://crm.example.com:8080/x?y=1", False, None),
    ("a name, checked on connection", "http://localhost:9/x", False, None),
    ("loopback when the operator allows it", "http://127.0.0.1:9/x", True, None),
    ("loopback literal", "http://127.0.0.1:9/x", False, "not public"),
    ("private literal", "http://10.1.2.3/x", False, "not public"),
    ("metadata address", "http://169.254.169.254/latest", False, "not public"),
    ("IPv6 loopback", "http://[::1]/x", False, "not public"),
    ("IPv4-mapped loopback", "http://[::ffff:127.0.0.1]/x", False, "not public"),
    ("userinfo", "https://user:pw@crm.example.com/x", False, "no user name"),
    ("user only", "https://user@crm.example.com/x", False, "no user name"),
    ("ftp", "ftp://crm.example.com/x", False, "only http"),
    ("file", "file:///etc/passwd", False, "only http"),
    ("javascript", "javascript:alert(1)", False, "only http"),
    ("no host", "http:///x", False, "no host"),
    ("a space", "https://crm.example.com/a b", False, "without spaces"),
    ("a newline", "https://crm.example.com/\r\nX-Injected: 1", False, "without spaces"),
    ("too long", "https://crm.example.com/" + "a" * 2000, False, "at most"),
    ("a bad port", "https://crm.example.com:99999/", False, "url:"),
])
def test_check_url(case: str, url: str, private: bool, problem: str | None) -> None:
    if problem is None:
        assert check_url(url, allow_private_network=private) == url
    else:
        with pytest.raises(InvalidValue, match=problem):
            check_url(url, allow_private_network=private)


def test_check_events_keeps_the_logs_order_and_refuses_the_unknown() -> None:
    assert check_events(["edition.sent", "article.published", "edition.sent"]) == ("article.published", "edition.sent")
    for bad in ([], ["webhook.test"], ["article.published", "x" * 1000], "article.published"):
        with pytest.raises(InvalidValue):
            check_events(bad)  # type: ignore[arg-type]


# --- the worker -----------------------------------------------------------------------------------------------------

def test_each_event_reaches_each_endpoint_once_signed_retried_then_parked(tmp_path, database_url, clock) -> None:  # type: ignore[no-untyped-def]
    import service

    services = components(tmp_path, database_url, clock)
    hooks = services.webhooks
    services.store.upsert_articles([make_article(1)], source_id=None, now=NOW)  # history: before any endpoint
    with Receiver(lambda n: 500 if n <= 2 else 204) as crm, Receiver() as other:
        endpoint = hooks.create("CRM", crm.url, ["article.published", "article.updated"], allow_private_network=True,
                                now=NOW, by="test")
        crm.secret = endpoint.secret
        dead = hooks.create("닫힌곳", f"http://127.0.0.1:{free_port()}/x", ["article.published"],
                            allow_private_network=True, now=NOW, by="test")
        audience = hooks.create("audience", other.url, list(AUDIENCE_EVENTS), allow_private_network=True, now=NOW,
                                by="test")
        other.secret = audience.secret
        clock.now = NOW + timedelta(minutes=1)
        services.store.upsert_articles([make_article(2), make_article(3)], source_id=None, now=clock.now)

        follower, leader, second = worker(services, clock, is_leader=False), worker(services, clock), worker(services, clock)
        assert follower.step().queued == 0 and crm.calls == []  # only the process that speaks delivers
        first = leader.step()
        assert (first.queued, first.delivered, first.failed) == (4, 0, 4)  # two each for the CRM and the dead one
        assert second.step().delivered == 0 and len(crm.calls) == 2  # nothing due: backing off
        clock.now += timedelta(seconds=10)
        assert second.step().delivered == 2  # another worker takes over the retries: the same rows
        clock.now += timedelta(seconds=20)
        assert leader.step().parked == 2  # the dead endpoint's third attempt
        clock.now += timedelta(hours=1)
        assert (leader.step(), second.step()) == (type(first)(), type(first)())

        assert crm.bad == 0 and len(crm.calls) == 4
        ids = [headers["X-Gazette-Delivery"] for headers, _ in crm.calls]
        assert ids[0] in ids[2:] and ids[1] in ids[2:] and len(set(ids)) == 2  # a retry keeps its delivery id
        bodies = crm.taken()[2:]
        assert sorted(b["subject"] for b in bodies) == sorted([make_article(2).id, make_article(3).id])  # each once, no history
        body = next(b for b in bodies if b["subject"] == make_article(2).id)
        headers = next(h for h, raw in crm.calls[2:] if json.loads(raw) == body)
        assert body["id"] == headers["X-Gazette-Delivery"] and headers["X-Gazette-Event"] == "article.published"
        assert headers["Content-Type"] == "application/json; charset=utf-8"
        assert body["type"] == "article.published" and body["occurred_at"].startswith("2026-")
        assert body["article"] == {"id": make_article(2).id, "url": "https://news.example.com/2",
                                   "title": make_article(2).title, "status": "live"}
        assert other.calls == [] and hooks.counts(audience.id) == {"pending": 0, "delivered": 0, "parked": 0}

        changed = make_article(2)
        services.store.upsert_articles([type(changed)(**{**vars(changed), "title": "고친 제목",
                                                         "content_hash": "changed"})], source_id=None, now=clock.now)
        assert leader.step().delivered == 1
        update = crm.taken()[-1]
        assert (update["type"], update["data"], update["article"]["title"]) == ("article.updated", {"revision": 2},
                                                                                 "고친 제목")

    with InProcessClient(service.create_app(services)) as client:
        parked = client.get(f"/api/webhooks/{dead.id}/deliveries?status=parked&limit=1", headers=ADMIN).json()
        assert len(parked["items"]) == 1 and parked["next_cursor"]
        rest = client.get(f"/api/webhooks/{dead.id}/deliveries?status=parked&limit=1&cursor={parked['next_cursor']}",
                          headers=ADMIN).json()
        assert len(rest["items"]) == 1 and rest["next_cursor"] is None
        assert {d["delivery_id"] for d in parked["items"] + rest["items"]} == {
            d.delivery_id for d in hooks.deliveries(dead.id, "parked")}
        assert all(d["attempts"] == 3 and d["last_error"].startswith("ConnectError") for d in rest["items"])
        again = client.post(f"/api/webhooks/{dead.id}/deliveries/{rest['items'][0]['delivery_id']}/retry", headers=ADMIN)
        assert again.status_code == 200 and (again.json()["status"], again.json()["attempts"]) == ("pending", 0)
        assert client.post(f"/api/webhooks/{dead.id}/deliveries/nope/retry", headers=ADMIN).status_code == 404
        figures = client.get("/metrics", headers=ADMIN).text
        assert 'gazette_webhook_deliveries{status="parked"} 1.0' in figures
        assert 'gazette_webhook_deliveries{status="delivered"} 3.0' in figures
        listed = client.get("/api/webhooks", headers=ADMIN).json()["items"]
        assert [w["deliveries"] for w in listed][:2] == [{"pending": 0, "delivered": 3, "parked": 0},
                                                         {"pending": 1, "delivered": 0, "parked": 1}]
    services.close()


def test_two_workers_at_once_send_each_event_once(tmp_path, database_url, clock) -> None:  # type: ignore[no-untyped-def]
    services = components(tmp_path, database_url, clock)
    with Receiver() as crm:
        endpoint = services.webhooks.create("CRM", crm.url, ["article.published"], allow_private_network=True,
                                            now=NOW, by="test")
        crm.secret = endpoint.secret
        services.store.upsert_articles([make_article(n) for n in range(1, 31)], source_id=None, now=NOW)
        workers = [worker(services, clock) for _ in range(3)]
        start = threading.Barrier(len(workers))

        def run(w: WebhookWorker) -> None:
            start.wait()
            w.step()

        threads = [threading.Thread(target=run, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        ids = [headers["X-Gazette-Delivery"] for headers, _ in crm.calls]
        assert crm.bad == 0 and len(ids) == 30 and len(set(ids)) == 30
        assert sorted(b["subject"] for b in crm.taken()) == sorted(make_article(n).id for n in range(1, 31))
        assert services.webhooks.counts(endpoint.id)["delivered"] == 30
    services.close()


# --- the audience events, where they happen -------------------------------------------------------------------------

def sign_up(client: InProcessClient, smtp: Any, address: str) -> None:
    data = {**filled(client.get("/subscribe").text), "email": address, "categories": ["economy"], "editions": ["daily"]}
    assert client.post("/subscribe", data=data).status_code == 200
    assert confirm(client, link_in(smtp.to(address)[-1], "confirm")).status_code == 200


def test_audience_events_are_recorded_where_they_happen_and_delivered(tmp_path, database_url, smtp_server,  # type: ignore[no-untyped-def]
                                                                       clock) -> None:
    import service

    smtp, smtp_url = smtp_server
    services = components(tmp_path, database_url, clock, mail_url=smtp_url)
    services.store.upsert_articles([make_article(1, category="economy", published_at=NOW - timedelta(hours=1))],
                                   source_id=None, now=NOW)
    log = EventLog(services.engine)
    with Receiver() as crm, InProcessClient(service.create_app(services)) as client:
        made = client.post("/api/webhooks", headers=ADMIN, json={"name": "CRM", "url": crm.url,
                                                                 "events": list(AUDIENCE_EVENTS)})
        assert made.status_code == 201, made.text
        crm.secret = made.json()["secret"]
        hook_id = made.json()["endpoint"]["id"]

        for address in ("kim@example.com", "lee@example.com", "park@example.com"):
            sign_up(client, smtp, address)
        kim, lee, park = (services.subscribers.find(a) for a in ("kim@example.com", "lee@example.com",
                                                                  "park@example.com"))
        assert [e.type for e in log.after(0, AUDIENCE_EVENTS)] == ["subscriber.confirmed"] * 3
        assert confirm(client, link_in(smtp.to("kim@example.com")[0], "confirm")).status_code in (200, 410)
        assert len(log.after(0, AUDIENCE_EVENTS)) == 3  # a link used again records nothing

        unsubscribe = services.tokens.for_subscriber("unsubscribe", kim.public_id)
        assert client.post(f"/unsubscribe/{unsubscribe}", data=ONE_CLICK).status_code == 200
        assert client.post(f"/unsubscribe/{unsubscribe}", data=ONE_CLICK).status_code == 200  # once in the log
        complaint = client.post("/api/bounces", headers=ADMIN, json=[{"email": "lee@example.com", "type": "complaint"}])
        assert complaint.status_code == 200, complaint.text
        report = services.send("daily", NOW, everyone=True)
        assert report.sent == 1
        services.send("daily", NOW, everyone=True)  # the same run again: done already, not told twice
        assert client.delete(f"/api/subscribers/{park.id}", headers=ADMIN).status_code == 204

        logged = log.after(0, AUDIENCE_EVENTS)
        assert [(e.type, e.subject) for e in logged] == [
            ("subscriber.confirmed", str(kim.id)), ("subscriber.confirmed", str(lee.id)),
            ("subscriber.confirmed", str(park.id)), ("subscriber.unsubscribed", str(kim.id)),
            ("subscriber.bounced", str(lee.id)), ("edition.sent", logged[5].subject),
            ("subscriber.unsubscribed", str(park.id))]
        assert "email" not in logged[2].data  # the erased reader's address left the log with them

        assert worker(services, clock).step().delivered == 7
        bodies = {(b["type"], b["subject"]): b for b in crm.taken()}
        assert crm.bad == 0 and len(crm.calls) == 7
        confirmed = bodies[("subscriber.confirmed", str(kim.id))]["data"]
        assert confirmed == {"subscriber_id": kim.id, "email": "kim@example.com", "editions": ["daily"],
                             "categories": ["economy"], "language": "ko", "via": "confirmation"}
        assert bodies[("subscriber.unsubscribed", str(kim.id))]["data"]["via"] == "link"
        assert bodies[("subscriber.bounced", str(lee.id))]["data"]["reason"] == "complained"
        sent = bodies[("edition.sent", logged[5].subject)]["data"]
        assert (sent["edition"], sent["counts"]["sent"], sent["recipients"], sent["is_alert"]) == ("daily", 1, 1, False)
        erased = bodies[("subscriber.unsubscribed", str(park.id))]["data"]
        assert erased["via"] == "erased" and "email" not in erased
        assert "park@example.com" not in json.dumps(bodies[("subscriber.confirmed", str(park.id))])
        for _, raw in crm.calls:  # never a token or a secret
            assert b"token" not in raw and crm.secret.encode() not in raw and unsubscribe.encode() not in raw

        test = client.post(f"/api/webhooks/{hook_id}/test", headers=ADMIN)
        assert test.status_code == 200 and (test.json()["status"], test.json()["response_status"]) == ("delivered", 204)
        assert crm.taken()[-1]["type"] == "webhook.test" and crm.calls[-1][0]["X-Gazette-Event"] == "webhook.test"
    services.close()


def test_an_endpoint_added_or_given_new_events_gets_no_history(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import migrated_sqlite_url

    services = components(tmp_path, migrated_sqlite_url(tmp_path), clock)
    hooks = services.webhooks
    services.store.upsert_articles([make_article(1)], source_id=None, now=NOW)
    with Receiver() as crm:
        endpoint = hooks.create("CRM", crm.url, ["edition.sent"], allow_private_network=True, now=NOW, by="t")
        crm.secret = endpoint.secret
        services.store.upsert_articles([make_article(2)], source_id=None, now=NOW)
        with services.engine.begin() as conn:  # owed to its old type, not yet fanned out when the edit comes
            events.record(conn, "edition.sent", "7", NOW, {"edition": "daily"})
        hooks.update(endpoint.id, {"events": ["article.published", "edition.sent"]}, allow_private_network=True,
                     now=NOW)
        services.store.upsert_articles([make_article(3)], source_id=None, now=NOW)
        worker(services, clock).step()
        assert [b["subject"] for b in crm.taken()] == ["7", make_article(3).id]  # article 2: before the new type
        hooks.update(endpoint.id, {"is_active": False}, allow_private_network=True, now=NOW)
        services.store.upsert_articles([make_article(4)], source_id=None, now=NOW)
        assert worker(services, clock).step().queued == 0 and len(crm.calls) == 2
        hooks.update(endpoint.id, {"is_active": True}, allow_private_network=True, now=NOW)
        assert worker(services, clock).step().queued == 0  # switched on again: no backlog of the time it was off
        services.store.upsert_articles([make_article(5)], source_id=None, now=NOW)
        worker(services, clock).step()
        assert [b["subject"] for b in crm.taken()] == ["7", make_article(3).id, make_article(5).id]
    services.close()


def test_the_signature_is_what_the_docs_say(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    """docs/webhooks.md's receiver check, over the bytes a receiver gets."""
    from tests.conftest import migrated_sqlite_url

    services = components(tmp_path, migrated_sqlite_url(tmp_path), clock)
    with Receiver() as crm:
        endpoint = services.webhooks.create("CRM", crm.url, ["article.published"], allow_private_network=True,
                                            now=NOW, by="t")
        crm.secret = endpoint.secret
        delivery = services.webhook_sender.send_now(endpoint, services.webhooks.add_test(endpoint, NOW))
        assert delivery.status == "delivered"
        headers, raw = crm.calls[0]
        expected = "sha256=" + hmac.new(endpoint.secret.encode(), raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Gazette-Signature"], expected)
        block = re.search(r"```python\n(.*?)```", (ROOT / "docs" / "webhooks.md").read_text(encoding="utf-8"), re.DOTALL)
        assert block, "docs/webhooks.md has no Python example"
        namespace: dict[str, Any] = {}
        exec(block[1], namespace)  # noqa: S102  (our own documentation's example)
        check = namespace["is_from_gazette"]
        assert check(endpoint.secret, raw, headers["X-Gazette-Signature"])
        assert not check(endpoint.secret, raw + b" ", headers["X-Gazette-Signature"])
        assert not check("whsec_other", raw, headers["X-Gazette-Signature"]) and not check(endpoint.secret, raw, None)
    services.close()


def test_a_correction_and_a_kill_reach_the_newsroom_with_the_articles_state(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    from feeds.article_life import ArticleLife
    from tests.conftest import migrated_sqlite_url

    services = components(tmp_path, migrated_sqlite_url(tmp_path), clock)
    with Receiver() as cms:
        endpoint = services.webhooks.create("CMS", cms.url, ["article.corrected", "article.killed"],
                                            allow_private_network=True, now=NOW, by="t")
        cms.secret = endpoint.secret
        story = make_article(1)
        services.store.upsert_articles([story], source_id=None, now=NOW)
        life = ArticleLife(services.engine)
        life.correct(story.id, "이름 철자를 바로잡았습니다.", by="desk@example.com", now=NOW)
        life.kill(story.id, "법원 결정", now=NOW + timedelta(minutes=1))
        assert worker(services, clock).step().delivered == 2
        corrected, killed = cms.taken()
        assert (corrected["type"], corrected["data"]["note"]) == ("article.corrected", "이름 철자를 바로잡았습니다.")
        assert (killed["type"], killed["data"]["reason"], killed["article"]["status"]) == (
            "article.killed", "법원 결정", "killed")
        assert corrected["article"]["status"] == "killed"  # the article as it is when sent, not as it was
    services.close()

