"""Hostile input to an article's life: a correction note or a kill reason is text wherever it lands (feeds, partner
pushes, the console), a control character cannot break a feed, oversized or malformed input is a 4xx, and the kill
reason never reaches readers."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from feeds.article_life import ArticleLife
from feeds.publish import FeedPublisher
from newsletter.settings import load_settings
from tests.conftest import NOW, InProcessClient, write_config
from tests.test_store import make_article

ADMIN = {"Authorization": "Bearer admin-token-0123456789"}
HOSTILE = '</p><script>alert(1)</script><img src=x onerror=alert(2)>]]>&amp;\x00\x07\x1b\ufffe'


def test_a_hostile_note_is_text_in_every_feed(store, settings, clock) -> None:  # type: ignore[no-untyped-def]
    article = make_article(1)
    store.upsert_articles([article], source_id=None, now=NOW)
    ArticleLife(store.engine).correct(article.id, HOSTILE, by=None, now=NOW)
    publisher = FeedPublisher(settings, store, clock)
    publisher.refresh()
    for fmt in ("rss", "atom"):
        body = publisher.get("politics", fmt).body
        ET.fromstring(body)  # still well-formed XML: the control characters are gone
        assert b"<script>" not in body and b"<img src=x" not in body
    content = json.loads(publisher.get("politics", "json").body)["items"][0]["content_html"]
    assert "<script>" not in content and "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    stored = store.article(article.id).corrections[0].note
    assert "\x00" not in stored and "\x1b" not in stored


@pytest.mark.parametrize(("path", "body"), [
    ("/api/articles/{id}/corrections", {"note": "가" * 2001}),
    ("/api/articles/{id}/corrections", {"note": ""}),
    ("/api/articles/{id}/corrections", {"note": "  \x00\x01  "}),
    ("/api/articles/{id}/corrections", {"note": "ok", "by": "someone else"}),  # no field of ours to forge
    ("/api/articles/{id}/corrections", {"note": ["list"]}),
    ("/api/articles/{id}/kill", {"reason": "x" * 501}),
    ("/api/articles/{id}/kill", {"reason": None}),
    ("/api/articles/{id}/hold", {}),
    ("/api/articles/..%2F..%2Fetc%2Fpasswd/kill", {"reason": "x"}),
    ("/api/articles/%00/kill", {"reason": "x"}),
    ("/api/articles/" + "a" * 65 + "/kill", {"reason": "x"}),
    ("/api/articles/a'--/kill", {"reason": "x"}),
])
def test_bad_requests_are_4xx_and_change_nothing(tmp_path, database_url, clock, path, body) -> None:  # type: ignore[no-untyped-def]
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url,
                                          extra='[admin]\ntoken = "admin-token-0123456789"\n'), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    article = make_article(1)
    services.store.upsert_articles([article], source_id=None, now=NOW)
    with InProcessClient(service.create_app(services)) as client:
        answer = client.post(path.format(id=article.id), json=body, headers=ADMIN)
        assert 400 <= answer.status_code < 500, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    stored = services.store.article(article.id)
    assert (stored.status, stored.revision, stored.corrections) == ("live", 1, ())
    services.engine.dispose()


def test_the_kill_reason_never_reaches_readers(tmp_path, database_url, clock) -> None:  # type: ignore[no-untyped-def]
    import service

    settings = load_settings(write_config(tmp_path / "gazette.toml", database_url=database_url), {})
    services = service.Components(settings, clock=clock)
    services.prepare_database(migrate=True)
    article = make_article(1)
    services.store.upsert_articles([article], source_id=None, now=NOW)
    ArticleLife(services.engine).kill(article.id, "SECRET-LEGAL-REASON <b>", now=NOW)
    services.publisher.refresh()
    link = services.redirects.url(article.id, "web").removeprefix(settings.site.base_url)
    with InProcessClient(service.create_app(services)) as client:
        pages = [client.get(link), *(client.get(f"/feeds/{slug}.{fmt}") for slug in ("all", "politics", "popular")
                                     for fmt in ("rss", "atom", "json")), client.get("/sitemap-news.xml")]
        for page in pages:
            assert page.status_code in (200, 410) and "SECRET-LEGAL-REASON" not in page.text
    services.engine.dispose()
