"""Subscribers: validated addresses with their choices, consent record, pause, and the suppression list.

Addresses are checked and normalised with email-validator (syntax only: no DNS at request or import time). One
mailbox is one subscriber: identity and limits go by `email_hash` (SHA-256 of the address in lower case), so
`Reader@x` and `reader@x` are the same reader, while the address is stored as given, for display.
Nobody is mailed a digest before confirming, and a confirmation link works once: it carries the nonce stored with
the request, which confirming, a newer request or an unsubscribe clears. An address that unsubscribed, bounced, complained or was erased is
*suppressed*: import and admin cannot bring it back, only the person can, through a fresh confirmation. Erasure
keeps only a SHA-256 of the address in `suppressions` so that the next import does not add it again.

Why it is long: `SubscriberStore` is the one writer of the subscribers, their editions, consent records and the
suppression list, and the suppression and consent rules must hold in every write (add, import, confirm, preferences,
unsubscribe, bounces, erasure) inside the same transaction. The record as data and the pure rules of addresses are
`newsletter.records`; the workflows around it (double opt-in, links, notices) are `subscription`, `links` and
`notices`. What is left here is one table family's statements and the row readers they share.
"""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Iterator, Sequence

from sqlalchemy import Engine, cast, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError

from feeds import events
from feeds.core.database import is_storable_id

from .db import (
    consents,
    deliveries,
    editions,
    subscriber_editions,
    subscribers,
    suppressions,
)
from .errors import LinkUsed, RateLimited, SubscriberError
from .records import (
    ALERTS,
    Audience,
    Choices,
    ConfirmationRequest,
    Consent,
    ConsentChange,
    ImportReport,
    LinkOwner,
    Subscriber,
    email_hash,
    new_public_id,
    normalise_email,
    split_list,
)

CONSENT_METHODS = ("form", "import", "admin")
SUPPRESSED = ("unsubscribed", "bounced", "complained")
CONFIRMATION_INTERVAL = timedelta(hours=1)
ID_CHUNK = 500  # readers asked for by id, per statement


@dataclass(frozen=True)
class DeliveryLine:
    """One edition as one reader got it (or did not): what their page lists."""

    edition_id: int
    edition: str
    scheduled_at: datetime
    status: str
    sent_at: datetime | None
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    articles: int


@dataclass(frozen=True)
class ReaderHistory:
    """A reader's bookkeeping beside their choices: the row's times, hard bounces in a row (a delivered mail resets
    them), and their latest deliveries out of `deliveries_total`."""

    created_at: datetime
    hard_bounces: int
    consent_method: str
    confirmation_sent_at: datetime | None
    updated_at: datetime | None
    deliveries_total: int
    deliveries: tuple[DeliveryLine, ...]


