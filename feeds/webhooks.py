"""Webhooks: the newsroom's own systems (a CRM, a dashboard, the CMS) told of what happened, as signed POSTs. Here:
the rules, the endpoints and the delivery queue (`WebhookStore`); `feeds.webhook_worker` sends.

An admin adds an endpoint (a URL and the event types it wants; `feeds.events.TYPES`); Gazette makes its secret,
shown once. The endpoint starts at the end of the event log (`feeds.events`): it gets what happens after it was
made, never the history. Each round of `WebhookWorker` (run only by the process that speaks for all, as partner
pushes are) fans the log's new events out into one delivery row per (endpoint, event), advancing the endpoint's
cursor in the same transaction; the row is unique per (endpoint, event), so neither a second process nor a restart
makes another. It then claims due rows and POSTs each event as JSON, signed exactly as partner pushes are
(`feeds.push.sign`: `X-Gazette-Signature: sha256=<hex>` of the body with the endpoint's secret), carrying
`X-Gazette-Delivery` (also in the body: a receiver drops a repeat) and `X-Gazette-Event`. Any 2xx is delivered;
anything else (a redirect included: none is followed) is retried with `feeds.push.backoff`, then parked after
`[webhooks] max_attempts` until an admin retries it. A test event (`webhook.test`) is sent at once, at an admin's
word, and its answer shown.

The body is made from the log when it is sent, so a reader erased meanwhile is sent without their address. The
cursor re-reads the last `LOOKBACK` ids of the log each round: on PostgreSQL an event's id is taken before its
transaction commits, so a long transaction's event can appear behind the cursor; the unique row keeps the re-read
from sending anything twice.

Every connection goes through `feeds.outbound.guarded_transport`: loopback and private addresses only when the
operator set `[webhooks] allow_private_network` (an admin's URL may not reach the database's port), and a URL is
http(s), with a host, without userinfo, at most `MAX_URL` characters (`check_url`).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, exists, func, select

from . import db
from .core import database
from .errors import InvalidValue, UnknownName
from .events import TYPES
from .outbound import refused_reason

TEST_EVENT = "webhook.test"
STATUSES = ("pending", "delivered", "parked")
MAX_URL = 2000
MAX_NAME = 200
FAN_OUT_ON_EDIT = 1000  # rows a page when an edit queues what the endpoint's old types are owed
LOOKBACK = 1000  # log ids re-read behind the cursor each round (a transaction that committed late)
RESPONSE_KEPT = 300  # characters of a failed answer kept as its reason; the rest is never read


@dataclass(frozen=True)
class Endpoint:
    id: int
    name: str
    url: str
    events: tuple[str, ...]
    is_active: bool
    created_at: datetime
    created_by: str | None
    updated_at: datetime | None
    last_event_id: int
    first_event_id: int
    secret: str = field(repr=False)

    def facts(self) -> dict[str, Any]:
        """What the audit log records of an endpoint: never the secret, only its fingerprint."""
        return {"name": self.name, "url": self.url, "events": list(self.events), "is_active": self.is_active,
                "secret": fingerprint(self.secret)}


@dataclass(frozen=True)
class Delivery:
    id: int
    endpoint_id: int
    event_id: int | None
    event: str
    delivery_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    response_status: int | None
    created_at: datetime
    delivered_at: datetime | None
    parked_at: datetime | None


@dataclass(frozen=True)
class Attempt:
    error: str | None  # None: delivered
    response_status: int | None = None


def fingerprint(secret: str) -> str:
    """What the audit log and the lists show of a secret: enough to tell two apart, nothing to use."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def check_url(url: str, *, allow_private_network: bool) -> str:
    """The URL an endpoint may have, stripped; raises InvalidValue (422) naming why not. An address literal that is
    not public is refused here already; a name is checked on every connection, after DNS."""
    url = url.strip()
    if not url or len(url) > MAX_URL or any(c <= " " or c == "\x7f" for c in url):
        raise InvalidValue(f"url: an http(s) URL of at most {MAX_URL} characters, without spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a port out of range raises here)
    except ValueError as exc:
        raise InvalidValue(f"url: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidValue("url: only http and https are allowed")
    if not parts.hostname:
        raise InvalidValue("url: no host")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidValue("url: no user name or password in the URL (the signature authenticates Gazette)")
    reason = refused_reason(parts.hostname.strip("[]"))
    if reason is not None and not reason.endswith("is not an IP address") and not allow_private_network:
        raise InvalidValue(f"url: {reason} is not public; the operator allows private addresses with "
                           "[webhooks] allow_private_network")
    return url


def check_events(events: Sequence[Any]) -> tuple[str, ...]:
    if not isinstance(events, (list, tuple)) or not events or len(events) > len(TYPES):
        raise InvalidValue(f"events: one or more of {', '.join(TYPES)}")
    unknown = [str(e)[:40] for e in events if e not in TYPES]
    if unknown:
        raise InvalidValue(f"events: unknown {unknown}; known: {', '.join(TYPES)}")
    return tuple(t for t in TYPES if t in events)  # the log's order, each once


def check_name(name: str) -> str:
    name = " ".join(str(name).split())
    if not name or len(name) > MAX_NAME:
        raise InvalidValue(f"name: 1 to {MAX_NAME} characters")
    return name


class WebhookStore:
    """The `webhook_endpoints` and `webhook_deliveries` tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- endpoints ---------------------------------------------------------------------------------------------

    def create(self, name: str, url: str, events: Sequence[str], *, allow_private_network: bool, now: datetime,
               by: str | None, is_active: bool = True) -> Endpoint:
        values = {"name": check_name(name), "url": check_url(url, allow_private_network=allow_private_network),
                  "events": list(check_events(events)), "secret": new_secret(), "is_active": is_active,
                  "created_at": now, "created_by": by}
        e = db.webhook_endpoints
        with self.engine.begin() as conn:
            last = conn.execute(select(func.coalesce(func.max(db.events.c.id), 0))).scalar_one()
            new_id = conn.execute(e.insert().values(**values, last_event_id=last, first_event_id=last)).inserted_primary_key
            return _endpoint(conn.execute(select(e).where(e.c.id == new_id[0])).one())

    def endpoints(self) -> list[Endpoint]:
        e = db.webhook_endpoints
        with self.engine.connect() as conn:
            return [_endpoint(r) for r in conn.execute(select(e).order_by(e.c.id))]

    def endpoint(self, endpoint_id: int) -> Endpoint:
        e = db.webhook_endpoints
        with self.engine.connect() as conn:
            row = conn.execute(select(e).where(e.c.id == endpoint_id)).first()
        if row is None:
            raise UnknownName(f"no webhook endpoint {endpoint_id}")
        return _endpoint(row)

    def update(self, endpoint_id: int, changes: dict[str, Any], *, allow_private_network: bool,
               now: datetime) -> tuple[Endpoint, Endpoint]:
        """Change name, url, events or is_active; (before, after). Types added, and an endpoint switched on again,
        start at the end of the log, as a new endpoint does: no history, no backlog of the time it was off."""
        before = self.endpoint(endpoint_id)
        values: dict[str, Any] = {"updated_at": now}
        if changes.get("name") is not None:
            values["name"] = check_name(changes["name"])
        if changes.get("url") is not None:
            values["url"] = check_url(changes["url"], allow_private_network=allow_private_network)
        if changes.get("is_active") is not None:
            values["is_active"] = bool(changes["is_active"])
        e = db.webhook_endpoints
        with self.engine.begin() as conn:
            if changes.get("events") is not None:
                values["events"] = list(check_events(changes["events"]))
            if set(values.get("events", ())) - set(before.events) or (values.get("is_active") and not before.is_active):
                current = before
                while current.is_active and self._fan_out(conn, current, now, FAN_OUT_ON_EDIT) == FAN_OUT_ON_EDIT:
                    current = _endpoint(conn.execute(select(e).where(e.c.id == endpoint_id)).one())  # the next page
                last = conn.execute(select(func.coalesce(func.max(db.events.c.id), 0))).scalar_one()
                values.update(first_event_id=last, last_event_id=max(last, before.last_event_id))
            conn.execute(e.update().where(e.c.id == endpoint_id).values(**values))
            after = _endpoint(conn.execute(select(e).where(e.c.id == endpoint_id)).one())
        return before, after

    def rotate_secret(self, endpoint_id: int, now: datetime) -> tuple[Endpoint, Endpoint]:
        before = self.endpoint(endpoint_id)
        e = db.webhook_endpoints
        with self.engine.begin() as conn:
            conn.execute(e.update().where(e.c.id == endpoint_id).values(secret=new_secret(), updated_at=now))
            return before, _endpoint(conn.execute(select(e).where(e.c.id == endpoint_id)).one())

    def delete(self, endpoint_id: int) -> Endpoint:
        before = self.endpoint(endpoint_id)
        e, d = db.webhook_endpoints, db.webhook_deliveries
        with self.engine.begin() as conn:
            conn.execute(d.delete().where(d.c.endpoint_id == endpoint_id))  # SQLite may run without foreign keys
            conn.execute(e.delete().where(e.c.id == endpoint_id))
        return before

    # --- the queue ---------------------------------------------------------------------------------------------

    def fan_out(self, endpoint: Endpoint, now: datetime, limit: int = 500) -> int:
        """New events of the types the endpoint wants become its delivery rows, and its cursor moves, in one
        transaction; returns how many rows were made (`limit` at most: the next call goes on)."""
        with self.engine.begin() as conn:
            return self._fan_out(conn, endpoint, now, limit)

    def _fan_out(self, conn: Connection, endpoint: Endpoint, now: datetime, limit: int) -> int:
        ev, d, e = db.events, db.webhook_deliveries, db.webhook_endpoints
        last = conn.execute(select(func.coalesce(func.max(ev.c.id), 0))).scalar_one()
        start = max(endpoint.first_event_id, endpoint.last_event_id - LOOKBACK)
        rows = conn.execute(
            select(ev.c.id, ev.c.type).where(ev.c.id > start, ev.c.id <= last, ev.c.type.in_(list(endpoint.events)),
                                             ~exists().where(d.c.endpoint_id == endpoint.id, d.c.event_id == ev.c.id))
            .order_by(ev.c.id).limit(limit)).all()
        if rows:
            conn.execute(database.insert_for(self.engine)(d).on_conflict_do_nothing(), [
                {"endpoint_id": endpoint.id, "event_id": r.id, "event": r.type, "delivery_id": uuid.uuid4().hex,
                 "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now} for r in rows])
        cursor = rows[-1].id if len(rows) == limit else last
        conn.execute(e.update().where(e.c.id == endpoint.id, e.c.last_event_id < cursor)
                     .values(last_event_id=cursor))
        return len(rows)

    def add_test(self, endpoint: Endpoint, now: datetime) -> Delivery:
        d = db.webhook_deliveries
        with self.engine.begin() as conn:
            new_id = conn.execute(d.insert().values(
                endpoint_id=endpoint.id, event_id=None, event=TEST_EVENT, delivery_id=uuid.uuid4().hex,
                status="pending", attempts=0, next_attempt_at=now + timedelta(minutes=2),  # sent now, by the caller
                created_at=now)).inserted_primary_key[0]
            return Delivery(**conn.execute(select(d).where(d.c.id == new_id)).one()._mapping)

    def due(self, now: datetime, endpoint_ids: Sequence[int], limit: int) -> list[Delivery]:
        d = db.webhook_deliveries
        with self.engine.connect() as conn:
            rows = conn.execute(select(d).where(d.c.status == "pending", d.c.next_attempt_at <= now,
                                                d.c.endpoint_id.in_(list(endpoint_ids)))
                                .order_by(d.c.next_attempt_at, d.c.id).limit(limit))
            return [Delivery(**r._mapping) for r in rows]

    def claim(self, delivery: Delivery, now: datetime, until: datetime) -> bool:
        """Take a due row for one attempt; False if another process took it first."""
        d = db.webhook_deliveries
        with self.engine.begin() as conn:
            return conn.execute(d.update().where(d.c.id == delivery.id, d.c.status == "pending",
                                                 d.c.next_attempt_at <= now).values(next_attempt_at=until)).rowcount == 1

    def finished(self, delivery: Delivery, attempt: Attempt, now: datetime, retry_at: datetime | None) -> Delivery:
        """Record an attempt: delivered, to be tried again at `retry_at`, or parked (no `retry_at`)."""
        d = db.webhook_deliveries
        values: dict[str, Any] = {"attempts": d.c.attempts + 1, "response_status": attempt.response_status}
        if attempt.error is None:
            values.update(status="delivered", delivered_at=now, next_attempt_at=None, last_error=None)
        else:
            values.update(last_error=attempt.error[:1000], next_attempt_at=retry_at)
            if retry_at is None:
                values.update(status="parked", parked_at=now)
        with self.engine.begin() as conn:
            conn.execute(d.update().where(d.c.id == delivery.id).values(**values))
            row = conn.execute(select(d).where(d.c.id == delivery.id)).first()
        return Delivery(**row._mapping) if row is not None else delivery  # None: its endpoint was deleted meanwhile

    def deliveries(self, endpoint_id: int, status: str | None = None, limit: int = 100,
                   before_id: int | None = None) -> list[Delivery]:
        """Newest first; with `before_id`, those older than that row (the next page)."""
        d = db.webhook_deliveries
        query = select(d).where(d.c.endpoint_id == endpoint_id).order_by(d.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(d.c.status == status)
        if before_id is not None:
            query = query.where(d.c.id < before_id)
        with self.engine.connect() as conn:
            return [Delivery(**r._mapping) for r in conn.execute(query)]

    def counts(self, endpoint_id: int) -> dict[str, int]:
        d = db.webhook_deliveries
        with self.engine.connect() as conn:
            rows = conn.execute(select(d.c.status, func.count()).where(d.c.endpoint_id == endpoint_id)
                                .group_by(d.c.status)).all()
        return {s: 0 for s in STATUSES} | {s: int(n) for s, n in rows}

    def retry(self, endpoint_id: int, delivery_id: str, now: datetime) -> Delivery | None:
        """A parked row back in the queue with a fresh set of attempts; None if there is no such parked row."""
        d = db.webhook_deliveries
        which = (d.c.endpoint_id == endpoint_id, d.c.delivery_id == delivery_id[:64])
        with self.engine.begin() as conn:
            if conn.execute(d.update().where(*which, d.c.status == "parked").values(
                    status="pending", attempts=0, next_attempt_at=now, parked_at=None)).rowcount != 1:
                return None
            return Delivery(**conn.execute(select(d).where(*which)).one()._mapping)


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(id=row.id, name=row.name, url=row.url, events=tuple(row.events or ()), is_active=row.is_active,
                    created_at=row.created_at, created_by=row.created_by, updated_at=row.updated_at,
                    last_event_id=row.last_event_id, first_event_id=row.first_event_id, secret=row.secret)
