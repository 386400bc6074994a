"""Web Push subscriptions: what a browser sends when a reader asks for alerts, checked hard, and where it is kept.

A subscription arrives from a page anyone can script, and Gazette will later POST to its endpoint, so
`parse_subscription` takes nothing on trust: only the fields the snippet sends; an https endpoint with a host name
or a public address (http and private addresses only under `[push] allow_insecure_endpoints`, for tests), of bounded
length; keys that decode to a P-256 point (65 bytes, on the curve) and a 16-byte secret (RFC 8291 §2); known
sections, languages and zones. The address an endpoint's name resolves to is checked again at connect time
(`feeds.outbound.guarded_transport`), so DNS cannot lead a push to the local network either.

    parse_subscription   the POSTed JSON -> SubscriptionRequest, or PushRefused (422) naming the field
    is_for               whether a subscription gets an alert (its sections, advertising consent)
    PushStore            the subscriptions (add or update by endpoint, remove) and the per-alert push ledger
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine, and_, delete, func, or_, select, update

from feeds.core.database import insert_for
from feeds.outbound import refused_reason

from .db import push_deliveries, push_subscriptions
from .errors import NewsletterError
from .timing import is_zone

MAX_ENDPOINT = 1000  # characters; push services' endpoints are 150-500
MAX_BODY = 4096  # bytes of JSON a subscribe or unsubscribe request may carry
FIELDS = frozenset({"subscription", "categories", "lang", "zone", "ads"})
SUBSCRIPTION_FIELDS = frozenset({"endpoint", "expirationTime", "keys"})
FINAL = ("sent", "failed", "removed", "skipped")  # a push in one of these states is never sent again for that alert


class PushRefused(NewsletterError):
    """A subscription or an unsubscribe request that cannot be taken, with the field and the reason."""

    status = 422


@dataclass(frozen=True)
class SubscriptionRequest:
    endpoint: str
    p256dh: str  # base64url, as the browser gave it (checked)
    auth: str
    categories: tuple[str, ...]
    language: str | None
    timezone: str | None
    has_ad_consent: bool


@dataclass(frozen=True)
class PushSubscriber:
    """A stored subscription: whom a push goes to and how it is encrypted."""

    id: int
    endpoint: str
    p256dh: str
    auth: str
    categories: tuple[str, ...]
    language: str | None
    timezone: str | None
    has_ad_consent: bool


def endpoint_hash(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode("utf-8")).hexdigest()


def b64url_decode(value: str) -> bytes:
    """base64url with or without padding; binascii.Error (a ValueError) for anything else."""
    if not value.isascii() or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="
                                  for c in value):
        raise binascii.Error("not base64url")
    return base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))


def check_endpoint(endpoint: object, *, allow_insecure: bool, services: Sequence[str] = ()) -> str:
    """A push service URL Gazette may POST to (on one of `services` or a subdomain, when given); PushRefused
    otherwise."""
    if not isinstance(endpoint, str) or not endpoint:
        raise PushRefused("subscription.endpoint: must be a URL")
    if len(endpoint) > MAX_ENDPOINT:
        raise PushRefused(f"subscription.endpoint: longer than {MAX_ENDPOINT} characters")
    if any(ord(c) < 33 or ord(c) == 127 or c in '<>"\'`\\' for c in endpoint) or not endpoint.isascii():
        raise PushRefused("subscription.endpoint: holds characters a URL does not")
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        raise PushRefused("subscription.endpoint: not a URL") from None
    schemes = ("https", "http") if allow_insecure else ("https",)
    if parts.scheme not in schemes:
        raise PushRefused("subscription.endpoint: must be an https URL of a push service")
    host = (parts.hostname or "").rstrip(".")
    if not host or "@" in parts.netloc or parts.fragment or (port is not None and not 0 < port < 65536):
        raise PushRefused("subscription.endpoint: needs a host, and no user, password or fragment")
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    if not allow_insecure:
        if literal and refused_reason(host):
            raise PushRefused(f"subscription.endpoint: {host} is not a public address")
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")) or "." not in host:
            raise PushRefused(f"subscription.endpoint: {host} is not a public host")
        if services and not any(host.lower() == s or host.lower().endswith("." + s) for s in services):
            raise PushRefused(f"subscription.endpoint: {host} is not a push service this site accepts "
                              f"([push] services)")
    return endpoint


def check_keys(keys: object) -> tuple[str, str]:
    """The browser's public key (an uncompressed P-256 point) and auth secret (16 bytes), as given."""
    if not isinstance(keys, dict) or set(keys) != {"p256dh", "auth"}:
        raise PushRefused("subscription.keys: must hold p256dh and auth, and nothing else")
    p256dh, auth = keys["p256dh"], keys["auth"]
    if not isinstance(p256dh, str) or not isinstance(auth, str) or len(p256dh) > 100 or len(auth) > 40:
        raise PushRefused("subscription.keys: p256dh and auth must be base64url strings")
    try:
        point, secret = b64url_decode(p256dh), b64url_decode(auth)
    except (binascii.Error, ValueError):
        raise PushRefused("subscription.keys: p256dh and auth must be base64url strings") from None
    if len(point) != 65 or point[0] != 4:
        raise PushRefused("subscription.keys.p256dh: must be an uncompressed P-256 point (65 bytes)")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise PushRefused("subscription.keys.p256dh: is not a point on P-256") from None
    if len(secret) != 16:
        raise PushRefused("subscription.keys.auth: must be 16 bytes")
    return p256dh, auth


