"""Subscribers: validated addresses with their categories, frequency and consent record.

Addresses are checked and normalised with email-validator (syntax only: no DNS at request or import time).
Import is row by row: a bad row is reported with its line number and never stops the file.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Sequence

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Engine, select

from .db import subscribers
from .errors import SubscriberError

FREQUENCIES = ("daily", "weekly")
CONSENT_METHODS = ("form", "import", "admin")


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
            lines.append("suppressed (unsubscribed, bounced or complained; they must confirm again) on lines "
                         + ", ".join(map(str, self.suppressed)))
        lines += [f"line {number}: {reason}" for number, reason in self.invalid]
        return "\n".join(lines)


def normalise_email(address: str) -> str:
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise SubscriberError(f"{address!r} is not a valid address: {exc}") from None


class SubscriberStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, email: str, *, categories: Sequence[str], frequency: str, now: datetime, name: str | None = None,
            confirmed: bool, method: str, consent_text: str | None = None, language: str | None = None) -> tuple[str, Subscriber]:
        """Add or update one subscriber. Returns ("added" | "updated" | "suppressed", subscriber).

        An address that left (unsubscribed, bounced, complained) is not re-activated here: it is
        "suppressed" and needs a fresh confirmation through the subscribe form.
        """
        address = normalise_email(email)
        if frequency not in FREQUENCIES:
            raise SubscriberError(f"frequency {frequency!r} is not one of {', '.join(FREQUENCIES)}")
        if method not in CONSENT_METHODS:
            raise SubscriberError(f"consent method {method!r} is not one of {', '.join(CONSENT_METHODS)}")
        with self.engine.begin() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.email == address)).first()
            if row is not None and row.status in ("unsubscribed", "bounced", "complained"):
                return "suppressed", _subscriber(row)
            values = {"name": name, "categories": list(categories), "frequency": frequency, "language": language}
            if row is None:
                status = "confirmed" if confirmed else "pending"
                new_id = conn.execute(subscribers.insert().values(
                    email=address, status=status, created_at=now, confirmed_at=now if confirmed else None,
                    consent_method=method, consent_text=consent_text, **values)).inserted_primary_key[0]
                outcome = "added"
            else:
                new_id = row.id
                if confirmed and row.status == "pending":
                    values.update(status="confirmed", confirmed_at=now)
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

    def confirmed(self, frequency: str) -> list[Subscriber]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(subscribers).where(subscribers.c.status == "confirmed",
                                                          subscribers.c.frequency == frequency)
                                .order_by(subscribers.c.id))
            return [_subscriber(r) for r in rows]


def _subscriber(row) -> Subscriber:  # type: ignore[no-untyped-def]
    return Subscriber(id=row.id, email=row.email, name=row.name, status=row.status,
                      categories=tuple(row.categories or ()), frequency=row.frequency, timezone=row.timezone,
                      language=row.language, confirmed_at=row.confirmed_at)
