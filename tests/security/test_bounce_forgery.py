"""Class 4: a forged bounce or complaint must not suppress anyone.

The bounce folder takes mail from anyone (the published unsubscribe address delivers there too). Before, any DSN
or ARF report was believed: a complaint naming a victim suppressed the victim, and one DSN with three failed
blocks counted as three hard bounces. Now a report counts only when it is tied to a message we sent (our signed tag
in the return path or the quoted Message-ID, or our signed unsubscribe token), about the subscriber the tie names.
"""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from newsletter.subscribers import SubscriberStore
from newsletter.tokens import Tokens
from tests.conftest import NOW, Clock

SIGNING_KEY = "test-signing-key-0123456789"


def arf(*, rcpt: str, message_id: str = "<1795557600.1@example.com>", sender: str = "abuse@attacker.example",
        unsubscribe_token: str = "") -> bytes:
    unsubscribe = (f"List-Unsubscribe: <https://news.example.com/unsubscribe/{unsubscribe_token}>\n"
                   if unsubscribe_token else "")
    return (f"From: {sender}\nTo: unsubscribe@example.com\nSubject: complaint\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\n\n--b\n"
            f"Content-Type: text/plain\n\nspam!\n--b\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n"
            f"Version: 1\nOriginal-Rcpt-To: {rcpt}\n\n--b\nContent-Type: text/rfc822-headers\n\n"
            f"From: news@example.com\nTo: {rcpt}\nMessage-ID: {message_id}\n{unsubscribe}\n--b--\n").encode()


def dsn(*, to: str, blocks: list[str]) -> bytes:
    body = "\n".join(blocks)
    return (f"From: MAILER-DAEMON@mx.example.net\nTo: {to}\nSubject: Undelivered\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n--b\n"
            f"Content-Type: text/plain\n\nfailed\n--b\nContent-Type: message/delivery-status\n\n"
            f"Reporting-MTA: dns; mx.example.net\n\n{body}\n--b--\n").encode()


def failed(address: str) -> str:
    return f"Final-Recipient: rfc822; {address}\nAction: failed\nStatus: 5.1.1\n"


@pytest.fixture
def world(engine, tmp_path: Path, clock: Clock):  # type: ignore[no-untyped-def]
    from newsletter.verp import TagCodec

    subs = SubscriberStore(engine)
    people = {}
    for name in ("victim", "attacker"):
        _, people[name] = subs.add(f"{name}@example.com", categories=["politics"], editions=["daily"], now=NOW,
                                   confirmed=True, method="admin")
    folder = tmp_path / "bounces"
    mailbox.Maildir(folder, create=True)
    return subs, people, folder, TagCodec(SIGNING_KEY, "bounce@example.com"), Tokens(SIGNING_KEY, clock)


def process(world, *mails: bytes):  # type: ignore[no-untyped-def]
    from newsletter.bounces import IntakeRules, process_folder

    subs, _, folder, tags, tokens = world
    box = mailbox.Maildir(folder, create=False)
    for raw in mails:
        box.add(raw)
    return process_folder(folder, subs, tokens, NOW, 3, IntakeRules(tags, "unsubscribe@example.com"))


def status(world, who: str) -> tuple[str, bool]:  # type: ignore[no-untyped-def]
    subs = world[0]
    found = subs.find(f"{who}@example.com")
    return found.status, subs.is_suppressed(f"{who}@example.com")


def test_a_complaint_naming_a_victim_suppresses_nobody(world) -> None:  # type: ignore[no-untyped-def]
    report = process(world, arf(rcpt="victim@example.com"))
    assert status(world, "victim") == ("confirmed", False)
    assert report.applied["complaint"] == 0 and len(report.unrecognised) == 1
    assert "not tied to a message we sent" in report.unrecognised[0][1]


def test_a_made_up_tag_is_not_a_tie(world) -> None:  # type: ignore[no-untyped-def]
    _, people, _, tags, _ = world
    genuine = tags.digest(4, people["attacker"].id)  # what the attacker's own mail carried
    kind, rest = genuine.split("-", 1)
    swapped = f"{kind}-{people['victim'].id}-{rest.split('-', 1)[1]}"  # the victim's id, the attacker's mac
    forged = f"d4-{people['victim'].id}-0123456789abcdef"
    for tag in (swapped, forged, genuine.upper().replace("D", "d", 1)[:-1] + "0"):
        process(world, arf(rcpt="victim@example.com", message_id=f"<{tag}@example.com>"),
                dsn(to=tags.envelope_from(tag), blocks=[failed("victim@example.com")]))
    assert status(world, "victim") == ("confirmed", False)


def test_a_tied_report_counts_for_the_subscriber_it_is_tied_to(world) -> None:  # type: ignore[no-untyped-def]
    subs, people, _, tags, _ = world
    # The attacker's own bounce, tagged genuinely, names the victim in its blocks: the tag decides.
    process(world, dsn(to=tags.envelope_from(tags.digest(4, people["attacker"].id)),
                       blocks=[failed("victim@example.com")]))
    assert subs.export(people["victim"].id)["bounces"] == 0
    assert subs.export(people["attacker"].id)["bounces"] == 1


def test_one_dsn_counts_once_however_many_blocks_it_holds(world) -> None:  # type: ignore[no-untyped-def]
    _, people, _, tags, _ = world
    tag = tags.digest(5, people["victim"].id)
    report = process(world, dsn(to=tags.envelope_from(tag), blocks=[failed("victim@example.com")] * 3))
    assert report.applied["hard"] == 1
    assert world[0].export(people["victim"].id)["bounces"] == 1
    assert status(world, "victim") == ("confirmed", False)  # 1 of the 3 hard bounces in a row that suspend


def test_an_unsubscribe_token_only_ever_names_its_own_reader(world) -> None:  # type: ignore[no-untyped-def]
    _, people, _, _, tokens = world
    own = tokens.for_subscriber("unsubscribe", people["attacker"].public_id)
    process(world, arf(rcpt="victim@example.com", unsubscribe_token=own))  # the victim named, the attacker's token
    assert status(world, "victim") == ("confirmed", False)
    assert status(world, "attacker") == ("complained", True)


def test_a_configured_feedback_loop_is_believed(world) -> None:  # type: ignore[no-untyped-def]
    from newsletter.bounces import IntakeRules, process_folder

    subs, _, folder, tags, tokens = world
    mailbox.Maildir(folder, create=False).add(arf(rcpt="victim@example.com", sender="feedback@arf.mail.yahoo.com"))
    rules = IntakeRules(tags, "unsubscribe@example.com", complaint_senders=("feedback@arf.mail.yahoo.com",))
    assert process_folder(folder, subs, tokens, NOW, 3, rules).applied["complaint"] == 1
    assert status(world, "victim") == ("complained", True)
