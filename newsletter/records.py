"""A reader's record as plain data, and the pure rules of addresses: what `SubscriberStore` reads and writes, what the
subscription workflow, the edition run and the commands pass around. No I/O: addresses are checked by syntax only
(email-validator, no DNS), and a mailbox's identity is a hash of its lower-cased address.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email

from .errors import SubscriberError

# The reader's choice of breaking-news alerts, kept among their editions (`subscriber_editions`) under this reserved
# name: the edition run's reader query (`confirmed`), the list filters and the export treat it as any edition. Every
# alert is an `editions` row of this name too, so `digest status alerts` and /api/editions report alerts.
ALERTS = "alerts"


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str | None
    status: str
    categories: tuple[str, ...]
    editions: tuple[str, ...]
    timezone: str | None
    language: str | None
    confirmed_at: datetime | None
    public_id: str = ""
    paused_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    ad_consent_at: datetime | None = None  # advertising consent given or last re-confirmed; None: not given

    @property
    def is_active(self) -> bool:
        return self.status == "confirmed" and self.paused_at is None


@dataclass(frozen=True)
class Audience:
    """Whom one run of an edition is for, as a query: the edition's readers (with advertising consent when it
    carries ads), of these time zones (`zones`; None in it: no zone chosen) or already in the run `edition_id`, and not
    sent another run of it within `apart` (the run's time, a span). `zones` None: every zone (a manual send)."""

    edition: str
    ads: bool = False
    zones: tuple[str | None, ...] | None = None
    edition_id: int | None = None
    apart: tuple[datetime, timedelta] | None = None


@dataclass(frozen=True)
class Choices:
    """What a reader picked on the subscribe or preferences form."""

    categories: tuple[str, ...]
    editions: tuple[str, ...]
    name: str | None = None
    language: str | None = None
    timezone: str | None = None
    ads: bool | None = None  # the advertising-consent box: ticked, unticked, or not on the form (None: unchanged)


@dataclass(frozen=True)
class Consent:
    """What a reader agreed to and the exact words they saw: the required notice on the collection and use of
    personal data, and the optional advertising consent (ticked or not)."""

    privacy_text: str
    ads_text: str
    method: str = "form"
    ip_hash: str | None = None
    alerts_text: str = ""  # the words of the breaking-news alerts choice, recorded when it is made or withdrawn


@dataclass(frozen=True)
class LinkOwner:
    """Whom a link names: the opaque id of links made since migration 0011, or the id and address that older links
    carry (accepted until they expire)."""

    public_id: str | None = None
    subscriber_id: int | None = None
    email: str | None = None


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


def new_public_id() -> str:
    """The id links name a reader by: random, so a link tells nothing about whom it belongs to."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class ConsentChange:
    """What a consent change did: `ads` "granted" | "withdrawn" | None (unchanged), for the notice mail (§50⑦)."""

    subscriber: Subscriber
    ads: str | None

def split_list(text: str) -> list[str]:
    """'a, b|c d' -> ['a', 'b', 'c', 'd']: how lists are written in CSV columns and command options."""
    return [item for item in text.replace("|", " ").replace(",", " ").split() if item]
