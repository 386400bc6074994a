"""Bounce intake: DSNs, complaint reports and mailto unsubscribes classified; a real maildir processed into the
store; the webhook over HTTP and the command, both in-process (`InProcessClient`, `run_gazette`).

The mails in tests/data/bounces/ are shaped like what Postfix, Gmail, Yahoo and Microsoft send back to our VERP
return path. Their `@@TAG@@` stands for the signed tag of the message we sent (in the return path and the quoted
Message-ID), `@@TOKEN@@` for the unsubscribe token our List-Unsubscribe header carried; tests put real ones (or
forged ones) there. The attacks on intake (forged reports, forged tags, counting a report twice) are in
tests/security/test_bounce_forgery.py.
"""

from __future__ import annotations

import mailbox
import random
from pathlib import Path

import pytest

from newsletter.settings import load_settings
from newsletter.bounces import (BounceEvent, IntakeRules, Unrecognised, apply_event, classify, parse_webhook,
                                process_folder)
from newsletter.errors import NewsletterError
from newsletter.subscribers import SubscriberStore
from newsletter.tokens import Tokens
from newsletter.verp import TagCodec
from tests.conftest import DATA, NOW, Clock, CommandResult, InProcessClient, migrated_sqlite_url, run_gazette, write_config

BOUNCES = DATA / "bounces"
SIGNING_KEY = "test-signing-key-0123456789"  # the one in tests/conftest.py's configuration
UNSUBSCRIBE = "unsubscribe@example.com"
FAKE_TOKEN = "eyJzIjo3LCJlIjoieEB5LnoifQ.Z0S1hA.not-a-real-signature"
CODEC = TagCodec(SIGNING_KEY, "bounce@example.com")  # the configuration's From is news@example.com
RULES = IntakeRules(CODEC, UNSUBSCRIBE)
TAG7 = CODEC.digest(1, 7)  # edition 1, subscriber 7


def mail(name: str, token: str = FAKE_TOKEN, tag: str = TAG7) -> bytes:
    return (BOUNCES / name).read_bytes().replace(b"@@TOKEN@@", token.encode()).replace(b"@@TAG@@", tag.encode())


def report(*, status_block: str, recipients: str = "", tag: str | None = TAG7) -> bytes:
    """A minimal multipart/report DSN around the given per-recipient fields, sent to our return path."""
    to = f"To: {CODEC.envelope_from(tag)}\n" if tag else ""
    return (f"From: MAILER-DAEMON@mx.example.com\n{to}Subject: Delivery Status Notification\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n--b\n"
            f"Content-Type: text/plain\n\nsee below\n--b\nContent-Type: message/delivery-status\n\n"
            f"Reporting-MTA: dns; mx.example.com\n\n{status_block}\n{recipients}--b--\n").encode()


def feedback(feedback_type: str, *, sender: str = "fbl@isp.example", tag: str | None = TAG7) -> bytes:
    original = (f"--b\nContent-Type: text/rfc822-headers\n\nFrom: news@example.com\nTo: kim@example.com\n"
                f"Message-ID: {CODEC.message_id(tag, 'example.com')}\n\n") if tag else ""
    return (f"From: {sender}\nSubject: report\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\n\n--b\n"
            f"Content-Type: text/plain\n\nreport\n--b\nContent-Type: message/feedback-report\n\n"
            f"Feedback-Type: {feedback_type}\nUser-Agent: Test/1\nVersion: 1\nOriginal-Rcpt-To: kim@example.com\n\n"
            f"{original}--b--\n").encode()


