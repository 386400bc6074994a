"""Rendering digests: golden files for the HTML and text parts, and the hand-written MIME of `personalise`.

To refresh the golden files after a deliberate change: GAZETTE_UPDATE_GOLDEN=1 pytest tests/test_compose.py,
then read the diff before committing it.
"""

from __future__ import annotations

import base64
import email
import os
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import Environment

import templates
from feeds.model import StoredArticle
from newsletter.compose import (
    EMAIL,
    NAME,
    PREFERENCES,
    UNSUBSCRIBE,
    WEB_COPY,
    Base64Body,
    Recipient,
    make_template,
    personalise,
    render_digest,
)
from newsletter.digest import build_digest
from newsletter.settings import load_settings
from tests.conftest import DATA, NOW, write_config

GOLDEN = DATA / "mail"


def article(n: int, category: str, hours: int, views: int = 0, image: str | None = None) -> StoredArticle:
    at = NOW - timedelta(hours=hours)
    return StoredArticle(id=f"a{n:015d}", guid=None, url=f"https://news.example.com/{n}", title=f"기사 제목 {n} <&>",
                         summary=f"요약 {n}: 시민들은 \"좋다\"고 말했다.", content_html="", byline="홍길동 기자",
                         author_email=None, category=category, tags=(), image_url=image, published_at=at,
                         updated_at=at, changed_at=at, revision=1, views=views)


@pytest.fixture
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_settings(write_config(tmp_path / "g.toml", database_url="sqlite:///x.db"), {})


def env() -> Environment:
    return templates.environment()


def digest():  # type: ignore[no-untyped-def]
    candidates = [article(1, "politics", 1, image="https://img.example.com/1.jpg"), article(2, "economy", 2),
                  article(3, "politics", 3)]
    most = [article(4, "economy", 20, views=12345), article(1, "politics", 1, views=77)]
    return build_digest("daily", candidates=candidates, most_viewed=most, category_order=["politics", "economy"],
                        labels={"politics": "정치", "economy": "경제"}, max_articles=10, period_end=NOW)


RECIPIENT = Recipient(email="kim+news@example.com", name="김독자", message_id="<d1-7-0123456789abcdef@example.com>",
                      unsubscribe_url="https://news.example.com/unsubscribe/TOKEN-U",
                      preferences_url="https://news.example.com/preferences/TOKEN-P",
                      web_copy_url="https://news.example.com/archive/1/TOKEN-A")


@pytest.mark.parametrize("language", ["ko", "en"])
def test_digest_golden(settings, language: str) -> None:  # type: ignore[no-untyped-def]
    rendered = render_digest(env(), settings, digest(), language=language, zone=settings.site.timezone,
                             link=lambda article_id: f"https://news.example.com/r/{article_id}")
    raw = personalise(make_template(settings, rendered, list_id="daily"), RECIPIENT, now=NOW,
                      unsubscribe_address="unsubscribe@example.com")
    message = email.message_from_bytes(raw, policy=policy.default)
    parts = {"html": message.get_body(("html",)).get_content(), "txt": message.get_body(("plain",)).get_content()}  # type: ignore[union-attr]
    for kind, actual in parts.items():
        path = GOLDEN / f"digest-{language}.{kind}"
        if os.environ.get("GAZETTE_UPDATE_GOLDEN"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
        assert actual == path.read_text(encoding="utf-8"), f"{path.name} differs (GAZETTE_UPDATE_GOLDEN=1 to refresh)"
    assert "기사 제목 1 &lt;&amp;&gt;" in parts["html"] and "기사 제목 1 <&>" in parts["txt"]
    assert 'width="552"' in parts["html"] and 'alt="기사 제목 1 <&amp;>"' in parts["html"]  # HTML5 attribute escaping
    assert "kim+news@example.com" in parts["html"] and "GZX" not in parts["html"] + parts["txt"]


def test_subject_and_names_are_encoded_right(settings) -> None:  # type: ignore[no-untyped-def]
    rendered = render_digest(env(), settings, digest(), language="ko", zone=settings.site.timezone,
                             link=lambda article_id: article_id, has_ads=True)
    hostile = Recipient(**{**RECIPIENT.__dict__, "name": "김\r\nBcc: victim@example.com"})
    raw = personalise(make_template(settings, rendered, list_id="daily"), hostile, now=NOW,
                      unsubscribe_address="unsubscribe@example.com")
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc:" not in head and all(len(line) <= 998 for line in head.split(b"\r\n"))
    message = email.message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == "(광고) [한빛일보] 오늘의 뉴스 · 2026년 11월 25일"
    assert message["To"].addresses[0].addr_spec == "kim+news@example.com"
    assert message["Bcc"] is None
    assert message["From"].addresses[0].display_name == "한빛일보"


MARKER_TEXT = st.lists(st.one_of(st.text(max_size=40), st.sampled_from([EMAIL, NAME, UNSUBSCRIBE, PREFERENCES, WEB_COPY])),
                       max_size=12).map("".join)


@given(text=MARKER_TEXT, values=st.lists(st.text(max_size=30), min_size=5, max_size=5))
def test_base64_body_is_the_base64_of_the_filled_text(text: str, values: list[str]) -> None:
    fills = dict(zip((EMAIL, NAME, UNSUBSCRIBE, PREFERENCES, WEB_COPY), values))
    encoded = Base64Body.of(text).encode({k: v.encode("utf-8") for k, v in fills.items()})
    expected = text
    for marker, value in fills.items():
        expected = expected.replace(marker, value)
    assert base64.b64decode(encoded.replace(b"\r\n", b"")).decode("utf-8") == expected
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
