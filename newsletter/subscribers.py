"""Subscribers: validated addresses with their choices, consent record, pause, and the suppression list.

Addresses are checked and normalised with email-validator (syntax only: no DNS at request or import time). One
mailbox is one subscriber: identity and limits go by `email_hash` (SHA-256 of the address in lower case), so
`Reader@x` and `reader@x` are the same reader, while the address is stored as given, for display.
Nobody is mailed a digest before confirming, and a confirmation link works once: it carries the nonce stored with
the request, which confirming, a newer request or an unsubscribe clears. An address that unsubscribed, bounced, complained or was erased is
*suppressed*: import and admin cannot bring it back, only the person can, through a fresh confirmation. Erasure
keeps only a SHA-256 of the address in `suppressions` so that the next import does not add it again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Sequence

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Engine, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from feeds.db import is_storable_id

from .db import deliveries, subscribers, suppressions
from .errors import LinkUsed, RateLimited, SubscriberError

FREQUENCIES = ("daily", "weekly")
CONSENT_METHODS = ("form", "import", "admin")
SUPPRESSED = ("unsubscribed", "bounced", "complained")
CONFIRMATION_INTERVAL = timedelta(hours=1)


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str | None
    status: str
    categories: tuple[str, ...]
    frequency: str
    timezone: str | None
    language: str | None
    confirmed_at: datetime | None
    paused_at: datetime | None = None
    unsubscribed_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.status == "confirmed" and self.paused_at is None


@dataclass(frozen=True)
class Choices:
    """What a reader picked on the subscribe or preferences form."""

    categories: tuple[str, ...]
    frequency: str
    name: str | None = None
    language: str | None = None
    timezone: str | None = None


@dataclass(frozen=True)
class ConfirmationRequest:
    """What asking for a confirmation mail did: `action` "confirm" (with the `nonce` its link must carry) or
    "manage" (already subscribed); `is_new` when this request created the subscriber row."""

    action: str
    subscriber: Subscriber
    nonce: str | None
    is_new: bool


@dataclass(frozen=True)
class ImportReport:
    added: int = 0
    updated: int = 0
    suppressed: tuple[int, ...] = ()
    invalid: tuple[tuple[int, str], ...] = field(default_factory=tuple)

    def summary(self) -> str:
        parts = [f"{self.added} added", f"{self.updated} updated", f"{len(self.suppressed)} suppressed",
                 f"{len(self.invalid)} invalid"]
        lines = [", ".join(parts)]
        if self.suppressed:
            lines.append("suppressed (unsubscribed, bounced, complained or erased; they must confirm again) on lines "
                         + ", ".join(map(str, self.suppressed)))
        lines += [f"line {number}: {reason}" for number, reason in self.invalid]
        return "\n".join(lines)


def normalise_email(address: str) -> str:
    """The address as stored: validated, domain lower-cased; refuses anything that could break a header."""
    if any(c in address for c in "\r\n\0"):
        raise SubscriberError("an address cannot contain line breaks")
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise SubscriberError(f"{address.strip()!r} is not a valid address: {exc}") from None


def email_hash(address: str) -> str:
    """The identity of a mailbox: the same for every spelling in upper or lower case."""
    return hashlib.sha256(address.lower().encode()).hexdigest()


class SubscriberStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- admin and import -----------------------------------------------------------------------------

    def add(self, email: str, *, categories: Sequence[str], frequency: str, now: datetime, name: str | None = None,
            confirmed: bool, method: str, consent_text: str | None = None,
            language: str | None = None) -> tuple[str, Subscriber | None]:
        """Add or update one subscriber. Returns ("added" | "updated" | "suppressed", subscriber).

        A suppressed address is left as it is (the subscriber is None when only its hash is left).
        """
        address = normalise_email(email)
        _check_choices(frequency)
        if method not in CONSENT_METHODS:
            raise SubscriberError(f"consent method {method!r} is not one of {', '.join(CONSENT_METHODS)}")
        key = email_hash(address)
        with self.engine.begin() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.email_hash == key)).first()
            if row is not None and row.status in SUPPRESSED:
                return "suppressed", _subscriber(row)
            if row is None and conn.execute(select(suppressions.c.reason).where(
                    suppressions.c.email_hash == key)).first() is not None:
                return "suppressed", None
            values = {"name": name, "categories": list(categories), "frequency": frequency, "language": language,
                      "updated_at": now}
            if row is None:
                new_id = conn.execute(subscribers.insert().values(
                    email=address, email_hash=key, status="confirmed" if confirmed else "pending", created_at=now,
                    confirmed_at=now if confirmed else None, consent_method=method, consent_text=consent_text,
                    bounces=0, **values)).inserted_primary_key[0]
                outcome = "added"
            else:
                new_id = row.id
                if confirmed and row.status == "pending":
                    values.update(status="confirmed", confirmed_at=now, consent_method=method, consent_text=consent_text)
                conn.execute(subscribers.update().where(subscribers.c.id == row.id).values(**values))
                outcome = "updated"
            stored = conn.execute(select(subscribers).where(subscribers.c.id == new_id)).one()
        return outcome, _subscriber(stored)

    def import_csv(self, text: str, *, known_categories: Iterable[str], now: datetime, confirmed: bool,
                   consent_text: str | None = None,
                   on_row: Callable[[int], None] | None = None) -> ImportReport:
        """CSV with a header: email[,name][,categories (space or | separated)][,frequency]."""
        known = set(known_categories)
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        if not reader.fieldnames or "email" not in [f.strip().lower() for f in reader.fieldnames]:
            raise SubscriberError("the CSV needs a header row with an 'email' column")
        added = updated = 0
        suppressed: list[int] = []
        invalid: list[tuple[int, str]] = []
        for row in reader:
            line = reader.line_num
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
            try:
                categories = [c for c in row.get("categories", "").replace("|", " ").split() if c]
                unknown = [c for c in categories if c not in known]
                if unknown:
                    raise SubscriberError(f"unknown categories: {', '.join(unknown)}")
                outcome, _ = self.add(row.get("email", ""), categories=categories or sorted(known),
                                      frequency=row.get("frequency") or "daily", name=row.get("name") or None,
                                      now=now, confirmed=confirmed, method="import", consent_text=consent_text)
            except SubscriberError as exc:
                invalid.append((line, str(exc)))
            else:
                if outcome == "added":
                    added += 1
                elif outcome == "updated":
                    updated += 1
                else:
                    suppressed.append(line)
            if on_row:
                on_row(line)
        return ImportReport(added=added, updated=updated, suppressed=tuple(suppressed), invalid=tuple(invalid))

    # --- the reader's own path: subscribe, confirm, preferences, unsubscribe --------------------------

    def request_confirmation(self, email: str, now: datetime) -> ConfirmationRequest:
        """Claim the one confirmation mail an hour an address may get.

        "manage": the address is already subscribed, so the mail offers its preferences instead of changing them
        (an unauthenticated form must not change somebody else's choices). Otherwise "confirm", with a new nonce
        for the link (older links stop working); a new address gets a pending row, which receives nothing until
        confirmed. Raises RateLimited when a mail went out less than an hour ago; `release_confirmation` gives the
        slot back (and forgets a row it created) if the mail could not be sent.
        """
        address = normalise_email(email)
        key = email_hash(address)
        with self.engine.begin() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.email_hash == key)).first()
            is_new = row is None
            if is_new:
                try:
                    with conn.begin_nested():
                        conn.execute(subscribers.insert().values(
                            email=address, email_hash=key, status="pending", categories=[], frequency="daily",
                            created_at=now, consent_method="form", bounces=0, updated_at=now))
                except IntegrityError:  # the same address, in another request, a moment ago
                    is_new = False
            claimed = conn.execute(update(subscribers).where(
                subscribers.c.email_hash == key,
                or_(subscribers.c.confirmation_sent_at.is_(None),
                    subscribers.c.confirmation_sent_at <= now - CONFIRMATION_INTERVAL))
                .values(confirmation_sent_at=now)).rowcount
            stored = conn.execute(select(subscribers).where(subscribers.c.email_hash == key)).one()
            if not claimed:
                wait = stored.confirmation_sent_at + CONFIRMATION_INTERVAL - now
                raise RateLimited(f"a mail was sent to {address} less than an hour ago",
                                  retry_after=max(1, int(wait.total_seconds())))
            if stored.status == "confirmed":
                return ConfirmationRequest("manage", _subscriber(stored), None, is_new)
            nonce = secrets.token_urlsafe(12)
            conn.execute(update(subscribers).where(subscribers.c.id == stored.id).values(confirmation_nonce=nonce))
        return ConfirmationRequest("confirm", _subscriber(stored), nonce, is_new)

    def release_confirmation(self, subscriber_id: int, *, forget: bool = False) -> None:
        """The mail could not be sent: give the hour's slot back; with `forget`, delete the pending row the request
        created (nothing is kept of an address we could not write to)."""
        with self.engine.begin() as conn:
            if forget:
                conn.execute(delete(subscribers).where(subscribers.c.id == subscriber_id,
                                                       subscribers.c.status == "pending",
                                                       subscribers.c.confirmed_at.is_(None)))
            conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id)
                         .values(confirmation_sent_at=None, confirmation_nonce=None))

    def confirm(self, subscriber_id: int, email: str, choices: Choices, *, nonce: str | None, now: datetime,
                ip_hash: str | None, consent_text: str) -> Subscriber:
        """Activate with the choices carried by the confirmation link; records consent.

        The link's `nonce` must be the one stored by the latest request, and confirming uses it up: a link that
        was used, replaced by a newer one or followed by an unsubscribe raises SubscriberError("used"), so an old
        mail can never bring back an address that asked to stop. A link made before nonces existed (None) still
        confirms a pending subscriber, and nothing else. Confirming twice in a row is harmless.
        """
        _check_choices(choices.frequency)
        with self.engine.begin() as conn:
            row = self._row(conn, subscriber_id, email)
            if row.status == "confirmed" and row.confirmation_nonce is None:
                return _subscriber(row)
            if nonce is None:
                is_valid = row.status == "pending" and row.confirmation_nonce is None
            else:
                is_valid = row.confirmation_nonce is not None and secrets.compare_digest(row.confirmation_nonce, nonce)
            if not is_valid:
                raise LinkUsed(f"this confirmation link of subscriber {subscriber_id} was used or replaced")
            conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(
                status="confirmed", categories=list(choices.categories), frequency=choices.frequency,
                name=choices.name, language=choices.language, timezone=choices.timezone, confirmed_at=now,
                unsubscribed_at=None, paused_at=None, bounces=0, consent_method="form", consent_text=consent_text,
                consent_ip_hash=ip_hash, confirmation_nonce=None, updated_at=now))
            conn.execute(delete(suppressions).where(suppressions.c.email_hash == row.email_hash))
            return _subscriber(self._row(conn, subscriber_id, email))

    def update_preferences(self, subscriber_id: int, email: str, choices: Choices, *, is_paused: bool,
                           now: datetime) -> Subscriber:
        _check_choices(choices.frequency)
        if not choices.categories:
            raise SubscriberError("choose at least one category")
        with self.engine.begin() as conn:
            row = self._row(conn, subscriber_id, email)
            paused_at = (row.paused_at or now) if is_paused else None
            conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(
                categories=list(choices.categories), frequency=choices.frequency, timezone=choices.timezone,
                language=choices.language or row.language, paused_at=paused_at, updated_at=now))
            return _subscriber(self._row(conn, subscriber_id, email))

    def unsubscribe(self, subscriber_id: int, email: str, *, now: datetime, reason: str = "unsubscribed") -> Subscriber:
        """Stop all mail at once. Idempotent: the first time is the one recorded."""
        if reason not in SUPPRESSED:
            raise ValueError(reason)
        with self.engine.begin() as conn:
            row = self._row(conn, subscriber_id, email)
            if row.status != reason or row.confirmation_nonce is not None:
                conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(
                    status=reason, unsubscribed_at=row.unsubscribed_at or now, confirmation_nonce=None, updated_at=now))
            self._suppress(conn, row.email, reason, now)
            return _subscriber(self._row(conn, subscriber_id, email))

    def resubscribe(self, subscriber_id: int, email: str, *, now: datetime, ip_hash: str | None,
                    consent_text: str) -> Subscriber:
        """Back in, from a link only the address's owner received: that link is the confirmation."""
        with self.engine.begin() as conn:
            row = self._row(conn, subscriber_id, email)
            conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(
                status="confirmed", confirmed_at=now, unsubscribed_at=None, paused_at=None, bounces=0,
                consent_method="form", consent_text=consent_text, consent_ip_hash=ip_hash, updated_at=now))
            conn.execute(delete(suppressions).where(suppressions.c.email_hash == row.email_hash))
            return _subscriber(self._row(conn, subscriber_id, email))

    def record_bounce(self, email: str, *, kind: str, now: datetime, hard_bounce_limit: int = 3) -> Subscriber | None:
        """A bounce or complaint about an address, from a source that vouches for it (our own SMTP session, a
        provider's authenticated webhook). None if the address is not a subscriber's."""
        try:
            key = email_hash(normalise_email(email))
        except SubscriberError:
            return None
        return self._record_bounce(subscribers.c.email_hash == key, kind, now, hard_bounce_limit)

    def record_bounce_of(self, subscriber_id: int, *, kind: str, now: datetime,
                         hard_bounce_limit: int = 3) -> Subscriber | None:
        """The same, for the subscriber a bounce was tied to by our own signed return path or Message-ID."""
        return self._record_bounce(subscribers.c.id == subscriber_id, kind, now, hard_bounce_limit)

    def _record_bounce(self, which: Any, kind: str, now: datetime, hard_bounce_limit: int) -> Subscriber | None:
        """"complaint" suppresses at once (the reader marked us as spam); "hard" counts, and `hard_bounce_limit` in
        a row suspend the address as "bounced"; "soft" (mailbox full, greylisting) only logs."""
        if kind not in ("hard", "soft", "complaint"):
            raise ValueError(kind)
        with self.engine.begin() as conn:
            row = conn.execute(select(subscribers).where(which)).first()
            if row is None:
                return None
            if kind == "complaint":
                conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(
                    status="complained", unsubscribed_at=row.unsubscribed_at or now, confirmation_nonce=None,
                    updated_at=now))
                self._suppress(conn, row.email, "complained", now)
            elif kind == "hard":
                bounces = (row.bounces or 0) + 1
                values: dict[str, Any] = {"bounces": bounces, "updated_at": now}
                if bounces >= hard_bounce_limit and row.status == "confirmed":
                    values.update(status="bounced", unsubscribed_at=row.unsubscribed_at or now, confirmation_nonce=None)
                    self._suppress(conn, row.email, "bounced", now)
                conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(**values))
            return _subscriber(conn.execute(select(subscribers).where(subscribers.c.id == row.id)).one())

    def reset_bounces(self, subscriber_ids: Sequence[int]) -> None:
        """A delivered mail ends a run of hard bounces."""
        if subscriber_ids:
            with self.engine.begin() as conn:
                conn.execute(update(subscribers).where(subscribers.c.id.in_(list(subscriber_ids)),
                                                       subscribers.c.bounces > 0).values(bounces=0))

    # --- reading, export, erasure -------------------------------------------------------------------

    def get(self, subscriber_id: int, email: str | None = None) -> Subscriber | None:
        """By id; with `email`, only if the address still matches (links die when an address is erased)."""
        if not is_storable_id(subscriber_id):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
        if row is None or (email is not None and row.email != email):
            return None
        return _subscriber(row)

    def find(self, email_or_id: str) -> Subscriber | None:
        """By id (digits) or by address, in any letter case; None for anything else."""
        if email_or_id.isascii() and email_or_id.isdigit():
            if not is_storable_id(int(email_or_id)):
                return None
            which = subscribers.c.id == int(email_or_id)
        else:
            try:
                which = subscribers.c.email_hash == email_hash(normalise_email(email_or_id))
            except SubscriberError:
                return None
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers).where(which)).first()
        return _subscriber(row) if row is not None else None

    def is_suppressed(self, email: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(suppressions.c.reason).where(
                suppressions.c.email_hash == email_hash(normalise_email(email)))).first() is not None

    def list(self, *, status: str | None = None, limit: int = 100, offset: int = 0) -> tuple[int, list[Subscriber]]:
        query = select(subscribers)
        count = select(func.count()).select_from(subscribers)
        if status:
            query, count = query.where(subscribers.c.status == status), count.where(subscribers.c.status == status)
        with self.engine.connect() as conn:
            total = conn.execute(count).scalar_one()
            rows = conn.execute(query.order_by(subscribers.c.id).limit(limit).offset(offset))
            return total, [_subscriber(r) for r in rows]

    def export(self, subscriber_id: int) -> dict[str, Any] | None:
        """Everything held about one subscriber, for a data-access request."""
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
            if row is None:
                return None
            sent = conn.execute(select(deliveries.c.edition_id, deliveries.c.status, deliveries.c.sent_at,
                                       deliveries.c.articles)
                                .where(deliveries.c.subscriber_id == subscriber_id).order_by(deliveries.c.id)).all()
        record = {key: _plain(value) for key, value in row._mapping.items()}
        record["deliveries"] = [{"edition_id": d.edition_id, "status": d.status, "sent_at": _plain(d.sent_at),
                                 "articles": d.articles} for d in sent]
        return record

    def erase(self, subscriber_id: int, *, now: datetime) -> bool:
        """Delete the subscriber and their delivery history; keep the address's hash so import can't re-add it."""
        with self.engine.begin() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
            if row is None:
                return False
            conn.execute(delete(deliveries).where(deliveries.c.subscriber_id == subscriber_id))
            conn.execute(delete(subscribers).where(subscribers.c.id == subscriber_id))
            self._suppress(conn, row.email, row.status if row.status in SUPPRESSED else "erased", now)
        return True

    def count_active(self, frequency: str) -> int:
        """How many `confirmed(frequency)` would return, without loading them."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(subscribers).where(*_receiving(frequency))).scalar_one()

    def confirmed(self, frequency: str) -> list[Subscriber]:
        """Who gets this frequency's digest: confirmed, not paused, and not on the suppression list (checked here
        too, so that no send can reach an address that asked to stop, however its row came to say otherwise)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(subscribers).where(*_receiving(frequency)).order_by(subscribers.c.id))
            return [_subscriber(r) for r in rows]

    # --- internals ------------------------------------------------------------------------------------

    @staticmethod
    def _row(conn, subscriber_id: int, email: str):  # type: ignore[no-untyped-def]
        row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
        if row is None or row.email != email:
            raise SubscriberError(f"no subscriber {subscriber_id} with that address (erased?)")
        return row

    @staticmethod
    def _suppress(conn, address: str, reason: str, now: datetime) -> None:  # type: ignore[no-untyped-def]
        key = email_hash(address)
        if conn.execute(select(suppressions.c.reason).where(suppressions.c.email_hash == key)).first() is None:
            conn.execute(suppressions.insert().values(email_hash=key, reason=reason, created_at=now))
        else:
            conn.execute(update(suppressions).where(suppressions.c.email_hash == key).values(reason=reason))


def _receiving(frequency: str) -> tuple[Any, ...]:
    suppressed = select(suppressions.c.email_hash).where(suppressions.c.email_hash == subscribers.c.email_hash)
    return (subscribers.c.status == "confirmed", subscribers.c.paused_at.is_(None),
            subscribers.c.frequency == frequency, ~suppressed.exists())


def _check_choices(frequency: str) -> None:
    if frequency not in FREQUENCIES:
        raise SubscriberError(f"frequency {frequency!r} is not one of {', '.join(FREQUENCIES)}")


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _subscriber(row) -> Subscriber:  # type: ignore[no-untyped-def]
    return Subscriber(id=row.id, email=row.email, name=row.name, status=row.status,
                      categories=tuple(row.categories or ()), frequency=row.frequency, timezone=row.timezone,
                      language=row.language, confirmed_at=row.confirmed_at, paused_at=row.paused_at,
                      unsubscribed_at=row.unsubscribed_at)
