"""The `html` source kind's parsers: golden article pages (tests/data/pages/NAME.html + NAME.expected.json),
sitemaps, list pages, and named cases for dates and bylines.

To refresh the golden files after a deliberate change: GAZETTE_UPDATE_GOLDEN=1 pytest tests/test_html.py,
then read the diff before committing it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import trafilatura

from feeds.dates import parse_date
from feeds.errors import ParseError
from feeds.html import parse_article_page, parse_link_page, parse_sitemap
from tests.conftest import DATA

PAGES = DATA / "pages"
KST = ZoneInfo("Asia/Seoul")
SITE = "https://hanbit-ilbo.example"
# The URL each page was fetched from (the parser reads ids and resolves relative URLs against it).
ARTICLE_URLS = {
    "jsonld_article": f"{SITE}/news/articleView.html?idxno=20451",
    "opengraph_only": f"{SITE}/news/articleView.html?idxno=20477&sc_section_code=S1N4",
    "trafilatura_needed": f"{SITE}/sub/view.php?no=7720",
    "euckr_article": f"{SITE}/news/read.php?article_id=5521",
    "undeclared_cp949": f"{SITE}/news/2026/11/18/hanbit-univ-exhibition",
}
BOILERPLATE = ("저작권자", "무단", "재배포", "ⓒ", "©", "Copyright", "AI 학습", "관련기사", "관련 기사", "페이스북",
               "카카오", "프린트", "광고", "기자", "@", "<script", "googletag", "adsbygoogle", "기자의 다른 기사")


def parsed(name: str, **kwargs: object) -> dict[str, object]:
    entry = parse_article_page((PAGES / f"{name}.html").read_bytes(), ARTICLE_URLS[name], timezone=KST, **kwargs)
    row = dataclasses.asdict(entry)
    row["categories"] = list(entry.categories)
    for key in ("published_at", "updated_at"):
        row[key] = row[key].isoformat() if row[key] else None
    return row


@pytest.mark.parametrize("name", sorted(ARTICLE_URLS))
def test_golden(name: str) -> None:
    expected_path = PAGES / f"{name}.expected.json"
    actual = parsed(name)
    if os.environ.get("GAZETTE_UPDATE_GOLDEN"):
        expected_path.write_text(json.dumps(actual, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert actual == json.loads(expected_path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(ARTICLE_URLS))
def test_boilerplate_never_reaches_the_body(name: str) -> None:
    body = str(parsed(name)["content_html"])
    assert len(body) > 100
    for banned in BOILERPLATE:
        assert banned not in body, banned


def test_trafilatura_runs_only_without_a_body(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("trafilatura called although the page had a body")

    monkeypatch.setattr(trafilatura, "extract", refuse)
    for name in ("jsonld_article", "opengraph_only", "euckr_article", "undeclared_cp949"):
        assert parsed(name)["content_html"]
    with pytest.raises(AssertionError, match="trafilatura called"):
        parsed("trafilatura_needed")


def test_euc_kr_is_read_as_cp949() -> None:
    body = (PAGES / "euckr_article.html").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        body.decode("euc-kr")  # the page uses a CP949-only syllable, as real "EUC-KR" pages do
    for header in (None, "EUC-KR", "ks_c_5601-1987", "utf-8"):  # a wrong header charset falls back
        entry = parse_article_page(body, ARTICLE_URLS["euckr_article"], timezone=KST, encoding=header)
        assert entry.title == "한빛시 '똠얌꿍 축제' 첫 개최…동남아 음식 한자리에"


def test_undeclared_cp949_and_utf8_bom() -> None:
    assert "햏햏 사진전" in parsed("undeclared_cp949")["title"]  # type: ignore[operator]
    page = "\ufeff<html><head><title>한빛시 소식</title></head><body><p>본문</p></body></html>".encode("utf-8")
    assert parse_article_page(page, SITE + "/a", timezone=KST).title == "한빛시 소식"


def page(head: str, body: str = "<article><p>한빛시가 새 정책을 발표했다.</p></article>") -> bytes:
    return f"<html><head><meta charset='utf-8'>{head}</head><body>{body}</body></html>".encode("utf-8")


def test_json_ld_wins_over_meta_and_bad_blocks_are_skipped() -> None:
    ld = json.dumps([{"@type": ["NewsArticle"], "headline": "JSON-LD 제목", "author": "나래 기자",
                      "image": "/photo/1.jpg", "datePublished": "2026-11-20 08:00", "identifier": 77,
                      "keywords": "교통, 버스"}], ensure_ascii=False)
    entry = parse_article_page(page(
        '<script type="application/ld+json">{not json</script>'
        f'<script type="application/ld+json">{ld}</script>'
        '<meta property="og:title" content="OG 제목"><meta property="article:published_time" '
        'content="2026-11-19T08:00:00+09:00"><meta property="og:image" content="/og.jpg">'), SITE + "/a?x=1",
        timezone=KST)
    assert (entry.title, entry.byline, entry.image_url) == ("JSON-LD 제목", "나래 기자", SITE + "/photo/1.jpg")
    assert entry.author_email is None  # a plain-string author has a name only
    assert entry.published_at == datetime(2026, 11, 20, 8, 0, tzinfo=KST)
    assert (entry.guid, entry.is_guid_trusted, entry.categories) == ("hanbit-ilbo.example:77", True, ("교통", "버스"))


def test_meta_date_wins_over_page_text_and_no_id_means_no_guid() -> None:
    entry = parse_article_page(page('<meta property="article:published_time" content="2026-11-19T08:00:00+09:00">'
                                    '<meta property="og:title" content="제목 - 한빛일보">'
                                    '<meta property="og:site_name" content="한빛일보">',
                                    "<p>입력 2026.11.20 14:05</p><article><p>본문이다.</p></article>"),
                               SITE + "/news/slug", timezone=KST)
    assert entry.title == "제목"
    assert entry.published_at == datetime(2026, 11, 19, 8, 0, tzinfo=timezone(timedelta(hours=9)))
    assert (entry.guid, entry.is_guid_trusted, entry.url) == (None, False, SITE + "/news/slug")


@pytest.mark.parametrize("body_html, expected", [
    pytest.param("<div id='articleBody'>마지막 문장이다.\n저작권자 © 한빛일보 무단전재 및 재배포 금지\n</div>",
                 "마지막 문장이다.", id="copyright-line-in-same-text"),
    pytest.param("<article><p>문화체육관광부는 저작권자 보호를 강화한다고 밝혔다.</p></article>",
                 "<p>문화체육관광부는 저작권자 보호를 강화한다고 밝혔다.</p>", id="copyright-word-in-a-sentence-kept"),
    pytest.param("<article><p>본문이다.<br>/한빛일보 홍길동 기자<br>Copyright ⓒ 한빛일보</p></article>",
                 "<p>본문이다.</p>", id="reporter-and-copyright-after-br"),
    pytest.param("<article><p>본문이다.</p><p>[한빛일보=홍길동 기자]</p><div><span>관련 기사</span></div>"
                 "<ul><li><a href='/a'>다른 기사</a></li></ul></article>", "<p>본문이다.</p>", id="related-div-list"),
])
def test_boilerplate_lines(body_html: str, expected: str) -> None:
    entry = parse_article_page(page("<title>제목</title>", body_html), SITE + "/a", timezone=KST)
    assert entry.content_html == expected


@pytest.mark.parametrize("body, message", [
    pytest.param(b"", "not readable HTML", id="empty"),
    pytest.param(b"<html><body><div></div></body></html>", "no article found", id="no-title"),
])
def test_no_article_raises_parse_error(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_article_page(body, SITE + "/a", timezone=KST)


def test_link_page() -> None:
    body = (PAGES / "section_list.html").read_bytes()
    links = parse_link_page(body, f"{SITE}/news/articleList.html?sc_section_code=S1N3")
    assert links == [
        f"{SITE}/news/articleView.html?idxno=20451",
        f"{SITE}/news/articleView.html?idxno=20477",
        "https://www.hanbit-ilbo.example/news/articleView.html?idxno=20470",
        f"{SITE}/news/articleView.html?idxno=20466",
        f"{SITE}/news/articleView.html?idxno=20461",
        f"{SITE}/news/2026/11/19/hanbit-river-cleanup",
        f"{SITE}/news/articleView.html?idxno=20455&utm_source=list",
    ]


def test_plain_sitemap_newest_first() -> None:
    entries = parse_sitemap((PAGES / "sitemap.xml").read_bytes(), f"{SITE}/sitemap.xml", timezone=KST)
    assert [(e.loc, e.lastmod) for e in entries] == [
        (f"{SITE}/news/articleView.html?idxno=20451", datetime(2026, 11, 21, 1, 0, tzinfo=timezone.utc)),
        (f"{SITE}/news/articleView.html?idxno=20477", datetime(2026, 11, 21, 9, 30, tzinfo=KST)),
        (f"{SITE}/news/articleView.html?idxno=20461", datetime(2026, 11, 19, tzinfo=KST)),  # a bare day, in KST
        (f"{SITE}/com/company.html", None),
    ]
    assert not any(e.is_index or e.title for e in entries)


def test_google_news_sitemap() -> None:
    entries = parse_sitemap((PAGES / "news_sitemap.xml").read_bytes(), f"{SITE}/news_sitemap.xml")
    assert [(e.loc.rsplit("=", 1)[1], e.published_at, e.title) for e in entries] == [
        ("20477", datetime(2026, 11, 20, 14, 10, tzinfo=KST), "한빛시립도서관, 24시간 무인 대출함 설치"),
        ("20451", datetime(2026, 11, 20, 14, 5, tzinfo=KST), "한빛시, 새벽동~신항 잇는 직통버스 12월 개통"),
        ("20440", datetime(2026, 11, 19, 18, 0, tzinfo=KST), '한빛시장 "내년 예산 8% 늘린다"'),
    ]
    assert entries[0].lastmod == datetime(2026, 11, 21, 9, 30, tzinfo=KST)


def test_sitemap_index() -> None:
    entries = parse_sitemap((PAGES / "sitemap_index.xml").read_bytes(), f"{SITE}/sitemap_index.xml")
    assert [(e.loc.rsplit("/", 1)[1], e.is_index) for e in entries] == [
        ("2026-11.xml", True), ("2026-10.xml", True), ("news.xml", True)]


@pytest.mark.parametrize("name", ["bomb.xml", "xxe.xml"])
def test_hostile_sitemaps_are_refused_unexpanded(name: str) -> None:
    started = time.monotonic()
    with pytest.raises(ParseError, match="refused a DTD") as caught:
        parse_sitemap((PAGES / name).read_bytes(), f"{SITE}/{name}")
    assert time.monotonic() - started < 1
    assert "root:" not in str(caught.value) and "lollol" not in str(caught.value)


@pytest.mark.parametrize("body, message", [
    pytest.param(b"<urlset><url><loc>x</loc>", "not well-formed", id="truncated"),
    pytest.param(b"<rss version='2.0'><channel/></rss>", "<rss>, not <urlset>", id="rss"),
    pytest.param(b"\x1f\x8b\x08\x00gzipped", "not well-formed", id="gzipped"),
])
def test_bad_sitemaps_raise_parse_error(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_sitemap(body, f"{SITE}/sitemap.xml")


@pytest.mark.parametrize("text, expected", [
    pytest.param("2022-11-18 16:55:02", datetime(2022, 11, 18, 16, 55, 2, tzinfo=KST), id="iso-naive-space"),
    pytest.param("2022-11-18T16:55:02+09:00", datetime(2022, 11, 18, 16, 55, 2, tzinfo=KST), id="iso-zone"),
    pytest.param("2022-11-18T07:55:02Z", datetime(2022, 11, 18, 7, 55, 2, tzinfo=timezone.utc), id="iso-z"),
    pytest.param("2022-11-18T16:55:02.250+0900", datetime(2022, 11, 18, 16, 55, 2, 250000, tzinfo=KST),
                 id="iso-fraction-compact-zone"),
    pytest.param("2022-11-18", datetime(2022, 11, 18, tzinfo=KST), id="iso-day"),
    pytest.param("Fri, 18 Nov 2022 16:55:02 +0900", datetime(2022, 11, 18, 16, 55, 2, tzinfo=KST), id="rfc822"),
    pytest.param("Fri, 18 Nov 2022 07:55:02 GMT", datetime(2022, 11, 18, 7, 55, 2, tzinfo=timezone.utc),
                 id="rfc822-gmt"),
    pytest.param("18 Nov 2022 16:55", datetime(2022, 11, 18, 16, 55, tzinfo=KST), id="rfc822-naive"),
    pytest.param("2022.11.18 16:55", datetime(2022, 11, 18, 16, 55, tzinfo=KST), id="dotted"),
    pytest.param("2022. 11. 18. 16:55", datetime(2022, 11, 18, 16, 55, tzinfo=KST), id="dotted-spaced"),
    pytest.param("2022/11/18 16:55:09", datetime(2022, 11, 18, 16, 55, 9, tzinfo=KST), id="slashed"),
    pytest.param("2022년 11월 18일", datetime(2022, 11, 18, tzinfo=KST), id="korean-day"),
    pytest.param("2022년 11월 18일 16시 55분", datetime(2022, 11, 18, 16, 55, tzinfo=KST), id="korean-time"),
    pytest.param("2022년 11월 18일 16시", datetime(2022, 11, 18, 16, 0, tzinfo=KST), id="korean-hour"),
    pytest.param("2022.11.18(금) 오후 4:55", datetime(2022, 11, 18, 16, 55, tzinfo=KST), id="weekday-pm"),
    pytest.param("2022년 11월 18일 금요일 오전 12:10", datetime(2022, 11, 18, 0, 10, tzinfo=KST), id="midnight-am"),
    pytest.param("입력 2022.11.18 16:55", datetime(2022, 11, 18, 16, 55, tzinfo=KST), id="label-input"),
    pytest.param("수정 2022.11.19 09:00", datetime(2022, 11, 19, 9, 0, tzinfo=KST), id="label-modified"),
    pytest.param("승인 2022.11.18 17:02", datetime(2022, 11, 18, 17, 2, tzinfo=KST), id="label-approved"),
    pytest.param("기사입력 : 2022-11-18 16:55", datetime(2022, 11, 18, 16, 55, tzinfo=KST), id="label-article-input"),
    pytest.param("입력 2022.11.18 16:55 | 수정 2022-11-19T09:00:00+09:00",
                 datetime(2022, 11, 18, 16, 55, tzinfo=KST), id="first-date-wins"),
    pytest.param("", None, id="empty"),
    pytest.param("어제 오후", None, id="words"),
    pytest.param("2022.13.45 25:61", None, id="impossible"),
    pytest.param("garbage 12 34", None, id="garbage"),
])
def test_parse_date(text: str, expected: datetime | None) -> None:
    result = parse_date(text, KST)
    assert result == expected
    if result is not None:
        assert result.tzinfo is not None
        assert result.utcoffset() == expected.utcoffset()  # type: ignore[union-attr]


def test_parse_date_reads_naive_times_in_the_given_zone() -> None:
    assert parse_date("2022-11-18 16:55", KST) == datetime(2022, 11, 18, 7, 55, tzinfo=timezone.utc)
    assert parse_date("2022-11-18 16:55", timezone.utc) == datetime(2022, 11, 18, 16, 55, tzinfo=timezone.utc)


# Bylines: tests/test_bylines.py holds the table of shapes.