# --- classify (pure) ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("case", "raw", "expected"), [
    ("postfix hard bounce 5.1.1", mail("postfix-hard-5.1.1.eml"), [("hard", "kim.gone@example.net", "5.1.1", 7)]),
    ("postfix delayed, mailbox full 4.2.2", mail("postfix-soft-4.2.2.eml"),
     [("soft", "lee.full@example.org", "4.2.2", 7)]),
    ("gmail no such user", mail("gmail-5.1.1.eml"), [("hard", "park.nobody@gmail.com", "5.1.1", 7)]),
    ("yahoo ARF abuse", mail("arf-yahoo-abuse.eml"), [("complaint", "choi.reader@yahoo.com", None, 7)]),
    ("microsoft ARF, recipient redacted", mail("arf-microsoft-redacted.eml"), [("complaint", "", None, 7)]),
    ("mailto unsubscribe", mail("unsubscribe-mailto.eml"), [("unsubscribe", "jung.reader@gmail.com", None, None)]),
    ("failed, 4.x.x status: soft", report(status_block="Final-Recipient: rfc822; a@example.net\nAction: failed\n"
                                                       "Status: 4.4.7\n"), [("soft", "a@example.net", "4.4.7", 7)]),
    ("no Status, code in the diagnostic", report(
        status_block="Final-Recipient: rfc822;<b@example.net>\nAction: failed\n"
                     "Diagnostic-Code: smtp; 554 5.7.1 rejected by policy\n"), [("hard", "b@example.net", "5.7.1", 7)]),
    ("original recipient wins over final", report(
        status_block="Original-Recipient: rfc822;kim@example.com\nFinal-Recipient: rfc822; kim.forward@example.org\n"
                     "Action: failed\nStatus: 5.2.1\n"), [("hard", "kim@example.com", "5.2.1", 7)]),
    ("two blocks in one DSN: one event, the worst", report(
        status_block="Final-Recipient: rfc822; a@example.net\nAction: delayed\nStatus: 4.7.0\n",
        recipients="Final-Recipient: rfc822; c@example.net\nAction: failed\nStatus: 5.1.1\n\n"),
     [("hard", "c@example.net", "5.1.1", 7)]),
    ("success notice: nothing to do", report(
        status_block="Final-Recipient: rfc822; a@example.net\nAction: delivered\nStatus: 2.0.0\n"), []),
    ("a shared article's bounce concerns nobody we keep", report(
        status_block="Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1\n", tag=CODEC.share()), []),
    ("not-spam feedback: nothing to do", feedback("not-spam"), []),
    ("fraud feedback is a complaint", feedback("fraud"), [("complaint", "kim@example.com", None, 7)]),
])
def test_classify(case: str, raw: bytes, expected: list[tuple[str, str, str | None, int | None]]) -> None:
    found = classify(raw, RULES)
    assert isinstance(found, tuple), found
    assert [(e.kind, e.recipient, e.status, e.subscriber_id) for e in found] == expected


def test_classify_keeps_reason_and_the_originals_token() -> None:
    (hard,) = classify(mail("postfix-hard-5.1.1.eml"), RULES)  # type: ignore[misc]
    assert hard.reason == ("550 5.1.1 <kim.gone@example.net>: Recipient address rejected: User unknown in virtual "
                           "mailbox table")
    assert hard.token == FAKE_TOKEN  # from the embedded List-Unsubscribe
    (complaint,) = classify(mail("arf-microsoft-redacted.eml"), RULES)  # type: ignore[misc]
    assert complaint.token == FAKE_TOKEN and complaint.reason == "abuse report from Microsoft JMRP/1.0"


def test_a_configured_feedback_loop_is_believed_without_a_tag() -> None:
    rules = IntakeRules(CODEC, UNSUBSCRIBE, complaint_senders=("@isp.example",))
    (event,) = classify(feedback("abuse", tag=None), rules)  # type: ignore[misc]
    assert (event.kind, event.recipient, event.subscriber_id, event.is_vouched) == ("complaint", "kim@example.com",
                                                                                    None, True)
    assert isinstance(classify(feedback("abuse", tag=None, sender="fbl@other.example"), rules), Unrecognised)


