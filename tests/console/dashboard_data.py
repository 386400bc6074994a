"""A newsroom with a month of history, for the dashboard's page tests and screenshots: readers who came and left
over 30 days, two daily editions really sent (to the site's mail transport) with clicks through their links, views
over two days, a partner's requests, sources in each state of health; then the figures rolled up."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from feeds import db as content_db
from newsletter import db
from tests.test_store import make_article

SOURCES = """
[[sources]]
name = "연합뉴스"
kind = "feed"
url = "https://wire.example.com/rss"
category = "politics"

[[sources]]
name = "경제 데스크"
kind = "feed"
url = "https://economy.example.com/atom"
category = "economy"

[[sources]]
name = "<b>지역</b> 통신"
kind = "feed"
url = "https://local.example.com/rss"
category = "politics"
"""


def seed_history(services: Any, now: datetime) -> None:
    engine = services.engine
    with engine.begin() as conn:
        ids = dict(conn.execute(sa.select(content_db.sources.c.name, content_db.sources.c.id)).all())
        s = content_db.sources
        conn.execute(sa.update(s).where(s.c.name == "연합뉴스").values(last_success_at=now, consecutive_failures=0))
        conn.execute(sa.update(s).where(s.c.name == "<b>지역</b> 통신").values(
            consecutive_failures=6, last_error="502 Bad Gateway from local.example.com", last_error_at=now))
        readers = []
        for n in range(90):
            confirmed = now - timedelta(days=29 - n % 30, hours=n % 7)
            status, left = "confirmed", None
            if n % 9 == 0:
                status, left = "unsubscribed", confirmed + timedelta(days=2)
            elif n % 13 == 0:
                status, left = "bounced", confirmed + timedelta(days=1)
            readers.append({"email": f"reader{n}@example.com", "email_hash": uuid.uuid4().hex * 2,
                            "public_id": uuid.uuid4().hex, "status": status, "categories": [],
                            "created_at": confirmed, "consent_method": "admin", "confirmed_at": confirmed,
                            "unsubscribed_at": left if left is None or left <= now else now, "bounces": 0})
        conn.execute(sa.insert(db.subscribers), readers)
    for address in ("kim@example.com", "lee@example.com", "park@example.com"):
        services.subscribers.add(address, categories=["politics", "economy"], editions=["daily"], now=now,
                                 confirmed=True, method="admin")
    wire = ids["연합뉴스"]
    articles = [make_article(500 + n, category="politics" if n % 2 else "economy",
                             published_at=now - timedelta(hours=3 * n + 1), title=f"오늘의 주요 기사 {n + 1}")
                for n in range(16)]
    services.store.upsert_articles(articles, source_id=wire, now=now)
    services.store.upsert_articles([make_article(600 + n, published_at=now - timedelta(days=n, hours=2))
                                    for n in range(1, 20)], source_id=ids["경제 데스크"], now=now)
    services.store.add_views_batch([(a.id, now - timedelta(hours=h), 3 + (i * 7 + h * 5) % 40)
                                    for i, a in enumerate(articles[:8]) for h in range(0, 48, 1 + i)])
    for days, at in ((1, now - timedelta(days=1)), (0, now)):
        report = services.send("daily", at, everyone=True)
        for article in articles[:2 - days]:  # one reader in three clicked the day before, two today
            services.store.add_campaign_click(f"daily-{report.edition_id}", article.id)
    for day in range(30):
        for _ in range(3 + (day * 7) % 11):
            services.partners.record_request("portal", now - timedelta(days=day), status=200)
    services.figures.roll_up(now)
