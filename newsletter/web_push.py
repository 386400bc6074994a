"""Breaking alerts by Web Push: each subscription that follows the alert gets it once, encrypted to its browser.

A push is a POST to the subscription's endpoint (RFC 8030) carrying the alert as JSON (`alert_payload`: title, body,
url, tag), encrypted to the browser's keys with aes128gcm (RFC 8291, through pywebpush/http_ece) and signed with
Gazette's VAPID key (RFC 8292: an ES256 JWT whose `aud` is the endpoint's origin). `Topic` and the notification's
`tag` are the alert's, so a push repeated after a crash replaces the first at the push service and on the screen.

`deliver_alert` is the run, the same rules as the mail's: the ledger (`PushStore.record`) writes each push `queued`
before the POST and its outcome after, under the lease `push:<alert id>`, so a second run (the due job, a resume,
another process) reaches nobody twice; the rate gate spaces the POSTs; 404 and 410 (the browser left) remove the
subscription; 429, 5xx and dropped connections are tried again `[push] retries` times, `retry_delay` doubled, by the
`push:due` job; an alert with advertising is held for a subscription in its night (21:00-08:00 on its clock, §50)
until 08:00, then sent by the same job. Connections go through `feeds.outbound.guarded_transport`: an endpoint whose
name resolves to a private address is refused at connect time (unless `allow_insecure_endpoints`).

    alert_payload   an alert -> the JSON a notification shows, within a push message's size
    PushSender      encrypt, sign and POST one push -> PushOutcome
    AlertPush       what the alert desk calls: `deliver` (now, here), `counts`, `due`
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from feeds.outbound import RefusedAddress, guarded_transport

from .alerts import Alert, alert_subject
from .push_subscriptions import FINAL, PushStore, PushSubscriber, is_for
from .send import is_quiet_hour, next_morning
from .settings import PushSettings
from .timing import zone_of

log = logging.getLogger(__name__)

MAX_PLAINTEXT = 3000  # bytes: a push message holds 4096 with its 86-byte header and padding (RFC 8291 §4)
MAX_BODY_CHARS = 300  # a notification shows two or three lines; the story is one tap away
JWT_LIFETIME = 12 * 3600  # seconds; push services refuse a VAPID token valid for more than 24 h (RFC 8292 §2)
PAGE = 500  # subscriptions read at a time
LEASE_RENEW = 20.0  # seconds between renewals of a run's lease while its pushes go (the lease lasts 2 minutes)


class LeaseLost(Exception):
    """This run's lease lapsed and another run took the alert: this one stops; the ledger says what it did."""


@dataclass(frozen=True)
class PushOutcome:
    status: str  # sent | removed | retry | failed
    error: str | None = None


@dataclass(frozen=True)
class PushReport:
    alert_id: int
    sent: int = 0
    removed: int = 0
    failed: int = 0
    retrying: int = 0
    held: int = 0
    is_busy: bool = False  # another process was pushing this alert: it carries on

    def summary(self) -> str:
        if self.is_busy:
            return f"alert {self.alert_id}: pushing elsewhere"
        return (f"alert {self.alert_id}: {self.sent} pushed, {self.removed} removed, {self.failed} failed, "
                f"{self.retrying} to retry, {self.held} held for the night")


class Gate(Protocol):
    def wait(self) -> None: ...


@dataclass(frozen=True)
class TurnGate:
    """A gate over a token bucket's `turns(n)` (with [queue] redis_url, the whole deployment's push rate)."""

    turns: Callable[[int], list[float]]
    sleep: Callable[[float], None] = time.sleep

    def wait(self) -> None:
        delay = self.turns(1)[0] - time.monotonic()
        if delay > 0:
            self.sleep(delay)


class RunLease(Protocol):
    def acquire(self) -> bool: ...

    def release(self) -> None: ...