@pytest.mark.parametrize(("case", "raw", "reason"), [
    ("vacation auto-reply", mail("junk-vacation.eml"), "not a delivery status notification"),
    ("plain-text qmail bounce", mail("junk-qmail-plain.eml"), "not a delivery status notification"),
    ("spam", mail("junk-spam.eml"), "not a delivery status notification"),
    ("empty", b"", "not a delivery status notification"),
    ("binary", bytes(range(256)) * 4, "not a delivery status notification"),
    ("report without recipients", report(status_block="X-Nothing: here\n"), "without a recipient"),
    ("feedback without a type", feedback("abuse").replace(b"Feedback-Type: abuse\n", b""), "without a Feedback-Type"),
    ("unsubscribe sent elsewhere", mail("unsubscribe-mailto.eml").replace(b"To: unsubscribe@", b"To: news@")
     .replace(b"Delivered-To: unsubscribe@", b"Delivered-To: news@"), "not addressed to unsubscribe@example.com"),
    ("unsubscribe without a token", mail("unsubscribe-mailto.eml", token=""), "not a delivery status notification"),
    ("too large", b"Subject: x\n\n" + b"x" * 10_000_001, "larger than"),
    ("a DSN about mail we did not send", report(
        status_block="Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1\n", tag=None),
     "not tied to a message we sent"),
])
def test_unrecognised(case: str, raw: bytes, reason: str) -> None:
    found = classify(raw, RULES)
    assert isinstance(found, Unrecognised) and reason in found.reason, found


def test_classify_never_raises_on_broken_mail() -> None:
    rng = random.Random(7)
    for path in sorted(BOUNCES.glob("*.eml")):
        raw = mail(path.name)
        for cut in range(0, len(raw), 53):  # every truncation, and some bytes flipped
            damaged = bytearray(raw[:cut])
            for _ in range(3):
                if damaged:
                    damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            assert isinstance(classify(bytes(damaged), RULES), (tuple, Unrecognised))


# --- parse_webhook (pure) -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("case", "payload", "events", "invalid"), [
    ("one hard bounce", {"email": "kim@example.com", "type": "bounce", "permanent": True, "reason": "550 5.1.1"},
     [BounceEvent("hard", "kim@example.com", reason="550 5.1.1", is_vouched=True)], 0),
    ("a list", [{"email": "a@example.com", "type": "bounce", "permanent": False},
                {"email": "b@example.com", "type": "complaint"}],
     [BounceEvent("soft", "a@example.com", is_vouched=True), BounceEvent("complaint", "b@example.com", is_vouched=True)],
     0),
    ("empty list", [], [], 0),
    ("bad items are left out, good ones kept", [
        {"email": "a@example.com", "type": "complaint"}, "text", {"type": "complaint"},
        {"email": "not an address", "type": "complaint"}, {"email": "a@example.com", "type": "open"},
        {"email": "a@example.com", "type": "bounce"}, {"email": "a@example.com", "type": "complaint", "reason": 5}],
     [BounceEvent("complaint", "a@example.com", is_vouched=True)], 6),
])
def test_parse_webhook(case: str, payload: object, events: list[BounceEvent], invalid: int) -> None:
    found, errors = parse_webhook(payload)
    assert found == events and len(errors) == invalid


@pytest.mark.parametrize("payload", ["text", 5, None, [{}] * 1001])
def test_parse_webhook_refuses_other_shapes(payload: object) -> None:
    with pytest.raises(ValueError):
        parse_webhook(payload)


# --- the folder, against a real store -----------------------------------------------------------------------

@pytest.fixture
def subs(engine) -> SubscriberStore:  # type: ignore[no-untyped-def]
    return SubscriberStore(engine)


@pytest.fixture
def tokens(clock: Clock) -> Tokens:
    return Tokens(SIGNING_KEY, clock)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    mailbox.Maildir(tmp_path / "bounces", create=True)
    return tmp_path / "bounces"


def subscribe(subs: SubscriberStore, address: str):  # type: ignore[no-untyped-def]
    _, subscriber = subs.add(address, categories=["politics"], editions=["daily"], now=NOW, confirmed=True,
                             method="admin")
    return subscriber


def drop(folder: Path, *raws: bytes) -> None:
    box = mailbox.Maildir(folder, create=False)
    for raw in raws:
        box.add(raw)


def run(folder: Path, subs: SubscriberStore, tokens: Tokens, limit: int = 3):  # type: ignore[no-untyped-def]
    return process_folder(folder, subs, tokens, NOW, limit, RULES)


def in_folder(folder: Path) -> int:
    return sum(1 for sub in ("new", "cur") for p in (folder / sub).iterdir() if not p.name.startswith("."))


