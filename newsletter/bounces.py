"""Bounce intake: delivery status notifications (RFC 3464), complaint reports (ARF, RFC 5965), mailto unsubscribes.

Anyone can mail the bounce folder, so a report is believed only about a message we can show we sent: its signed
tag (`verp`: in the return path the report came back to, or in the quoted Message-ID), or the signed unsubscribe
token of the quoted List-Unsubscribe. Either names the subscriber; the addresses a report names are not trusted.
Complaint reports from the feedback loops listed in `[mail] complaint_senders` are believed without a tag (some
redact the original). One report counts once, whatever number of recipient blocks it holds: we send every message
to one recipient.

`classify(raw, rules)` is pure: the bytes of one mail -> the events it carries, or `Unrecognised` with the reason.
`parse_webhook(payload)` does the same for a provider's webhook JSON. `apply_event` hands one event to the
`SubscriberStore`; `process_folder` is the edge that reads a maildir, applies what it finds and files each mail
into a Maildir++ sub-folder (`.processed`, `.unrecognised`), so no mail is read twice and none is lost.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr
from mailbox import Maildir
from pathlib import Path
from typing import Any, Iterable

from .errors import NewsletterError, SubscriberError, TokenError
from .subscribers import SubscriberStore
from .tokens import Tokens
from .verp import TagCodec

KINDS = ("hard", "soft", "complaint", "unsubscribe")
COMPLAINT_TYPES = ("abuse", "fraud")  # RFC 5965 §7.3; "not-spam", "virus", "auth-failure" ask nothing of us
MAX_MAIL_BYTES = 10_000_000
MAX_WEBHOOK_EVENTS = 1000
_STATUS = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")
_SMTP_CODE = re.compile(r"^\s*([245])\d\d\b")
_TOKEN = r"([A-Za-z0-9_.\-]{16,})"  # itsdangerous' URL-safe alphabet
_UNSUBSCRIBE_SUBJECT = re.compile(rf"^\s*unsubscribe(?:\s+|%20){_TOKEN}\s*$", re.IGNORECASE)
_LINK_TOKEN = re.compile(rf"/unsubscribe/{_TOKEN}|subject=unsubscribe%20{_TOKEN}", re.IGNORECASE)


@dataclass(frozen=True)
class BounceEvent:
    """What one report says, and about whom.

    `subscriber_id` comes from our signed tag, `token` from the quoted List-Unsubscribe: each names the subscriber
    for sure. `recipient` is the address the report names; it is acted on only when `is_vouched` (a provider's
    authenticated webhook, a configured feedback loop). For "unsubscribe" the token is the request itself and the
    recipient only the requester's From.
    """

    kind: str  # hard | soft | complaint | unsubscribe
    recipient: str
    status: str | None = None  # the RFC 3463 code, e.g. "5.1.1"
    reason: str = ""
    token: str | None = None
    subscriber_id: int | None = None
    is_vouched: bool = False


@dataclass(frozen=True)
class IntakeRules:
    """What intake needs besides the mail: how to read our tags and whom to believe."""

    tags: TagCodec
    unsubscribe_address: str | None = None  # an unsubscribe request must be addressed to it
    complaint_senders: tuple[str, ...] = ()  # addresses or @domains of feedback loops believed without a tag

    def is_feedback_loop(self, sender: str) -> bool:
        sender = sender.lower()
        return any(sender == s or (s.startswith("@") and sender.endswith(s)) for s in self.complaint_senders)


@dataclass(frozen=True)
class Unrecognised:
    reason: str


@dataclass(frozen=True)
class FolderReport:
    applied: dict[str, int] = field(default_factory=dict)  # per kind
    unknown: int = 0  # events about addresses we do not have (or no longer have)
    ignored: int = 0  # recognised, nothing to do: a "delivered" DSN, a "not-spam" report
    unrecognised: tuple[tuple[str, str], ...] = ()  # (file, reason): filed in .unrecognised for a person
    failed: tuple[tuple[str, str], ...] = ()  # (file, error): left where it was, tried again next run

    def summary(self) -> str:
        counts = ", ".join(f"{self.applied.get(kind, 0)} {kind}" for kind in KINDS)
        lines = [f"{counts}; {self.unknown} unknown recipients, {self.ignored} ignored, "
                 f"{len(self.unrecognised)} unrecognised, {len(self.failed)} failed"]
        lines += [f"unrecognised {name}: {reason}" for name, reason in self.unrecognised]
        lines += [f"failed {name}: {reason}" for name, reason in self.failed]
        return "\n".join(lines)


# --- parsing (pure) ---------------------------------------------------------------------------------------

def classify(raw: bytes, rules: IntakeRules) -> tuple[BounceEvent, ...] | Unrecognised:
    """The events one mail carries (at most one; empty: recognised, nothing to do). Never raises."""
    if len(raw) > MAX_MAIL_BYTES:
        return Unrecognised(f"larger than {MAX_MAIL_BYTES} bytes")
    try:
        return _classify(message_from_bytes(raw, policy=policy.default), rules)
    except Exception as exc:  # the stdlib parser has crashed on hostile mail before; one mail must not stop a batch
        return Unrecognised(f"unreadable: {type(exc).__name__}: {exc}")


def _classify(message: Message, rules: IntakeRules) -> tuple[BounceEvent, ...] | Unrecognised:
    parts: dict[str, Message] = {}
    for part in message.walk():
        parts.setdefault(part.get_content_type(), part)  # the outermost of each type, not the embedded original's
    status_part = parts.get("message/delivery-status") or parts.get("message/global-delivery-status")
    original = _original(parts)
    if status_part is not None:
        return _dsn(_field_blocks(status_part), message, original, rules)
    if "message/feedback-report" in parts:
        return _arf(_field_blocks(parts["message/feedback-report"]), message, original, rules)
    match = _UNSUBSCRIBE_SUBJECT.match(str(message.get("subject", "")))
    if match:
        addressed = {a.lower() for _, a in getaddresses([str(v) for h in ("to", "cc", "delivered-to", "x-original-to")
                                                          for v in message.get_all(h, [])])}
        if rules.unsubscribe_address and rules.unsubscribe_address.lower() not in addressed:
            return Unrecognised(f"asks to unsubscribe but is not addressed to {rules.unsubscribe_address}")
        return (BounceEvent("unsubscribe", parseaddr(str(message.get("from", "")))[1], reason="mailto unsubscribe",
                            token=match[1]),)
    return Unrecognised("not a delivery status notification, complaint report or unsubscribe request")


_NOT_TIED = "not tied to a message we sent (no signed return path or Message-ID, no unsubscribe token)"


def _tie(message: Message, blocks: list[Message], original: Message | None,
         rules: IntakeRules) -> tuple[int | None, str | None, bool]:
    """(subscriber id from our tag, unsubscribe token, whether the tag is a share's): what ties a report to us."""
    texts = [str(v) for h in ("to", "delivered-to", "x-original-to", "envelope-to", "x-envelope-to")
             for v in message.get_all(h, [])]
    texts += [str(v) for block in blocks[:1] for v in block.values()]  # the per-message block (X-Postfix-Sender)
    if original is not None:
        texts += [str(v) for h in ("message-id", "return-path", "references") for v in original.get_all(h, [])]
    tag = rules.tags.find(*texts)
    token = _token_in(original)
    if tag is not None and tag.kind in ("d", "n"):
        return tag.subscriber_id, token, False
    return None, token, tag is not None


def _dsn(blocks: list[Message], message: Message, original: Message | None,
         rules: IntakeRules) -> tuple[BounceEvent, ...] | Unrecognised:
    recipients = [b for b in blocks if b.get("final-recipient") or b.get("original-recipient")]
    if not recipients:
        return Unrecognised("delivery status notification without a recipient")
    found: list[BounceEvent] = []
    fallback = _original_recipient(original)
    for block in recipients:
        action = str(block.get("action", "")).strip().lower().split(" ")[0]
        if action in ("delivered", "relayed", "expanded"):
            continue  # a success notice
        diagnostic = " ".join(str(block.get("diagnostic-code", "")).split())
        detail = diagnostic.partition(";")[2].strip() or diagnostic
        status = _STATUS.search(str(block.get("status", ""))) or _STATUS.search(detail)
        code_class = status[1] if status else (m[1] if (m := _SMTP_CODE.match(detail)) else None)
        if action == "delayed" or code_class == "4":
            kind = "soft"
        elif action == "failed" or code_class == "5":
            kind = "hard"  # "failed" is final (RFC 3464 §2.3.3), whatever the status says beyond 4.x.x
        else:
            continue
        # Original-Recipient is the address as we gave it; Final-Recipient may be after the far side's aliasing.
        recipient = _typed_address(block.get("original-recipient")) or _typed_address(block.get("final-recipient"))
        found.append(BounceEvent(kind, recipient or fallback, status[0] if status else None, detail[:500]))
    if not found:
        return ()
    subscriber_id, token, is_share = _tie(message, blocks, original, rules)
    if is_share:
        return ()  # a shared article's recipient is nobody we keep
    if subscriber_id is None and token is None:
        return Unrecognised(_NOT_TIED)
    # We send each message to one recipient: however many blocks, the report counts once, as its worst block.
    worst = next((e for e in found if e.kind == "hard"), found[0])
    return (BounceEvent(worst.kind, worst.recipient, worst.status, worst.reason, token, subscriber_id),)


def _arf(blocks: list[Message], message: Message, original: Message | None,
         rules: IntakeRules) -> tuple[BounceEvent, ...] | Unrecognised:
    report = next((b for b in blocks if b.get("feedback-type")), None)
    if report is None:
        return Unrecognised("feedback report without a Feedback-Type")
    feedback_type = str(report["feedback-type"]).strip().lower()
    if feedback_type not in COMPLAINT_TYPES:
        return ()
    # Original-Rcpt-To is the envelope recipient; the embedded To is next best (Microsoft and Yahoo may redact
    # both, which leaves our tag in the Message-ID and the token of our own List-Unsubscribe header).
    recipient = _bare(str(report.get("original-rcpt-to", ""))) or _original_recipient(original)
    agent = " ".join(str(report.get("user-agent", "")).split())
    reason = f"{feedback_type} report{f' from {agent}' if agent else ''}"
    subscriber_id, token, is_share = _tie(message, blocks, original, rules)
    if is_share:
        return ()
    if subscriber_id is not None or token is not None:
        return (BounceEvent("complaint", recipient, None, reason, token, subscriber_id),)
    sender = parseaddr(str(message.get("from", "")))[1]
    if not rules.is_feedback_loop(sender):
        return Unrecognised(f"complaint from {sender or 'nobody'}, not a configured feedback loop, and "
                            + _NOT_TIED)
    if not recipient:
        return Unrecognised("complaint report that names no recipient (redacted, and not tied to our mail)")
    return (BounceEvent("complaint", recipient, None, reason, is_vouched=True),)


def _field_blocks(part: Message) -> list[Message]:
    """The header blocks of a report part, whichever way the parser handed them over."""
    payload = part.get_payload()
    blocks: list[Message] = []
    texts: list[str] = []
    if isinstance(payload, list):  # message/delivery-status: one Message per block; other message/*: one
        for item in payload:
            blocks.append(item)
            if isinstance(body := item.get_payload(), str):
                texts.append(body)
    else:  # text/plain or encoded: parse the blocks ourselves
        data = part.get_payload(decode=True)
        texts.append(data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload))
    for text in texts:
        blocks += [HeaderParser(policy=policy.default).parsestr(chunk.strip() + "\n")
                   for chunk in re.split(r"\r?\n[ \t]*\r?\n", text) if chunk.strip()]
    return blocks