class SubscriberStore:
    """Subscribers and their choices. `editions` are the configured edition names: a reader may choose any of them,
    and nothing else (an edition that leaves the configuration keeps its readers' rows; `gazette check` says so)."""

    def __init__(self, engine: Engine, editions: Sequence[str] = ("daily", "weekly")) -> None:
        self.engine = engine
        self.editions = tuple(editions)

    def check_editions(self, chosen: Sequence[str]) -> tuple[str, ...]:
        """The chosen editions, each once: configured ones and the breaking-news alerts (`ALERTS`)."""
        unknown = [e for e in chosen if e not in self.editions and e != ALERTS]
        if unknown:
            raise SubscriberError(f"unknown edition(s) {', '.join(map(repr, unknown))}; configured: "
                                  + ", ".join([*self.editions, ALERTS]))
        if not chosen:
            raise SubscriberError("choose at least one edition")
        return tuple(dict.fromkeys(chosen))

    # --- admin and import -----------------------------------------------------------------------------

    def add(self, email: str, *, categories: Sequence[str], editions: Sequence[str], now: datetime,
            name: str | None = None, confirmed: bool, method: str, consent_text: str | None = None,
            language: str | None = None) -> tuple[str, Subscriber | None]:
        """Add or update one subscriber. Returns ("added" | "updated" | "suppressed", subscriber).

        A suppressed address is left as it is (the subscriber is None when only its hash is left). Advertising
        consent is never given this way: only the reader gives it, on the form.
        """
        address = normalise_email(email)
        chosen = self.check_editions(editions)
        if method not in CONSENT_METHODS:
            raise SubscriberError(f"consent method {method!r} is not one of {', '.join(CONSENT_METHODS)}")
        key = email_hash(address)
        with self.engine.begin() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.email_hash == key)).first()
            if row is not None and row.status in SUPPRESSED:
                return "suppressed", _load(conn, row)
            if row is None and conn.execute(select(suppressions.c.reason).where(
                    suppressions.c.email_hash == key)).first() is not None:
                return "suppressed", None
            values = {"name": name, "categories": list(categories), "language": language, "updated_at": now}
            if row is None:
                new_id = conn.execute(subscribers.insert().values(
                    email=address, email_hash=key, public_id=new_public_id(),
                    status="confirmed" if confirmed else "pending", created_at=now,
                    confirmed_at=now if confirmed else None, consent_method=method, consent_text=consent_text,
                    bounces=0, **values)).inserted_primary_key[0]
                outcome = "added"
            else:
                new_id = row.id
                if confirmed and row.status == "pending":
                    values.update(status="confirmed", confirmed_at=now, consent_method=method, consent_text=consent_text)
                conn.execute(subscribers.update().where(subscribers.c.id == row.id).values(**values))
                outcome = "updated"
            before = _editions_of(conn, new_id) if row is not None else ()
            _set_editions(conn, new_id, chosen)
            if confirmed and consent_text and (row is None or row.status == "pending"):
                _record_consent(conn, new_id, "privacy", True, method, consent_text, None, now)
            if confirmed or (row is not None and row.status == "confirmed"):
                _note_alerts(conn, new_id, before, chosen, method, consent_text or "", None, now)
            stored = conn.execute(select(subscribers).where(subscribers.c.id == new_id)).one()
            return outcome, _load(conn, stored)

    def import_csv(self, text: str, *, known_categories: Iterable[str], now: datetime, confirmed: bool,
                   consent_text: str | None = None,
                   on_row: Callable[[int], None] | None = None) -> ImportReport:
        """CSV with a header: email[,name][,categories][,editions][,alerts] (lists space or | separated; `alerts`
        yes/true/1 adds the breaking-news alerts, as "alerts" among the editions does). A `frequency` column (the
        format before editions) is read as the one edition of that name."""
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
                categories = split_list(row.get("categories", ""))
                unknown = [c for c in categories if c not in known]
                if unknown:
                    raise SubscriberError(f"unknown categories: {', '.join(unknown)}")
                wants_alerts = row.get("alerts", "").lower() in ("1", "true", "yes", "y", "o", "예")
                editions = (split_list(row.get("editions", "")) or split_list(row.get("frequency", ""))
                            or ([] if wants_alerts else [self.editions[0]]))
                if wants_alerts and ALERTS not in editions:
                    editions.append(ALERTS)
                outcome, _ = self.add(row.get("email", ""), categories=categories or sorted(known),
                                      editions=editions, name=row.get("name") or None,
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

    def request_confirmation(self, email: str, now: datetime, name: str | None = None) -> ConfirmationRequest:
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
                            email=address, email_hash=key, public_id=new_public_id(), status="pending",
                            categories=[], created_at=now, consent_method="form", bounces=0, updated_at=now,
                            name=name))
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
                return ConfirmationRequest("manage", _load(conn, stored), None, is_new)
            nonce = secrets.token_urlsafe(12)
            values: dict[str, Any] = {"confirmation_nonce": nonce}
            if name and stored.status == "pending":
                values["name"] = name  # kept here, not in the link: a link carries no personal data
            conn.execute(update(subscribers).where(subscribers.c.id == stored.id).values(**values))
            return ConfirmationRequest("confirm", _load(conn, stored), nonce, is_new)

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

    def confirm(self, subscriber_id: int, public_id: str, choices: Choices, *, nonce: str | None, now: datetime,
                consent: Consent) -> Subscriber:
        """Activate with the choices carried by the confirmation link; records both consents (the required one, and
        advertising given or refused) with the words shown.

        The link's `nonce` must be the one stored by the latest request, and confirming uses it up: a link that
        was used, replaced by a newer one or followed by an unsubscribe raises SubscriberError("used"), so an old
        mail can never bring back an address that asked to stop. A link made before nonces existed (None) still
        confirms a pending subscriber, and nothing else. Confirming twice in a row is harmless.
        """
        chosen = self.check_editions(choices.editions)
        with self.engine.begin() as conn:
            row = self._row(conn, subscriber_id, public_id)
            if row.status == "confirmed" and row.confirmation_nonce is None:
                return _load(conn, row)
            if nonce is None:
                is_valid = row.status == "pending" and row.confirmation_nonce is None
            else:
                is_valid = row.confirmation_nonce is not None and secrets.compare_digest(row.confirmation_nonce, nonce)
            if not is_valid:
                raise LinkUsed(f"this confirmation link of subscriber {subscriber_id} was used or replaced")
            conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(
                status="confirmed", categories=list(choices.categories), name=choices.name or row.name,
                language=choices.language, timezone=choices.timezone, confirmed_at=now,
                unsubscribed_at=None, paused_at=None, bounces=0, consent_method=consent.method,
                consent_text=consent.privacy_text, consent_ip_hash=consent.ip_hash, confirmation_nonce=None,
                ad_consent_at=now if choices.ads else None, ad_reconfirm_sent_at=None, updated_at=now))
            before = _editions_of(conn, row.id) if row.status == "confirmed" else ()
            _set_editions(conn, row.id, chosen)
            _record_consent(conn, row.id, "privacy", True, consent.method, consent.privacy_text, consent.ip_hash, now)
            _record_consent(conn, row.id, "ads", bool(choices.ads), consent.method, consent.ads_text, consent.ip_hash,
                            now)
            _note_alerts(conn, row.id, before, chosen, consent.method, consent.alerts_text, consent.ip_hash, now)
            conn.execute(delete(suppressions).where(suppressions.c.email_hash == row.email_hash))
            confirmed = _load(conn, self._row(conn, subscriber_id, public_id))
            if row.status != "confirmed":
                _record_event(conn, "subscriber.confirmed", confirmed, now, via="confirmation")
            return confirmed

    def update_preferences(self, subscriber_id: int, public_id: str, choices: Choices, *, is_paused: bool,
                           now: datetime, consent: Consent | None = None) -> ConsentChange:
        """Save the preferences form. When the advertising box changed, the change is recorded (with `consent`'s
        words) and reported, so that the reader is told the result (정보통신망법 §50⑦)."""
        chosen = self.check_editions(choices.editions)
        if not choices.categories:
            raise SubscriberError("choose at least one category")
        with self.engine.begin() as conn:
            row = self._row(conn, subscriber_id, public_id)
            paused_at = (row.paused_at or now) if is_paused else None
            values: dict[str, Any] = {"categories": list(choices.categories), "timezone": choices.timezone,
                                      "language": choices.language or row.language, "paused_at": paused_at,
                                      "updated_at": now}
            ads = None
            # Only a subscribed reader gives or withdraws advertising consent here (an old link of someone who left
            # changes their choices, never their consent).
            if row.status == "confirmed" and choices.ads is not None and choices.ads != (row.ad_consent_at is not None):
                ads = "granted" if choices.ads else "withdrawn"
                values.update(ad_consent_at=now if choices.ads else None, ad_reconfirm_sent_at=None)
                _record_consent(conn, row.id, "ads", choices.ads, "form", consent.ads_text if consent else "",
                                consent.ip_hash if consent else None, now)
            conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(**values))
            before = _editions_of(conn, row.id)
            _set_editions(conn, row.id, chosen)
            if row.status == "confirmed":
                _note_alerts(conn, row.id, before, chosen, "form", consent.alerts_text if consent else "",
                             consent.ip_hash if consent else None, now)
            return ConsentChange(_load(conn, self._row(conn, subscriber_id, public_id)), ads)

    def unsubscribe(self, subscriber_id: int, public_id: str, *, now: datetime,
                    reason: str = "unsubscribed", via: str = "link") -> ConsentChange:
        """Stop all mail at once, advertising consent included. Idempotent: the first time is the one recorded.
        A confirmed reader's leaving is in the event log (`via`: how: `link`, `mailto`)."""
        if reason not in SUPPRESSED:
            raise ValueError(reason)
        with self.engine.begin() as conn:
            row = self._row(conn, subscriber_id, public_id)
            ads = None
            if row.status != reason or row.confirmation_nonce is not None or row.ad_consent_at is not None:
                conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(
                    status=reason, unsubscribed_at=row.unsubscribed_at or now, confirmation_nonce=None,
                    ad_consent_at=None, updated_at=now))
            if row.ad_consent_at is not None:
                ads = "withdrawn"
                _record_consent(conn, row.id, "ads", False, reason, "", None, now)
            self._suppress(conn, row.email, reason, now)
            left = _load(conn, self._row(conn, subscriber_id, public_id))
            if row.status == "confirmed":
                _record_event(conn, "subscriber.unsubscribed" if reason == "unsubscribed" else "subscriber.bounced",
                              left, now, via=via, reason=reason)
            return ConsentChange(left, ads)

    def resubscribe(self, subscriber_id: int, public_id: str, *, now: datetime, consent: Consent) -> Subscriber:
        """Back in, from a link only the address's owner received: that link is the confirmation. Advertising
        consent is not brought back: the reader gives it again on the preferences page if they wish."""
        with self.engine.begin() as conn:
            row = self._row(conn, subscriber_id, public_id)
            conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(
                status="confirmed", confirmed_at=now, unsubscribed_at=None, paused_at=None, bounces=0,
                consent_method=consent.method, consent_text=consent.privacy_text, consent_ip_hash=consent.ip_hash,
                updated_at=now))
            _record_consent(conn, row.id, "privacy", True, consent.method, consent.privacy_text, consent.ip_hash, now)
            conn.execute(delete(suppressions).where(suppressions.c.email_hash == row.email_hash))
            back = _load(conn, self._row(conn, subscriber_id, public_id))
            if row.status != "confirmed":
                _record_event(conn, "subscriber.confirmed", back, now, via="resubscribe")
            return back

    # --- advertising consent, asked again every two years (정보통신망법 §50⑧, 시행령 §62-3) ---------------

    def due_for_reconfirmation(self, now: datetime, every: timedelta, limit: int = 500) -> list[Subscriber]:
        """Readers with advertising consent to ask again: `every` after it was given or last kept, and `every` after
        the last question (a reader who does not answer keeps their consent, and is asked again a period later)."""
        due = now - every
        with self.engine.connect() as conn:
            rows = conn.execute(select(subscribers).where(
                subscribers.c.status == "confirmed", subscribers.c.ad_consent_at.is_not(None),
                subscribers.c.ad_consent_at <= due,
                or_(subscribers.c.ad_reconfirm_sent_at.is_(None), subscribers.c.ad_reconfirm_sent_at <= due))
                .order_by(subscribers.c.id).limit(limit)).all()
            return _load_many(conn, rows)

    def mark_reconfirmation_sent(self, subscriber_id: int, now: datetime, text: str) -> None:
        """The question went out: recorded (it is the outcome the law asks to keep), never asked twice a period."""
        with self.engine.begin() as conn:
            conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id)
                         .values(ad_reconfirm_sent_at=now))
            _record_consent(conn, subscriber_id, "ads-check", True, "reconfirm", text, None, now)

    def keep_ads(self, subscriber_id: int, public_id: str, *, now: datetime, text: str,
                 ip_hash: str | None) -> Subscriber:
        """The reader answered the two-yearly question: keep advertising consent; the next question is in two years."""
        with self.engine.begin() as conn:
            row = self._row(conn, subscriber_id, public_id)
            if row.ad_consent_at is not None:
                conn.execute(update(subscribers).where(subscribers.c.id == row.id)
                             .values(ad_consent_at=now, updated_at=now))
                _record_consent(conn, row.id, "ads", True, "reconfirm", text, ip_hash, now)
            return _load(conn, self._row(conn, subscriber_id, public_id))

    def consents(self, subscriber_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(consents).where(consents.c.subscriber_id == subscriber_id)
                                .order_by(consents.c.id)).all()
        return [{k: _plain(v) for k, v in r._mapping.items() if k != "subscriber_id"} for r in rows]

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
            suppressed = None
            if kind == "complaint":
                suppressed = "complained"
                conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(
                    status="complained", unsubscribed_at=row.unsubscribed_at or now, confirmation_nonce=None,
                    ad_consent_at=None, updated_at=now))
                self._suppress(conn, row.email, "complained", now)
            elif kind == "hard":
                bounces = (row.bounces or 0) + 1
                values: dict[str, Any] = {"bounces": bounces, "updated_at": now}
                if bounces >= hard_bounce_limit and row.status == "confirmed":
                    values.update(status="bounced", unsubscribed_at=row.unsubscribed_at or now, confirmation_nonce=None)
                    self._suppress(conn, row.email, "bounced", now)
                    suppressed = "bounced"
                conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(**values))
            found = _load(conn, conn.execute(select(subscribers).where(subscribers.c.id == row.id)).one())
            if suppressed and row.status == "confirmed":
                _record_event(conn, "subscriber.bounced", found, now, via="mail", reason=suppressed)
            return found

    def reset_bounces(self, subscriber_ids: Sequence[int]) -> None:
        """A delivered mail ends a run of hard bounces."""
        if subscriber_ids:
            with self.engine.begin() as conn:
                conn.execute(update(subscribers).where(subscribers.c.id.in_(list(subscriber_ids)),
                                                       subscribers.c.bounces > 0).values(bounces=0))

    # --- reading, export, erasure -------------------------------------------------------------------

    def get(self, subscriber_id: int, public_id: str | None = None) -> Subscriber | None:
        """By id; with `public_id`, only if it still matches (links die when an address is erased)."""
        if not is_storable_id(subscriber_id):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
            if row is None or (public_id is not None and row.public_id != public_id):
                return None
            return _load(conn, row)

    def owner_of(self, link: LinkOwner) -> Subscriber | None:
        """The subscriber a link names, if they are still there (an erased and re-added address is someone new)."""
        with self.engine.connect() as conn:
            if link.public_id is not None:
                row = conn.execute(select(subscribers).where(subscribers.c.public_id == link.public_id)).first()
            elif link.subscriber_id is not None and is_storable_id(link.subscriber_id):
                row = conn.execute(select(subscribers).where(subscribers.c.id == link.subscriber_id)).first()
                if row is not None and row.email != link.email:
                    row = None
            else:
                row = None
            return _load(conn, row) if row is not None else None

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
            return _load(conn, row) if row is not None else None

    def is_suppressed(self, email: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(suppressions.c.reason).where(
                suppressions.c.email_hash == email_hash(normalise_email(email)))).first() is not None

    def list(self, *, status: str | None = None, edition: str | None = None, category: str | None = None,
             search: str | None = None, limit: int = 100, offset: int = 0, after_id: int | None = None,
             before_id: int | None = None, newest_first: bool = False, count_up_to: int | None = None,
             address: str | None = None) -> tuple[int, list[Subscriber]]:
        """A page of subscribers by id, filtered by status, edition, category and a part of the address (any letter
        case; `%` and `_` are letters here, not wildcards) or a whole `address` (its hash: one index probe, where a
        part of an address has to be looked for in every row).

        Paging: `after_id` (those after that id, oldest first: the API's keyset) or `before_id` with `newest_first`
        (the console's), each one indexed range however deep it goes; `offset` still works. Every filter is SQL, so
        a page at a million readers reads a page, not the table. The count is of every match, or, with
        `count_up_to`, of at most that many (the console says "10,000 or more" rather than count a million rows).
        """
        where: list[Any] = []
        if status:
            where.append(subscribers.c.status == status)
        if edition:
            where.append(select(subscriber_editions.c.edition).where(
                subscriber_editions.c.subscriber_id == subscribers.c.id,
                subscriber_editions.c.edition == edition).exists())
        if category:
            where.append(self._has_category(category))
        if search:  # ILIKE on PostgreSQL, where the trigram index serves it; lower() LIKE lower() on SQLite
            escaped = search.replace("/", "//").replace("%", "/%").replace("_", "/_")
            where.append(subscribers.c.email.ilike(f"%{escaped}%", escape="/"))
        if address is not None:
            where.append(subscribers.c.email_hash == email_hash(normalise_email(address)))
        page = list(where)
        if after_id is not None:
            page.append(subscribers.c.id > after_id)
        if before_id is not None:
            page.append(subscribers.c.id < before_id)
        order = subscribers.c.id.desc() if newest_first else subscribers.c.id
        with self.engine.connect() as conn:
            matches = select(subscribers.c.id).where(*where)
            if count_up_to is not None:
                matches = matches.limit(count_up_to)
            total = conn.execute(select(func.count()).select_from(matches.subquery())).scalar_one()
            rows = conn.execute(select(subscribers).where(*page).order_by(order).limit(limit).offset(offset)).all()
            return total, _load_many(conn, rows)

    def _has_category(self, category: str) -> Any:
        """Whether a reader's category list (JSON) holds `category`: the dialect's own JSON test."""
        if self.engine.dialect.name == "postgresql":
            return cast(subscribers.c.categories, JSONB).contains([category])
        chosen = func.json_each(subscribers.c.categories).table_valued("value")
        return select(chosen.c.value).where(chosen.c.value == category).exists()

    def export(self, subscriber_id: int) -> dict[str, Any] | None:
        """Everything held about one subscriber, for a data-access request."""
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
            if row is None:
                return None
            sent = conn.execute(select(deliveries.c.edition_id, deliveries.c.status, deliveries.c.sent_at,
                                       deliveries.c.articles)
                                .where(deliveries.c.subscriber_id == subscriber_id).order_by(deliveries.c.id)).all()
            editions = list(_load(conn, row).editions)
        record = {key: _plain(value) for key, value in row._mapping.items()}
        record["editions"] = editions
        record["alerts"] = ALERTS in editions  # breaking-news alerts asked for
        record["consents"] = self.consents(subscriber_id)
        record["deliveries"] = [{"edition_id": d.edition_id, "status": d.status, "sent_at": _plain(d.sent_at),
                                 "articles": d.articles} for d in sent]
        return record

    def history(self, subscriber_id: int, *, limit: int = 100) -> ReaderHistory | None:
        """What the console shows beside a reader's choices: when the row was made, hard bounces in a row, and the
        latest `limit` deliveries with their edition and why a failed one failed (the newest first)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers.c.created_at, subscribers.c.bounces, subscribers.c.consent_method,
                                      subscribers.c.confirmation_sent_at, subscribers.c.updated_at)
                               .where(subscribers.c.id == subscriber_id)).first()
            if row is None:
                return None
            total = conn.execute(select(func.count()).select_from(deliveries)
                                 .where(deliveries.c.subscriber_id == subscriber_id)).scalar_one()
            sent = conn.execute(
                select(editions.c.id, editions.c.name, editions.c.scheduled_at, deliveries.c.status,
                       deliveries.c.sent_at, deliveries.c.attempts, deliveries.c.last_error,
                       deliveries.c.next_attempt_at, deliveries.c.articles)
                .join(editions, editions.c.id == deliveries.c.edition_id)
                .where(deliveries.c.subscriber_id == subscriber_id)
                .order_by(editions.c.scheduled_at.desc(), deliveries.c.id.desc()).limit(limit)).all()
        return ReaderHistory(
            created_at=row.created_at, hard_bounces=row.bounces or 0, consent_method=row.consent_method,
            confirmation_sent_at=row.confirmation_sent_at, updated_at=row.updated_at, deliveries_total=total,
            deliveries=tuple(DeliveryLine(edition_id=d.id, edition=d.name, scheduled_at=d.scheduled_at,
                                          status=d.status, sent_at=d.sent_at, attempts=d.attempts or 0,
                                          last_error=d.last_error, next_attempt_at=d.next_attempt_at,
                                          articles=d.articles or 0) for d in sent))

    def erase(self, subscriber_id: int, *, now: datetime) -> bool:
        """Delete the subscriber and their delivery history; keep the address's hash so import can't re-add it."""
        with self.engine.begin() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
            if row is None:
                return False
            if row.status == "confirmed":
                _record_event(conn, "subscriber.unsubscribed", _load(conn, row), now, via="erased", reason="erased")
            for table in (deliveries, subscriber_editions, consents):
                conn.execute(delete(table).where(table.c.subscriber_id == subscriber_id))
            conn.execute(delete(subscribers).where(subscribers.c.id == subscriber_id))
            self._suppress(conn, row.email, row.status if row.status in SUPPRESSED else "erased", now)
            events.forget_address(conn, str(subscriber_id), SUBSCRIBER_EVENTS)  # the log keeps no erased address
        return True

    def count_active(self, edition: str, *, ads: bool = False) -> int:
        """How many `confirmed(edition)` would return, without loading them."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(subscribers)
                                .where(*_receiving(edition, ads))).scalar_one()

    def confirmed(self, edition: str, *, ads: bool = False, zones: Sequence[str | None] | None = None,
                  edition_id: int | None = None, ids: Sequence[int] | None = None,
                  apart: tuple[datetime, timedelta] | None = None) -> list[Subscriber]:
        """Who gets this edition: confirmed, not paused, subscribed to it, not on the suppression list (checked here
        too, so that no send can reach an address that asked to stop, however its row came to say otherwise), and
        for an edition with advertising (`ads`), only readers who consented to it.

        `zones`: only readers whose time zone is one of these (None in it: readers who chose none), or who have a
        delivery row in the run `edition_id` already, whatever their zone. `ids`: only these readers. `apart`
        (the run's time, a span): not readers who had another run of this edition closer than the span (a reader who
        moved to a zone whose hour had just passed would otherwise get the edition twice). Each comes with `editions`
        as this one only: a send needs no more, and reading every reader's list would cost a second query over all
        of them. A send reads them a page at a time (`pages`); this list is for a known few (`ids`) and tests."""
        audience = Audience(edition, ads, None if zones is None else tuple(zones), edition_id, apart)
        if ids is not None and len(ids) > ID_CHUNK:  # bound parameters are limited (SQLite: 32,766 a statement)
            return [s for start in range(0, len(ids), ID_CHUNK)
                    for s in self.confirmed(edition, ads=ads, zones=zones, edition_id=edition_id,
                                            ids=ids[start:start + ID_CHUNK], apart=apart)]
        where = self._audience(audience)
        if ids is not None:
            where.append(subscribers.c.id.in_(list(ids)))
        with self.engine.connect() as conn:  # rows turned into subscribers as they come: never both lists at once
            return [_subscriber(r, (edition,)) for r in conn.execute(select(subscribers).where(*where)
                                                                     .order_by(subscribers.c.id))]

    def pages(self, audience: Audience, *, size: int = 1000) -> Iterator[list[Subscriber]]:
        """The audience `size` readers at a time, by id (keyset: each page is one index walk from the last id, so
        the millionth reader costs what the first did, and only one page is ever in memory)."""
        where, last = self._audience(audience), 0
        while True:
            with self.engine.connect() as conn:
                page = [_subscriber(r, (audience.edition,)) for r in conn.execute(
                    select(subscribers).where(*where, subscribers.c.id > last).order_by(subscribers.c.id).limit(size))]
            if not page:
                return
            yield page
            last = page[-1].id

    def _audience(self, audience: Audience) -> list[Any]:
        """The WHERE of `confirmed` and `pages` (see `confirmed`)."""
        where = list(_receiving(audience.edition, audience.ads))
        if audience.apart is not None:
            at, span = audience.apart
            with self.engine.connect() as conn:  # the few runs that close: then one index probe per reader each
                near = conn.execute(select(editions.c.id).where(
                    editions.c.name == audience.edition, editions.c.scheduled_at > at - span,
                    editions.c.scheduled_at < at + span, editions.c.scheduled_at != at)).scalars().all()
            if near:
                where.append(~select(deliveries.c.id).where(deliveries.c.edition_id.in_(near),
                                                            deliveries.c.subscriber_id == subscribers.c.id).exists())
        if audience.zones is not None:
            named = [z for z in audience.zones if z is not None]
            in_zone = [subscribers.c.timezone.in_(named)] if named else []
            if None in audience.zones:
                in_zone.append(subscribers.c.timezone.is_(None))
            if audience.edition_id is not None:
                in_zone.append(select(deliveries.c.id).where(deliveries.c.edition_id == audience.edition_id,
                                                             deliveries.c.subscriber_id == subscribers.c.id).exists())
            where.append(or_(*in_zone) if in_zone else subscribers.c.id.is_(None))
        return where

    def zones(self) -> list[str | None]:
        """The time zones readers chose (None: the site's), for the scheduler: a zone nobody chose costs nothing."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(subscribers.c.timezone).where(subscribers.c.status == "confirmed")
                                     .distinct()).scalars())

    def orphans(self) -> dict[str, int]:
        """Editions that readers receive but the configuration no longer has, with how many readers each."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(subscriber_editions.c.edition, func.count())
                                .join(subscribers, subscribers.c.id == subscriber_editions.c.subscriber_id)
                                .where(subscribers.c.status.in_(("confirmed", "pending")),
                                       subscriber_editions.c.edition.not_in([*self.editions, ALERTS]))
                                .group_by(subscriber_editions.c.edition)).all()
        return {edition: count for edition, count in rows}

    # --- internals ------------------------------------------------------------------------------------

    @staticmethod
    def _row(conn, subscriber_id: int, public_id: str):  # type: ignore[no-untyped-def]
        row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
        if row is None or row.public_id != public_id:
            raise SubscriberError(f"no subscriber {subscriber_id} with that link (erased?)")
        return row

    @staticmethod
    def _suppress(conn, address: str, reason: str, now: datetime) -> None:  # type: ignore[no-untyped-def]
        key = email_hash(address)
        if conn.execute(select(suppressions.c.reason).where(suppressions.c.email_hash == key)).first() is None:
            conn.execute(suppressions.insert().values(email_hash=key, reason=reason, created_at=now))
        else:
            conn.execute(update(suppressions).where(suppressions.c.email_hash == key).values(reason=reason))