def parse_subscription(body: object, *, categories: Sequence[str], languages: Sequence[str],
                       allow_insecure: bool, services: Sequence[str] = ()) -> SubscriptionRequest:
    """The subscribe request's JSON (already parsed) checked: see the module's docstring."""
    if not isinstance(body, dict):
        raise PushRefused("the body must be a JSON object")
    extra = set(body) - FIELDS
    if extra:
        raise PushRefused(f"unknown field(s): {', '.join(sorted(str(k)[:40] for k in extra))}")
    subscription = body.get("subscription")
    if not isinstance(subscription, dict) or set(subscription) - SUBSCRIPTION_FIELDS:
        raise PushRefused("subscription: must be the browser's PushSubscription (endpoint, expirationTime, keys)")
    expires = subscription.get("expirationTime")
    if expires is not None and (not isinstance(expires, (int, float)) or isinstance(expires, bool)):
        raise PushRefused("subscription.expirationTime: must be null or a time in milliseconds")
    endpoint = check_endpoint(subscription.get("endpoint"), allow_insecure=allow_insecure, services=services)
    p256dh, auth = check_keys(subscription.get("keys"))
    chosen = body.get("categories", [])
    if not isinstance(chosen, list) or len(chosen) > len(categories) or not all(isinstance(c, str) for c in chosen):
        raise PushRefused("categories: must be a list of section slugs")
    unknown = [c for c in chosen if c not in categories]
    if unknown:
        raise PushRefused(f"categories: unknown section(s) {', '.join(c[:40] for c in unknown)}")
    language = body.get("lang")
    if language is not None and language not in languages:
        raise PushRefused(f"lang: must be one of {', '.join(languages)}")
    zone = body.get("zone")
    if zone is not None and not (isinstance(zone, str) and len(zone) <= 64 and is_zone(zone)):
        raise PushRefused("zone: must be a time zone name such as Asia/Seoul")
    ads = body.get("ads", False)
    if not isinstance(ads, bool):
        raise PushRefused("ads: must be true or false")
    wanted = set(chosen)
    return SubscriptionRequest(endpoint=endpoint, p256dh=p256dh, auth=auth,
                               categories=tuple(c for c in categories if c in wanted), language=language,
                               timezone=zone, has_ad_consent=ads)


def is_for(subscriber: PushSubscriber, categories: Sequence[str], *, has_ads: bool) -> bool:
    """Whether a subscription gets an alert of `categories` (none: every section): a subscription that follows no
    section gets every alert; an alert with advertising only goes to one that agreed to it (§50①)."""
    if has_ads and not subscriber.has_ad_consent:
        return False
    return not categories or not subscriber.categories or bool(set(categories) & set(subscriber.categories))