def _original(parts: dict[str, Message]) -> Message | None:
    if "text/rfc822-headers" in parts:
        return HeaderParser(policy=policy.default).parsestr(str(parts["text/rfc822-headers"].get_content()))
    for kind in ("message/rfc822", "message/global", "message/global-headers"):
        payload = parts[kind].get_payload() if kind in parts else None
        if isinstance(payload, list) and payload:
            return payload[0]
    return None


def _original_recipient(original: Message | None) -> str:
    if original is None:
        return ""
    found = [a for _, a in getaddresses([str(v) for v in original.get_all("to", [])]) if "@" in a]
    return found[0] if len(found) == 1 else ""  # a redacted or many-recipient To names nobody for sure


def _token_in(original: Message | None) -> str | None:
    match = _LINK_TOKEN.search(str(original.get("list-unsubscribe", ""))) if original is not None else None
    return (match[1] or match[2]) if match else None


def _typed_address(value: Any) -> str:
    """"rfc822; kim@example.com" -> the address (RFC 3464 §2.3.1; utf-8 is RFC 6533's type)."""
    kind, _, address = str(value or "").partition(";")
    return _bare(address) if kind.strip().lower() in ("rfc822", "utf-8") else ""


def _bare(text: str) -> str:
    address = text.strip().strip("<>").strip()
    return address if "@" in address and not re.search(r"[\s<>,;]", address) else ""


