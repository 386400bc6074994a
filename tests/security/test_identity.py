"""Class 5: letter case must not multiply a mailbox.

`Reader@x` and `reader@x` were two subscribers: eight case variants got eight rows and eight confirmation mails in a
second (the per-address limit was per spelling), and unsubscribing one left the others active. Now a mailbox is
one subscriber, by its address in lower case; existing duplicates are merged by a migration.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from feeds import db
from feeds.core import database
from newsletter.records import email_hash
from newsletter.subscribers import SubscriberStore
from tests.conftest import NOW, migrate
from tests.security.conftest import Gazette

VARIANTS = ["reader@example.com", "Reader@example.com", "READER@example.com", "rEaDeR@Example.com",
            "reader@EXAMPLE.COM", "ReAdEr@example.com", "READER@EXAMPLE.com", "Reader@Example.Com"]


def test_case_variants_get_one_row_and_one_mail(gazette: Gazette) -> None:
    answers = []
    for address in VARIANTS:
        fields = gazette.form("/subscribe")
        answers.append(gazette.client.post("/subscribe", data={**fields, "email": address,
                                                               "categories": ["politics"]}).status_code)
    assert answers == [200] + [429] * 7
    assert len(gazette.smtp.messages) == 1
    total, rows = gazette.services.subscribers.list()
    assert total == 1 and rows[0].email == "reader@example.com"  # stored as first written


def test_unsubscribing_one_spelling_stops_the_mailbox(engine, clock) -> None:  # type: ignore[no-untyped-def]
    subs = SubscriberStore(engine)
    _, first = subs.add("Kim@example.com", categories=["politics"], editions=["daily"], now=NOW, confirmed=True,
                        method="admin")
    outcome, same = subs.add("kim@EXAMPLE.com", categories=["economy"], editions=["daily"], now=NOW, confirmed=True,
                             method="import")
    assert outcome == "updated" and same.id == first.id
    assert subs.find("KIM@example.com").id == first.id  # type: ignore[union-attr]
    subs.unsubscribe(first.id, first.public_id, now=NOW)
    for spelling in ("kim@example.com", "KIM@EXAMPLE.COM"):
        assert subs.is_suppressed(spelling)
        assert subs.add(spelling, categories=["politics"], editions=["daily"], now=NOW, confirmed=True,
                        method="admin")[0] == "suppressed"
    assert subs.confirmed("daily") == []


def test_the_migration_merges_existing_duplicates(empty_database_url: str) -> None:
    engine = database.make_engine(empty_database_url)
    db.upgrade_legacy(engine, "0008")
    insert = sa.text("INSERT INTO subscribers (id, email, status, categories, frequency, created_at, confirmed_at, "
                     "unsubscribed_at, consent_method, bounces) VALUES (:id, :email, :status, '[]', 'daily', :at, "
                     ":confirmed, :gone, 'form', 0)")
    at = NOW - timedelta(days=30)
    with engine.begin() as conn:
        for row in ({"id": 1, "email": "Reader@example.com", "status": "confirmed", "confirmed": at, "gone": None},
                    {"id": 2, "email": "reader@example.com", "status": "unsubscribed", "confirmed": at, "gone": NOW},
                    {"id": 3, "email": "READER@example.com", "status": "pending", "confirmed": None, "gone": None},
                    {"id": 4, "email": "kim@example.com", "status": "confirmed", "confirmed": at, "gone": None},
                    {"id": 5, "email": "Kim@example.com", "status": "pending", "confirmed": None, "gone": None}):
            conn.execute(insert, {**row, "at": at})
        conn.execute(sa.text("INSERT INTO editions (id, name, scheduled_at, period_start, period_end, status, "
                             "created_at) VALUES (1, 'daily', :at, :at, :at, 'done', :at)"), {"at": at})
        for delivery_id, subscriber in ((1, 1), (2, 2), (3, 5)):
            conn.execute(sa.text("INSERT INTO deliveries (id, edition_id, subscriber_id, status, articles, attempts) "
                                 "VALUES (:id, 1, :s, 'sent', 3, 1)"), {"id": delivery_id, "s": subscriber})
    migrate(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, email, status FROM subscribers ORDER BY id")).all()
        deliveries = conn.execute(sa.text("SELECT subscriber_id FROM deliveries ORDER BY id")).scalars().all()
    # The reader who unsubscribed under one spelling stays unsubscribed under all; kim keeps the confirmed row.
    assert [tuple(r) for r in rows] == [(2, "reader@example.com", "unsubscribed"), (4, "kim@example.com", "confirmed")]
    assert deliveries == [2, 4]  # row 1's delivery of edition 1 duplicated row 2's: one kept; row 5's moved to 4
    with pytest.raises(sa.exc.IntegrityError):  # and the database itself holds one row per mailbox from now on
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO subscribers (email, email_hash, public_id, status, categories, "
                                 "created_at, consent_method, bounces) VALUES ('KIM@example.com', :h, 'p1', 'pending', "
                                 "'[]', :at, 'form', 0)"), {"h": email_hash("KIM@example.com"), "at": NOW})
    engine.dispose()
