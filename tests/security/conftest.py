"""The hostile-input suite: one module per class of attack, each case named for what it tries.

`gazette` is the whole app in-process (httpx.ASGITransport, lifespan included: `InProcessClient`) on SQLite, with
an admin token, one partner, a few stored articles and a real SMTP server on loopback; tests that need a real HTTP
server (timing under load, several connections) start `gazette serve` themselves.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest

from feeds.model import Article
from newsletter.settings import load_settings
from tests.conftest import (
    NOW,
    Clock,
    InProcessClient,
    SmtpRecorder,
    filled,
    sqlite_copy,
    write_config,
)

ADMIN = {"Authorization": "Bearer admin-token-0123456789"}
PARTNER_KEY = "partner-key-0123456789abcdef"
EXTRA = f"""
[admin]
token = "admin-token-0123456789"

[[partners]]
slug = "portal"
name = "포털"
key = "{PARTNER_KEY}"
categories = ["politics"]
"""


@dataclass
class Gazette:
    client: InProcessClient
    services: Any
    smtp: SmtpRecorder
    clock: Clock

    def form(self, path: str) -> dict[str, str]:
        """The form on the page at `path` as a reader sends it (hidden fields, boxes ticked by default, the required
        consent ticked)."""
        page = self.client.get(path)
        assert page.status_code == 200, page.text
        return filled(page.text)  # type: ignore[return-value]

    def article_ids(self) -> list[str]:
        return [a.id for a in self.services.store.articles(limit=100)]


def stored_article(n: int, category: str = "politics", **fields: Any) -> Article:
    at = NOW - timedelta(hours=n)
    values: dict[str, Any] = dict(
        id=f"art{n:09d}", identity=f"url:https://news.example.com/{n}", guid=None, url=f"https://news.example.com/{n}",
        title=f"기사 {n}", summary=f"요약 {n}", content_html=f"<p>본문 {n}</p>", byline="홍길동", author_email=None,
        category=category, tags=(), image_url=None, published_at=at, updated_at=at, content_hash=f"h{n}",
        external_views=None)
    values.update(fields)
    return Article(**values)


@contextmanager
def running(tmp_path: Path, smtp: SmtpRecorder, smtp_url: str, clock: Clock, template: Path) -> Iterator[Gazette]:
    """The app over a fresh database (a copy of the migrated `template`), its mail going to `smtp_url`."""
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=sqlite_copy(template, tmp_path),
                                          mail_url=smtp_url, extra=EXTRA), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    services.store.upsert_articles([stored_article(n) for n in (1, 2, 3)], source_id=None, now=NOW)
    with InProcessClient(service.create_app(services)) as client:
        yield Gazette(client, services, smtp, clock)
    services.close()


@pytest.fixture
def gazette(tmp_path: Path, smtp_server: tuple[SmtpRecorder, str], clock: Clock,
            migrated_sqlite: Path) -> Iterator[Gazette]:
    with running(tmp_path, *smtp_server, clock, migrated_sqlite) as site:
        yield site


# The console's in-process fixture, for the attacks on its pages (imported last: it builds on what is above).
from tests.console.conftest import console  # noqa: E402,F401