def parse_webhook(payload: Any) -> tuple[list[BounceEvent], list[str]]:
    """A webhook body (one event or a list) -> the events and, per bad item, why it was left out.

    Raises ValueError when the body as a whole is not one of those shapes.
    """
    items = payload if isinstance(payload, list) else [payload] if isinstance(payload, dict) else None
    if items is None:
        raise ValueError("the body must be a JSON object or a list of them")
    if len(items) > MAX_WEBHOOK_EVENTS:
        raise ValueError(f"at most {MAX_WEBHOOK_EVENTS} events per request")
    read = [_webhook_event(item) for item in items]
    return ([e for e in read if isinstance(e, BounceEvent)],
            [f"event {n}: {e}" for n, e in enumerate(read, 1) if isinstance(e, str)])


def _webhook_event(item: Any) -> BounceEvent | str:
    """One event, or why it is not one."""
    if not isinstance(item, dict):
        return "not an object"
    address, kind, permanent, reason = (item.get(k) for k in ("email", "type", "permanent", "reason"))
    if not isinstance(address, str) or len(address) > 320 or not _bare(address):
        return "'email' must be an address"
    if kind not in ("bounce", "complaint"):
        return "'type' must be \"bounce\" or \"complaint\""
    if kind == "bounce" and not isinstance(permanent, bool):
        return "a bounce needs 'permanent': true (hard) or false (soft)"
    if reason is not None and not isinstance(reason, str):
        return "'reason' must be a string"
    which = "complaint" if kind == "complaint" else "hard" if permanent else "soft"
    # The webhook's own authentication (the admin token) vouches for the addresses it names.
    return BounceEvent(which, _bare(address), reason=" ".join((reason or "").split())[:500], is_vouched=True)