def test_three_hard_bounces_suspend_and_soft_ones_do_not(folder: Path, subs: SubscriberStore, tokens: Tokens) -> None:
    kim = subscribe(subs, "kim.gone@example.net")
    lee = subscribe(subs, "lee.full@example.org")
    for run_number in (1, 2, 3):
        drop(folder, mail("postfix-hard-5.1.1.eml", tag=CODEC.digest(run_number, kim.id)),
             mail("postfix-soft-4.2.2.eml", tag=CODEC.digest(run_number, lee.id)))
        result = run(folder, subs, tokens)
        assert (result.applied["hard"], result.applied["soft"]) == (1, 1)
        status = subs.find("kim.gone@example.net").status  # type: ignore[union-attr]
        assert status == ("bounced" if run_number == 3 else "confirmed"), run_number
    assert subs.is_suppressed("kim.gone@example.net")
    assert subs.find("lee.full@example.org").status == "confirmed"  # type: ignore[union-attr]
    assert not subs.is_suppressed("lee.full@example.org")


def test_complaints_suppress_at_once(folder: Path, subs: SubscriberStore, tokens: Tokens) -> None:
    choi = subscribe(subs, "choi.reader@yahoo.com")
    redacted = subscribe(subs, "yoon.reader@outlook.com")
    token = tokens.for_subscriber("unsubscribe", redacted.public_id)
    # Yahoo quotes our Message-ID with its tag; Microsoft's copy is tied by the unsubscribe token it kept.
    drop(folder, mail("arf-yahoo-abuse.eml", tag=CODEC.digest(1, choi.id)),
         mail("arf-microsoft-redacted.eml", token, tag="not-a-tag"))
    result = run(folder, subs, tokens)
    assert result.applied["complaint"] == 2 and not result.unrecognised
    for address in ("choi.reader@yahoo.com", "yoon.reader@outlook.com"):
        assert subs.is_suppressed(address)
        assert subs.find(address).status == "complained"  # type: ignore[union-attr]


def test_mailto_unsubscribe_and_a_tampered_token(folder: Path, subs: SubscriberStore, tokens: Tokens) -> None:
    jung = subscribe(subs, "jung.reader@gmail.com")
    han = subscribe(subs, "han.reader@example.com")
    good = tokens.for_subscriber("unsubscribe", jung.public_id)
    other = tokens.for_subscriber("unsubscribe", han.public_id)
    tampered = other[:-4] + ("AAAA" if not other.endswith("AAAA") else "BBBB")
    wrong_purpose = tokens.for_subscriber("preferences", han.public_id)
    drop(folder, mail("unsubscribe-mailto.eml", good), mail("unsubscribe-mailto.eml", tampered),
         mail("unsubscribe-mailto.eml", wrong_purpose))
    result = run(folder, subs, tokens)
    assert result.applied["unsubscribe"] == 1
    assert subs.find(jung.email).status == "unsubscribed"  # type: ignore[union-attr]
    assert subs.find(han.email).status == "confirmed"  # type: ignore[union-attr]
    assert [reason for _, reason in result.unrecognised] == ["unsubscribe link is invalid"] * 2
    assert len(list((folder / ".unrecognised" / "new").iterdir())) == 2  # kept, unread, for a person