def _receiving(edition: str, ads: bool) -> tuple[Any, ...]:
    suppressed = select(suppressions.c.email_hash).where(suppressions.c.email_hash == subscribers.c.email_hash)
    chose = select(subscriber_editions.c.edition).where(subscriber_editions.c.subscriber_id == subscribers.c.id,
                                                        subscriber_editions.c.edition == edition)
    where = (subscribers.c.status == "confirmed", subscribers.c.paused_at.is_(None), chose.exists(),
             ~suppressed.exists())
    return (*where, subscribers.c.ad_consent_at.is_not(None)) if ads else where


def _set_editions(conn, subscriber_id: int, editions: Sequence[str]) -> None:  # type: ignore[no-untyped-def]
    conn.execute(delete(subscriber_editions).where(subscriber_editions.c.subscriber_id == subscriber_id))
    conn.execute(subscriber_editions.insert(), [{"subscriber_id": subscriber_id, "edition": e} for e in editions])


def _editions_of(conn, subscriber_id: int) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    return tuple(conn.execute(select(subscriber_editions.c.edition)
                              .where(subscriber_editions.c.subscriber_id == subscriber_id)).scalars())


def _note_alerts(conn, subscriber_id: int, before: Sequence[str], after: Sequence[str], method: str,  # type: ignore[no-untyped-def]
                 text: str, ip_hash: str | None, now: datetime) -> None:
    """The breaking-news alerts choice, asked for or withdrawn, kept with the consents (kind "alerts") and the words
    shown: alerts are mail the reader asked for, as each edition is, and the record says when and how."""
    if (ALERTS in before) != (ALERTS in after):
        _record_consent(conn, subscriber_id, ALERTS, ALERTS in after, method, text, ip_hash, now)