# --- applying (I/O) ---------------------------------------------------------------------------------------

def apply_event(event: BounceEvent, *, store: SubscriberStore, tokens: Tokens, now: datetime,
                hard_bounce_limit: int) -> tuple[str, str]:
    """("applied" | "unknown" | "rejected", detail). Rejected: nothing ties the event to our mail, or its token
    is not ours or has expired."""
    subscriber_id = event.subscriber_id
    if subscriber_id is None and event.token:
        try:
            owner = tokens.subscriber_of("unsubscribe", event.token)
        except TokenError as exc:
            return "rejected", str(exc)
        subscriber = store.owner_of(owner)
        if subscriber is None:
            return "unknown", "the subscriber of that link is no longer there (erased)"
        if event.kind == "unsubscribe":
            if subscriber.status in ("confirmed", "pending"):  # like the page: a bounced address stays "bounced"
                try:
                    store.unsubscribe(subscriber.id, subscriber.public_id, now=now, via="mailto")
                except SubscriberError as exc:  # erased in between
                    return "unknown", str(exc)
            return "applied", subscriber.email
        subscriber_id = subscriber.id
    if event.kind == "unsubscribe":
        return "rejected", "an unsubscribe request needs its token"
    if subscriber_id is not None:
        found = store.record_bounce_of(subscriber_id, kind=event.kind, now=now, hard_bounce_limit=hard_bounce_limit)
        return ("applied", found.email) if found is not None else ("unknown", f"subscriber {subscriber_id}")
    if not event.is_vouched:
        return "rejected", _NOT_TIED
    if not event.recipient:
        return "rejected", "names no recipient"
    if store.record_bounce(event.recipient, kind=event.kind, now=now, hard_bounce_limit=hard_bounce_limit) is None:
        return "unknown", event.recipient
    return "applied", event.recipient


