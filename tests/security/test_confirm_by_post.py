"""Class 6: opening a link must not confirm, and an old confirmation must not bring back an address that left.

Mail link scanners fetch every link in a mail; a GET (or HEAD) of /confirm/{token} used to activate the
subscription, and an old confirmation link opened after a one-click unsubscribe re-subscribed the address and
deleted its suppression. Now GET shows one button, its POST confirms, and a confirmation link works once.
"""

from __future__ import annotations

import email
import re
from datetime import timedelta
from email import policy

from tests.conftest import NOW
from tests.security.conftest import Gazette


def subscribe(gazette: Gazette, address: str = "reader@example.com") -> str:
    """Sign up through the form; the confirmation link's path from the mail."""
    fields = gazette.form("/subscribe")
    answer = gazette.client.post("/subscribe", data={**fields, "email": address, "categories": ["politics"]})
    assert answer.status_code == 200, answer.text
    raw = gazette.smtp.to(address)[-1]
    text = email.message_from_bytes(raw, policy=policy.default).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return re.search(r"https://news\.example\.com(/confirm/\S+)", text)[1]  # type: ignore[index]


def state(gazette: Gazette, address: str = "reader@example.com") -> tuple[str, bool]:
    subscriber = gazette.services.subscribers.find(address)
    return subscriber.status, gazette.services.subscribers.is_suppressed(address)


def test_a_get_or_head_of_the_link_confirms_nothing(gazette: Gazette) -> None:
    link = subscribe(gazette)
    for _ in range(3):  # a scanner, a preview, the reader's first look
        page = gazette.client.get(link)
        assert page.status_code == 200 and 'method="post"' in page.text and "<script" not in page.text
        assert gazette.client.head(link).status_code == 200
    assert state(gazette) == ("pending", False)
    assert gazette.client.post(link).status_code == 200
    assert state(gazette) == ("confirmed", False)


def test_an_old_confirmation_never_brings_back_an_unsubscribed_reader(gazette: Gazette) -> None:
    link = subscribe(gazette)
    assert gazette.client.post(link).status_code == 200
    subscriber = gazette.services.subscribers.find("reader@example.com")
    unsubscribe = gazette.services.tokens.for_subscriber("unsubscribe", subscriber.public_id)
    assert gazette.client.post(f"/unsubscribe/{unsubscribe}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    again = gazette.client.post(link)  # the old mail, opened again (or a scanner that submits forms)
    assert again.status_code == 410 and "/link" in again.text
    assert state(gazette) == ("unsubscribed", True)


def test_an_unconfirmed_link_dies_with_an_unsubscribe(gazette: Gazette) -> None:
    link = subscribe(gazette)
    subscriber = gazette.services.subscribers.find("reader@example.com")
    unsubscribe = gazette.services.tokens.for_subscriber("unsubscribe", subscriber.public_id)
    gazette.client.post(f"/unsubscribe/{unsubscribe}", data={"List-Unsubscribe": "One-Click"})
    assert gazette.client.post(link).status_code == 410
    assert state(gazette) == ("unsubscribed", True)


def test_a_newer_link_replaces_the_older_and_each_works_once(gazette: Gazette) -> None:
    first = subscribe(gazette)
    gazette.clock.now = NOW + timedelta(hours=2)  # past the one-mail-an-hour limit
    second = subscribe(gazette)
    assert first != second
    assert gazette.client.post(first).status_code == 410
    assert state(gazette) == ("pending", False)
    assert gazette.client.post(second).status_code == 200
    assert state(gazette) == ("confirmed", False)


def test_the_reader_can_come_back_through_a_fresh_confirmation(gazette: Gazette) -> None:
    link = subscribe(gazette)
    gazette.client.post(link)
    subscriber = gazette.services.subscribers.find("reader@example.com")
    unsubscribe = gazette.services.tokens.for_subscriber("unsubscribe", subscriber.public_id)
    gazette.client.post(f"/unsubscribe/{unsubscribe}", data={"List-Unsubscribe": "One-Click"})
    gazette.clock.now = NOW + timedelta(hours=2)
    fresh = subscribe(gazette)  # the person asks again: only the person can lift a suppression
    assert gazette.client.post(fresh).status_code == 200
    assert state(gazette) == ("confirmed", False)