def alert_payload(alert: Alert, *, language: str, url: str) -> bytes:
    """The notification's JSON: the subject (with "(광고)" and "[속보]" as in the mail), the text cut to a few lines,
    where a tap leads, and a tag that makes a repeat replace the first. Plain data: the service worker shows it as
    text, never as HTML."""
    body = alert.content.text
    if len(body) > MAX_BODY_CHARS:
        body = body[:MAX_BODY_CHARS - 1].rstrip() + "…"
    message = {"title": alert_subject(alert.content, language), "body": body, "url": url,
               "tag": f"gazette-alert-{alert.id}", "lang": language}
    data = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    while len(data) > MAX_PLAINTEXT and message["body"]:  # a long subject in a wide script: the text gives way
        message["body"] = str(message["body"])[: len(str(message["body"])) // 2] + "…"
        data = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return data


def outcome_of(status_code: int, reason: str) -> PushOutcome:
    """What a push service's answer means for the subscription (RFC 8030 §5, §7.4; RFC 8292 §4)."""
    if status_code in (200, 201, 202):
        return PushOutcome("sent")
    if status_code in (404, 410):
        return PushOutcome("removed", f"{status_code}: the subscription is gone")
    if status_code == 429 or status_code >= 500:
        return PushOutcome("retry", f"{status_code} {reason}"[:200])
    return PushOutcome("failed", f"{status_code} {reason}"[:200])  # 400, 401/403 (VAPID), 413: not better next time


class PushSender:
    """One run's sender: encrypts with the browser's keys, signs with the VAPID key, POSTs over one client."""

    def __init__(self, settings: PushSettings, key: ec.EllipticCurvePrivateKey, *,
                 transport: httpx.BaseTransport | None = None, wall: Callable[[], float] = time.time) -> None:
        from py_vapid import Vapid02  # pywebpush's; loaded only when [push] is set

        self.settings = settings
        self._vapid = Vapid02(private_key=key)
        self._wall = wall  # the JWT's `exp` is checked on the push service's clock: the real one
        self._client = httpx.Client(
            transport=transport or guarded_transport(settings.allow_insecure_endpoints),
            timeout=httpx.Timeout(10.0), follow_redirects=False,
            headers={"User-Agent": "Gazette web push"})
        self._tokens: dict[str, tuple[float, str]] = {}  # origin -> (expiry, Authorization): one JWT per service
        self._lock = threading.Lock()  # the run's threads share this sender

    def send(self, subscriber: PushSubscriber, payload: bytes, *, topic: str) -> PushOutcome:
        from http_ece import ECEException
        from pywebpush import WebPusher, WebPushException

        info = {"endpoint": subscriber.endpoint, "keys": {"p256dh": subscriber.p256dh, "auth": subscriber.auth}}
        try:
            body = WebPusher(info).encode(payload, "aes128gcm")["body"]
        except (ECEException, WebPushException, ValueError) as exc:  # keys that passed the checks but not the key agreement: this reader only
            return PushOutcome("failed", f"encryption failed: {exc}"[:200])
        headers = {"Authorization": self._authorization(subscriber.endpoint), "TTL": str(self.settings.ttl),
                   "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
                   "Urgency": "high", "Topic": topic}
        try:
            response = self._client.post(subscriber.endpoint, content=body, headers=headers)
        except httpx.ConnectError as exc:
            if isinstance(exc.__cause__, RefusedAddress):  # the endpoint's name leads to a private address
                return PushOutcome("failed", f"refused: {exc}"[:200])
            return PushOutcome("retry", f"connection failed: {exc}"[:200])
        except httpx.HTTPError as exc:
            return PushOutcome("retry", f"{type(exc).__name__}: {exc}"[:200])
        return outcome_of(response.status_code, response.reason_phrase)

    def _authorization(self, endpoint: str) -> str:
        parts = urlsplit(endpoint)
        origin = f"{parts.scheme}://{parts.netloc}"
        now = self._wall()
        with self._lock:
            cached = self._tokens.get(origin)
            if cached is None or cached[0] - now < JWT_LIFETIME / 2:
                exp = int(now) + JWT_LIFETIME
                header = self._vapid.sign({"aud": origin, "exp": exp, "sub": self.settings.vapid_subject})
                cached = (exp, header["Authorization"])
                self._tokens[origin] = cached
            return cached[1]

    def close(self) -> None:
        self._client.close()


@dataclass(frozen=True)
class AlertPush:
    """The push side of alerts, over the subscriptions and the ledger. `sender()` makes a run's sender; `url(alert,
    language)` is where a tap leads (a story's tracked /r/ link); `lease(name)` keeps two runs of one alert apart."""

    store: PushStore
    settings: PushSettings
    site_zone: ZoneInfo
    site_language: str
    sender: Callable[[], PushSender]
    url: Callable[[Alert], str]
    lease: Callable[[str], RunLease]
    gate: Gate
    clock: Callable[[], datetime]
    enqueue: Callable[[int], None] | None = None  # [queue] url: a push run is a task for `gazette worker`
    is_live: Callable[[Alert], bool] = lambda alert: True  # False: the alert's story was killed or held since

    def start(self, alert: Alert) -> Callable[[], None]:
        """Begin pushing `alert`: on the queue, or on a thread of this process; what waits for the thread."""
        if self.enqueue is not None:
            self.enqueue(alert.id)
            return lambda: None
        thread = threading.Thread(target=self._deliver_logged, args=(alert,), name=f"push-{alert.id}", daemon=True)
        thread.start()
        return thread.join

    def _deliver_logged(self, alert: Alert) -> None:
        try:
            log.info("%s", self.deliver(alert).summary())
        except Exception:  # the ledger keeps what was done: the push:due job carries the rest on
            log.exception("alert %d: pushing failed", alert.id)

    def deliver(self, alert: Alert) -> PushReport:
        """Push the alert to every subscription that follows it and has not had it: see the module's docstring."""
        lease = self.lease(f"push:{alert.id}")
        if not lease.acquire():
            return PushReport(alert.id, is_busy=True)
        try:
            return self._deliver(alert, lease)
        finally:
            lease.release()

    def _deliver(self, alert: Alert, lease: RunLease) -> PushReport:
        content, now = alert.content, self.clock()
        states = self.store.states(alert.id)
        if not self.is_live(alert):  # held for the morning or a retry, and the story was withdrawn meanwhile
            self._skip_leavers(alert.id, states, set(), reason="the alert's story was withdrawn")
            return PushReport(alert.id)
        url = self.url(alert)
        payloads: dict[str, bytes] = {}
        tally = {"sent": 0, "removed": 0, "failed": 0, "retry": 0, "held": 0}
        following: set[int] = set()
        sender = self.sender()
        # Each push waits on the push service (tens of milliseconds far away): `concurrency` of them at once, a page
        # at a time, each after its turn at the rate gate.
        pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix=f"push-{alert.id}")
        renewed = time.monotonic()
        try:
            for page in self._pages():
                pushes = []
                for sub in page:
                    if not is_for(sub, content.categories, has_ads=content.has_ads):
                        continue
                    following.add(sub.id)
                    status, attempts, next_at = states.get(sub.id, ("", 0, None))
                    if status in FINAL or (status in ("held", "retry") and next_at is not None and next_at > now):
                        continue
                    zone = zone_of(sub.timezone, self.site_zone)
                    if content.has_ads and is_quiet_hour(now, zone):
                        self.store.record(alert.id, sub.id, "held", now, attempts=attempts,
                                          next_attempt_at=next_morning(now, zone))
                        tally["held"] += 1
                        continue
                    language = sub.language or self.site_language
                    payload = payloads.get(language) or payloads.setdefault(
                        language, alert_payload(alert, language=language, url=url))
                    pushes.append(pool.submit(self._push_one, alert.id, sub, payload, attempts, sender))
                for done in pushes:
                    tally[done.result()] += 1
                    if time.monotonic() - renewed > LEASE_RENEW:  # a slow rate keeps the lease too
                        if not lease.acquire():
                            raise LeaseLost(f"alert {alert.id}: the push lease went to another run")
                        renewed = time.monotonic()
                if not lease.acquire():
                    raise LeaseLost(f"alert {alert.id}: the push lease went to another run")
                renewed = time.monotonic()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            sender.close()
        self._skip_leavers(alert.id, states, following)
        return PushReport(alert.id, sent=tally["sent"], removed=tally["removed"], failed=tally["failed"],
                          retrying=tally["retry"], held=tally["held"])

    def _push_one(self, alert_id: int, sub: PushSubscriber, payload: bytes, attempts: int,
                  sender: PushSender) -> str:
        self.store.record(alert_id, sub.id, "queued", self.clock(), attempts=attempts)  # before: never twice
        self.gate.wait()
        outcome = sender.send(sub, payload, topic=f"gazette-alert-{alert_id}")
        return self._settle(alert_id, sub, outcome, attempts + 1)

    def _pages(self):  # type: ignore[no-untyped-def]
        after = 0
        while True:
            page = self.store.subscribers(after=after, limit=PAGE)
            if not page:
                return
            yield page
            after = page[-1].id

    def _settle(self, alert_id: int, sub: PushSubscriber, outcome: PushOutcome, attempts: int) -> str:
        now = self.clock()
        status = outcome.status
        if status == "sent":
            self.store.succeeded(sub.id, now)
        elif status == "removed":
            self.store.remove(sub.id)
        else:
            self.store.failed(sub.id)
        if status == "retry" and attempts > self.settings.retries:
            status = "failed"
        next_at = now + self.settings.retry_delay * 2 ** (attempts - 1) if status == "retry" else None
        self.store.record(alert_id, sub.id, status, now, attempts=attempts, next_attempt_at=next_at,
                          error=outcome.error)
        if status != "sent":
            log.info("alert %d: push to subscription %d %s: %s", alert_id, sub.id, status, outcome.error)
        return status

    def _skip_leavers(self, alert_id: int, states: dict[int, tuple[str, int, datetime | None]],
                      following: set[int], *,
                      reason: str = "unsubscribed, or no longer follows the alert's sections") -> None:
        """Pushes waiting (held, to retry) for subscriptions that are gone or no longer follow the alert: settled as
        `skipped`, so the due job stops coming back to them."""
        now = self.clock()
        for sid, (status, attempts, _) in states.items():
            if status in ("held", "retry", "queued") and sid not in following:
                self.store.record(alert_id, sid, "skipped", now, attempts=attempts, error=reason)

    def counts(self, alert_id: int) -> dict[str, int]:
        return self.store.counts(alert_id)

    def due(self) -> list[int]:
        """Alerts with pushes to send now: held until this morning, retries whose time came, runs cut short."""
        return self.store.due(self.clock())