def process_folder(folder: Path, store: SubscriberStore, tokens: Tokens, now: datetime, hard_bounce_limit: int,
                   rules: IntakeRules) -> FolderReport:
    """Apply every mail in the maildir `folder` (new/ and cur/), then file it away.

    Applied and ignored mails go to `.processed` (read), unrecognised ones and requests with a bad token to
    `.unrecognised` (unread, for a person). A mail whose event could not be stored stays where it is.
    """
    if not all((folder / sub).is_dir() for sub in ("cur", "new", "tmp")):
        raise NewsletterError(f"{folder} is not a maildir (it needs cur/, new/ and tmp/)")
    inbox = Maildir(folder, factory=None, create=False)
    for name in ("processed", "unrecognised"):
        inbox.add_folder(name)  # Maildir++: folder/.name, which mail clients show as a sub-folder
    processed, unrecognised = folder / ".processed", folder / ".unrecognised"
    applied = dict.fromkeys(KINDS, 0)
    unknown = ignored = 0
    problems: list[tuple[str, str]] = []
    failed: list[tuple[str, str]] = []
    for path in _mails(folder):
        try:
            found = classify(path.read_bytes(), rules)
            outcomes = [] if isinstance(found, Unrecognised) else [
                (event.kind, apply_event(event, store=store, tokens=tokens, now=now,
                                         hard_bounce_limit=hard_bounce_limit)) for event in found]
            rejected = [detail for _, (outcome, detail) in outcomes if outcome == "rejected"]
            if isinstance(found, Unrecognised) or rejected:
                problems.append((path.name, found.reason if isinstance(found, Unrecognised) else "; ".join(rejected)))
                _move(path, unrecognised, seen=False)
            else:
                _move(path, processed, seen=True)
        except Exception as exc:  # a database or disk error: this mail waits for the next run, the rest go on
            failed.append((path.name, f"{type(exc).__name__}: {exc}"))
            continue
        if not outcomes and not isinstance(found, Unrecognised):
            ignored += 1
        for kind, (outcome, _) in outcomes:
            if outcome == "applied":
                applied[kind] += 1
            elif outcome == "unknown":
                unknown += 1
    return FolderReport(applied=applied, unknown=unknown, ignored=ignored, unrecognised=tuple(problems),
                        failed=tuple(failed))


def _mails(folder: Path) -> Iterable[Path]:
    for sub in ("new", "cur"):  # tmp/ holds mails still being delivered
        yield from sorted(p for p in (folder / sub).iterdir() if p.is_file() and not p.name.startswith("."))


def _move(path: Path, target: Path, *, seen: bool) -> None:
    """One rename, so at every moment the mail is in exactly one place (same file system: a sub-folder)."""
    unique = path.name.split(":", 1)[0]  # the part of a maildir name before ":2,<flags>"
    destination = target / "cur" / f"{unique}:2,S" if seen else target / "new" / unique
    if destination.exists():
        raise NewsletterError(f"{destination} exists already")
    os.rename(path, destination)