def test_every_mail_is_filed_once_and_a_second_run_finds_nothing(folder: Path, subs: SubscriberStore,
                                                                   tokens: Tokens) -> None:
    kim = subscribe(subs, "kim.gone@example.net")
    lee = subscribe(subs, "lee.full@example.org")
    token = tokens.for_subscriber("unsubscribe", kim.public_id)  # the redacted complaint and the mailto: kim's
    tags = {"postfix-hard-5.1.1.eml": CODEC.digest(1, kim.id), "postfix-soft-4.2.2.eml": CODEC.digest(1, lee.id),
            "arf-microsoft-redacted.eml": CODEC.digest(1, kim.id)}  # the rest: about subscriber 7, who is not here
    names = sorted(p.name for p in BOUNCES.glob("*.eml"))
    drop(folder, *(mail(name, token, tags.get(name, TAG7)) for name in names), b"\x00\xffnot mail at all")
    cur = folder / "cur" / "1795557604.M1P2.mail.example.com:2,S"  # a mail a client already opened
    cur.write_bytes(mail("gmail-5.1.1.eml"))

    first = run(folder, subs, tokens)
    assert first.applied == {"hard": 1, "soft": 1, "complaint": 1, "unsubscribe": 1}
    assert first.unknown == 3  # two Gmail bounces and the Yahoo complaint are about a subscriber we do not have
    assert sorted(reason for _, reason in first.unrecognised) == [
        "not a delivery status notification, complaint report or unsubscribe request"] * 4
    assert first.failed == ()
    assert in_folder(folder) == 0
    assert len(mailbox.Maildir(folder).get_folder("processed")) == 7
    assert len(mailbox.Maildir(folder).get_folder("unrecognised")) == 4
    assert all(p.name.endswith(":2,S") for p in (folder / ".processed" / "cur").iterdir())
    assert first.summary().startswith(
        "1 hard, 1 soft, 1 complaint, 1 unsubscribe; 3 unknown recipients, 0 ignored, 4 unrecognised, 0 failed\n")

    second = run(folder, subs, tokens)
    assert (sum(second.applied.values()), second.unknown, second.unrecognised) == (0, 0, ())


def test_a_mail_that_cannot_be_stored_stays_and_the_rest_go_on(folder: Path, subs: SubscriberStore,
                                                              tokens: Tokens) -> None:
    choi = subscribe(subs, "choi.reader@yahoo.com")
    kim = subscribe(subs, "kim.gone@example.net")

    class Broken(SubscriberStore):
        def record_bounce_of(self, subscriber_id, **kwargs):  # type: ignore[no-untyped-def]
            if subscriber_id == kim.id:
                raise RuntimeError("database is locked")
            return super().record_bounce_of(subscriber_id, **kwargs)

    drop(folder, mail("postfix-hard-5.1.1.eml", tag=CODEC.digest(1, kim.id)),
         mail("arf-yahoo-abuse.eml", tag=CODEC.digest(1, choi.id)))
    result = run(folder, Broken(subs.engine), tokens)
    assert [reason for _, reason in result.failed] == ["RuntimeError: database is locked"]
    assert result.applied["complaint"] == 1
    assert in_folder(folder) == 1  # tried again next time
    assert b"kim.gone@example.net" in next((folder / "new").iterdir()).read_bytes()


def test_a_folder_that_is_not_a_maildir(tmp_path: Path, subs: SubscriberStore, tokens: Tokens) -> None:
    with pytest.raises(NewsletterError, match="is not a maildir"):
        run(tmp_path, subs, tokens)


def test_an_event_that_nothing_ties_to_our_mail_is_rejected(subs: SubscriberStore, tokens: Tokens) -> None:
    subscribe(subs, "kim@example.com")
    event = BounceEvent("complaint", "kim@example.com")  # as a forged report would name its victim
    assert apply_event(event, store=subs, tokens=tokens, now=NOW, hard_bounce_limit=3) == (
        "rejected", "not tied to a message we sent (no signed return path or Message-ID, no unsubscribe token)")
    assert subs.find("kim@example.com").status == "confirmed"  # type: ignore[union-attr]
    vouched = BounceEvent("complaint", "", is_vouched=True)
    assert apply_event(vouched, store=subs, tokens=tokens, now=NOW, hard_bounce_limit=3) == ("rejected",
                                                                                            "names no recipient")


# --- the webhook, over HTTP (the app in-process) ------------------------------------------------------------

AUTH = {"Authorization": "Bearer admin-token-0123456789"}


@pytest.fixture
def site(tmp_path, clock):  # type: ignore[no-untyped-def]
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path),
                                          mail_url=f"maildir://{tmp_path / 'outbox'}",
                                          extra='[admin]\ntoken = "admin-token-0123456789"\n'), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    with InProcessClient(service.create_app(services)) as client:
        yield client, services
    services.close()