class PushStore:
    """The subscriptions and the push ledger (`push_deliveries`: one row per alert and subscription)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- subscriptions

    def subscribe(self, request: SubscriptionRequest, now: datetime) -> int:
        """Add the subscription, or update the one with that endpoint (a browser that subscribes again); its id."""
        values: dict[str, Any] = {
            "endpoint": request.endpoint, "p256dh": request.p256dh, "auth": request.auth,
            "categories": list(request.categories), "language": request.language, "timezone": request.timezone,
            "ad_consent_at": now if request.has_ad_consent else None}
        with self.engine.begin() as conn:
            statement = insert_for(conn)(push_subscriptions).values(
                endpoint_hash=endpoint_hash(request.endpoint), created_at=now, failures=0, **values)
            conn.execute(statement.on_conflict_do_update(index_elements=["endpoint_hash"], set_=values))
            return int(conn.execute(select(push_subscriptions.c.id).where(
                push_subscriptions.c.endpoint_hash == endpoint_hash(request.endpoint))).scalar_one())

    def unsubscribe(self, endpoint: str) -> bool:
        """Remove the subscription with this endpoint; whether there was one."""
        with self.engine.begin() as conn:
            return conn.execute(delete(push_subscriptions).where(
                push_subscriptions.c.endpoint_hash == endpoint_hash(endpoint))).rowcount > 0

    def remove(self, subscription_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(push_subscriptions).where(push_subscriptions.c.id == subscription_id))

    def subscribers(self, *, after: int = 0, limit: int = 500) -> list[PushSubscriber]:
        """Subscriptions by id, `limit` after the id `after` (a run reads them a page at a time)."""
        query = (select(push_subscriptions).where(push_subscriptions.c.id > after)
                 .order_by(push_subscriptions.c.id).limit(limit))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [PushSubscriber(id=r.id, endpoint=r.endpoint, p256dh=r.p256dh, auth=r.auth,
                               categories=tuple(r.categories), language=r.language, timezone=r.timezone,
                               has_ad_consent=r.ad_consent_at is not None) for r in rows]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(push_subscriptions)).scalar_one())

    def succeeded(self, subscription_id: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(push_subscriptions).where(push_subscriptions.c.id == subscription_id)
                         .values(last_success_at=now, failures=0))

    def failed(self, subscription_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(push_subscriptions).where(push_subscriptions.c.id == subscription_id)
                         .values(failures=push_subscriptions.c.failures + 1))

    # --- the ledger

    def states(self, alert_id: int) -> dict[int, tuple[str, int, datetime | None]]:
        """subscription id -> (status, attempts, next attempt) of an alert's pushes so far."""
        d = push_deliveries.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(d.subscription_id, d.status, d.attempts, d.next_attempt_at)
                                .where(d.edition_id == alert_id)).all()
        return {r.subscription_id: (r.status, r.attempts, r.next_attempt_at) for r in rows}

    def record(self, alert_id: int, subscription_id: int, status: str, now: datetime, *, attempts: int = 0,
               next_attempt_at: datetime | None = None, error: str | None = None) -> None:
        """Write the row of one push, new or not: `queued` before the POST, its outcome after."""
        values = {"status": status, "attempts": attempts, "next_attempt_at": next_attempt_at,
                  "last_error": error[:500] if error else None, "updated_at": now}
        with self.engine.begin() as conn:
            statement = insert_for(conn)(push_deliveries).values(edition_id=alert_id,
                                                                subscription_id=subscription_id, **values)
            conn.execute(statement.on_conflict_do_update(index_elements=["edition_id", "subscription_id"],
                                                         set_=values))

    def counts(self, alert_id: int) -> dict[str, int]:
        d = push_deliveries.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(d.status, func.count()).where(d.edition_id == alert_id)
                                .group_by(d.status)).all()
        return {status: int(n) for status, n in rows}

    def due(self, now: datetime) -> list[int]:
        """Alerts with a push whose time has come: held for the night, a retry, or cut short while queued."""
        d = push_deliveries.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(d.edition_id).distinct().where(or_(
                and_(d.status.in_(("held", "retry")), d.next_attempt_at <= now),
                d.status == "queued")).order_by(d.edition_id)).all()
        return [int(r.edition_id) for r in rows]

