"""Delivering webhooks: `WebhookSender` (one signed POST of one delivery, its body made from the event log) and
`WebhookWorker` (each round: fan the log out into delivery rows, then claim and send the due ones), as described in
`feeds.webhooks`, whose store and rules they use.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from . import db
from .core.loops import BackgroundLoop
from .events import ARTICLE_EVENTS
from .outbound import guarded_transport
from .push import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    PushPolicy,
    backoff,
    sign,
)
from .store import ArticleStore
from .webhooks import (
    RESPONSE_KEPT,
    TEST_EVENT,
    Attempt,
    Delivery,
    Endpoint,
    WebhookStore,
)

log = logging.getLogger(__name__)


def event_body(delivery_id: str, type: str, occurred_at: datetime, subject: str, data: dict[str, Any],
               article: dict[str, Any] | None = None) -> bytes:
    """What a receiver gets: the delivery's id, the event and its data, and for an article event the article's id,
    URL, title and status (None if it is gone)."""
    body: dict[str, Any] = {"id": delivery_id, "type": type, "occurred_at": occurred_at.isoformat(),
                            "subject": subject, "data": data}
    if type in ARTICLE_EVENTS:
        body["article"] = article
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")



class WebhookSender:
    """One signed POST of one delivery: the body made from the log, no redirect followed, the answer's first bytes
    read, the address checked on connection."""

    def __init__(self, store: WebhookStore, articles: ArticleStore, *, user_agent: str, allow_private_network: bool,
                 policy: PushPolicy, clock: Callable[[], datetime]) -> None:
        self._store, self._articles, self.policy, self._clock = store, articles, policy, clock
        self._client = httpx.Client(timeout=policy.timeout, follow_redirects=False, headers={"User-Agent": user_agent},
                                    transport=guarded_transport(allow_private_network))

    def close(self) -> None:
        self._client.close()

    def body(self, delivery: Delivery) -> bytes | Attempt:
        if delivery.event_id is None:
            return event_body(delivery.delivery_id, TEST_EVENT, delivery.created_at, "test",
                              {"message": "A test event from Gazette: your endpoint is reached and can check the "
                                          "signature."})
        ev = db.events
        with self._store.engine.connect() as conn:
            row = conn.execute(select(ev).where(ev.c.id == delivery.event_id)).first()
        if row is None:
            return Attempt("the event is no longer in the log")
        article = None
        if row.type in ARTICLE_EVENTS:
            stored = self._articles.article(row.subject)
            if stored is not None:
                article = {"id": stored.id, "url": stored.url, "title": stored.title, "status": stored.status}
        return event_body(delivery.delivery_id, row.type, row.occurred_at, row.subject, dict(row.data or {}), article)

    def send(self, endpoint: Endpoint, delivery: Delivery) -> Attempt:
        body = self.body(delivery)
        if isinstance(body, Attempt):
            return body
        headers = {"Content-Type": "application/json; charset=utf-8", DELIVERY_HEADER: delivery.delivery_id,
                   EVENT_HEADER: delivery.event, SIGNATURE_HEADER: sign(endpoint.secret, body)}
        try:
            with self._client.stream("POST", endpoint.url, content=body, headers=headers) as response:
                if 200 <= response.status_code < 300:
                    return Attempt(None, response.status_code)
                head = b""
                for chunk in response.iter_bytes(RESPONSE_KEPT):
                    head = chunk[:RESPONSE_KEPT]
                    break  # a huge answer is never read whole
        except httpx.HTTPError as exc:
            reason = str(exc)
            if "may not reach" in reason:  # the outbound guard's words are for sources; say whose switch it is
                reason = reason.split(", which")[0] + ": not public, and [webhooks] allow_private_network is off"
            return Attempt(f"{type(exc).__name__}: {reason}"[:500])
        note = f" (redirect to {response.headers.get('location', '')[:200]!r} not followed)" \
            if response.is_redirect else ""
        return Attempt(f"HTTP {response.status_code}{note}: {head.decode('utf-8', 'replace')}", response.status_code)

    def send_now(self, endpoint: Endpoint, delivery: Delivery) -> Delivery:
        """An admin's test: one attempt at once; a failure is parked for the admin to see (and retry)."""
        attempt = self.send(endpoint, delivery)
        return self._store.finished(delivery, attempt, self._clock(), None)

    def attempt(self, endpoint: Endpoint, delivery: Delivery) -> Delivery:
        """The worker's attempt: delivered, or retried after `backoff`, or parked after `max_attempts`."""
        attempt = self.send(endpoint, delivery)
        now = self._clock()
        attempts = delivery.attempts + 1
        retry_at = None if attempts >= self.policy.max_attempts else now + backoff(self.policy, attempts)
        if attempt.error is not None:
            log.warning("webhook %s (%s) to endpoint %d failed (attempt %d): %s", delivery.delivery_id,
                        delivery.event, endpoint.id, attempts, attempt.error)
        return self._store.finished(delivery, attempt, now, retry_at)


@dataclass(frozen=True)
class WebhookRound:
    queued: int = 0
    delivered: int = 0
    failed: int = 0
    parked: int = 0


class WebhookWorker:
    """Fans out and delivers every `interval`, in a thread, when `is_leader()`."""

    def __init__(self, store: WebhookStore, sender: WebhookSender, clock: Callable[[], datetime], *,
                 is_leader: Callable[[], bool], interval: timedelta) -> None:
        self._store, self._sender, self._clock, self._is_leader = store, sender, clock, is_leader
        self._loop = BackgroundLoop("gazette-webhooks", self.step, interval, failure="delivering webhooks failed",
                                    logger=log)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop(timeout=self._sender.policy.timeout + 5)  # a POST under way ends within its timeout

    def step(self) -> WebhookRound:
        if not self._is_leader():
            return WebhookRound()
        active = {e.id: e for e in self._store.endpoints() if e.is_active}
        if not active:
            return WebhookRound()
        queued = sum(self._store.fan_out(e, self._clock()) for e in active.values())
        counts = {"delivered": 0, "failed": 0, "parked": 0}
        policy = self._sender.policy
        for delivery in self._store.due(self._clock(), list(active), policy.batch):
            if self._loop.is_stopping:
                break
            now = self._clock()
            if not self._store.claim(delivery, now, now + policy.claim):
                continue
            done = self._sender.attempt(active[delivery.endpoint_id], delivery)
            counts["delivered" if done.status == "delivered" else "failed"] += 1
            counts["parked"] += done.status == "parked"
        return WebhookRound(queued, **counts)


def webhook_policy(max_attempts: int) -> PushPolicy:
    return replace(PushPolicy(), max_attempts=max_attempts)