def test_webhook_needs_the_admin_token(site) -> None:  # type: ignore[no-untyped-def]
    client, _ = site
    answer = client.post("/api/bounces", json={"email": "kim@example.com", "type": "complaint"})
    assert answer.status_code == 401 and "admin token" in answer.json()["error"]
    wrong = client.post("/api/bounces", json={}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert client.post("/api/bounces", content=b"{not json").status_code == 401  # the token is checked first


def test_webhook_applies_events(site) -> None:  # type: ignore[no-untyped-def]
    client, services = site
    for address in ("kim@example.com", "lee@example.com"):
        subscribe(services.subscribers, address)
    one = client.post("/api/bounces", headers=AUTH, json={"email": "kim@example.com", "type": "complaint"})
    assert one.status_code == 200, one.text
    assert one.json() == {"applied": 1, "unknown": 0, "invalid": 0, "errors": []}
    assert services.subscribers.is_suppressed("kim@example.com")

    bounce = {"email": "lee@example.com", "type": "bounce", "permanent": True, "reason": "550 5.1.1 user unknown"}
    batch = client.post("/api/bounces", headers=AUTH, json=[
        bounce, bounce, {"email": "lee@example.com", "type": "bounce", "permanent": False},
        {"email": "nobody@example.com", "type": "complaint"}, {"email": "lee@example.com", "type": "spam"}])
    assert batch.json() == {"applied": 3, "unknown": 1, "invalid": 1,
                            "errors": ['event 5: \'type\' must be "bounce" or "complaint"']}
    assert services.subscribers.find("lee@example.com").status == "confirmed"  # type: ignore[union-attr]
    client.post("/api/bounces", headers=AUTH, json=bounce)
    assert services.subscribers.find("lee@example.com").status == "bounced"  # type: ignore[union-attr]


@pytest.mark.parametrize(("case", "body", "status", "error"), [
    ("not JSON", b"{email: kim}", 400, "not JSON"),
    ("empty", b"", 400, "not JSON"),
    ("not UTF-8", b"\xff\xfe\x00{", 400, "not JSON"),
    ("a string", b'"kim@example.com"', 400, "JSON object or a list"),
    ("nested past the parser's stack", b"[" * 100_000, 400, "not JSON"),
    ("too many events", b"[" + b",".join([b"{}"] * 1001) + b"]", 400, "at most 1000"),
    ("too large", b'["' + b"x" * 1_000_001 + b'"]', 413, "larger than"),
])
def test_webhook_refuses_malformed_bodies(site, case: str, body: bytes, status: int,  # type: ignore[no-untyped-def]
                                          error: str) -> None:
    client, _ = site
    answer = client.post("/api/bounces", headers={**AUTH, "Content-Type": "application/json"}, content=body)
    assert answer.status_code == status, answer.text
    assert error in answer.json()["error"]


# --- the command ---------------------------------------------------------------------------------------------

def test_command(tmp_path: Path, clock: Clock) -> None:
    config = write_config(tmp_path / "gazette.toml", database_url=migrated_sqlite_url(tmp_path),
                          mail_url=f"maildir://{tmp_path / 'outbox'}")

    def gazette(*args: str) -> CommandResult:
        return run_gazette(["--config", str(config), *args], cwd=tmp_path)

    missing = gazette("bounces", "process")
    assert missing.returncode == 2 and "[mail] bounce_folder" in missing.stderr
    box = tmp_path / "bounces"
    mailbox.Maildir(box, create=True)
    drop(box, mail("gmail-5.1.1.eml", tag=CODEC.digest(1, 1)), mail("junk-spam.eml"))  # subscriber 1: nobody yet
    done = gazette("bounces", "process", str(box))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("0 hard, 0 soft, 0 complaint, 0 unsubscribe; 1 unknown recipients, 0 ignored, "
                                  "1 unrecognised, 0 failed\nunrecognised ")
    config.write_text(config.read_text().replace("[mail]\n", f"[mail]\nbounce_folder = \"{box}\"\n"))
    again = gazette("bounces", "process")
    assert again.returncode == 0 and again.stdout.startswith("0 hard, 0 soft, 0 complaint, 0 unsubscribe; 0 unknown")