SUBSCRIBER_EVENTS = ("subscriber.confirmed", "subscriber.unsubscribed", "subscriber.bounced")


def _record_event(conn, type: str, reader: Subscriber, now: datetime, *, via: str,  # type: ignore[no-untyped-def]
                  reason: str | None = None) -> None:
    """A reader's coming or going, in the event log, in the transaction that made it (`feeds.events`): the row id,
    the address (the newsroom's systems match readers by it; erasure removes it from the log), editions and
    categories; never a token."""
    data = {"subscriber_id": reader.id, "email": reader.email, "editions": list(reader.editions),
            "categories": list(reader.categories), "language": reader.language, "via": via}
    if reason is not None:
        data["reason"] = reason
    if via == "erased":
        del data["email"]
    events.record(conn, type, str(reader.id), now, data)


def _record_consent(conn, subscriber_id: int, kind: str, granted: bool, method: str, text: str,  # type: ignore[no-untyped-def]
                    ip_hash: str | None, now: datetime) -> None:
    conn.execute(consents.insert().values(subscriber_id=subscriber_id, kind=kind, granted=granted, method=method,
                                          text=text, ip_hash=ip_hash, created_at=now))




def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _load(conn, row) -> Subscriber:  # type: ignore[no-untyped-def]
    return _load_many(conn, [row])[0]


def _load_many(conn, rows) -> list[Subscriber]:  # type: ignore[no-untyped-def]
    """Subscribers with their editions (one query for the lot)."""
    chosen: dict[int, list[str]] = {row.id: [] for row in rows}
    if chosen:
        for subscriber_id, edition in conn.execute(
                select(subscriber_editions.c.subscriber_id, subscriber_editions.c.edition)
                .where(subscriber_editions.c.subscriber_id.in_(list(chosen)))
                .order_by(subscriber_editions.c.subscriber_id, subscriber_editions.c.edition)):
            chosen[subscriber_id].append(edition)
    return [_subscriber(row, tuple(chosen[row.id])) for row in rows]


def _subscriber(row, editions: tuple[str, ...]) -> Subscriber:  # type: ignore[no-untyped-def]
    return Subscriber(id=row.id, email=row.email, name=row.name, status=row.status,
                      categories=tuple(row.categories or ()), editions=editions, timezone=row.timezone,
                      language=row.language, confirmed_at=row.confirmed_at, public_id=row.public_id,
                      paused_at=row.paused_at, unsubscribed_at=row.unsubscribed_at, ad_consent_at=row.ad_consent_at)
