"""A generated corpus of Korean dailies' RSS, with the shapes real feeds have (issue 13), built at test time.

20 publishers, each with an "all" feed and 5 section feeds. Every story is in its publisher's all feed and in the
section feeds it was published in (about one in six in two or three sections). Publishers differ the way real
ones do:
- identity: one guid in every feed; the link as guid (isPermaLink) with per-feed `utm_*`; another guid per
  feed for the same link; no guid at all;
- times: three publishers write KST wall-clock times with a `Z`/`GMT` (their lastBuildDate is right);
- text: descriptions cut off mid-reference (`…&#3`) or holding references to control characters, empty
  `content:encoded`, bodies escaped twice (`&amp;lt;…&amp;gt;`);
- bylines: author fields of many shapes, or none, with the byline in the text's lead (`[서울=뉴시스] 박진희 기자 =`)
  or last line (`홍길동 기자 hong@…`).
Nothing here is copied from a real article: titles and bodies are made from a small vocabulary, deterministically.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

PUBLISHERS = 20
STORIES = 30  # per publisher
SECTIONS = {"politics": "정치", "economy": "경제", "society": "사회", "culture": "문화", "world": "국제"}
KST_AS_UTC = frozenset({3, 7, 11})  # publishers that print KST wall time as UTC
BYLINES = ["김하늘 기자", "박바다 선임기자", "이범준 사법전문기자", "김진호 국제전문기자 jh@example.com", "안호기 경제에디터",
           "워싱턴 | 박영환·베이징 | 박은경 특파원", "홍길동·김철수 기자", "정다운 인턴기자", "최은비 기자 (eunbi@example.com)",
           "[한빛일보 윤가람 기자]", "논설위원 오지훈", "글·사진 한솔 기자"]
WORDS = ["시의회", "예산", "협의", "항만", "물동량", "수출", "전시", "축제", "교통", "버스", "노선", "개편", "학교", "급식",
         "병원", "응급실", "주택", "공급", "기후", "폭염", "도서관", "개관", "선거", "공약", "환율", "금리", "특파원", "현장"]
NOW = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)  # the tests' clock: 09:00 KST


@dataclass
class Story:
    publisher: int
    number: int
    sections: list[str]
    title: str
    published_at: datetime
    byline: str

    @property
    def url(self) -> str:
        return f"https://p{self.publisher:02d}.example.kr/news/articleView.html?idxno={1000 + self.number}"


@dataclass
class Corpus:
    folder: Path
    stories: list[Story]
    sources_toml: str
    feeds: list[Path] = field(default_factory=list)

    @property
    def expected_count(self) -> int:
        return len(self.stories)


def build(folder: Path, *, seed: int = 13) -> Corpus:
    """Write every feed under `folder` and return what a test needs to check an ingest of them."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    stories: list[Story] = []
    sources: list[str] = []
    feeds: list[Path] = []
    slugs = list(SECTIONS)
    for p in range(PUBLISHERS):
        built_at = NOW - timedelta(minutes=rng.randrange(1, 20))
        own: list[Story] = []
        for n in range(STORIES):
            primary = slugs[(p + n) % len(slugs)]
            extra = rng.sample([s for s in slugs if s != primary], k=rng.choice([1, 2])) if rng.random() < 0.16 else []
            title = " ".join(rng.sample(WORDS, 3)) + f" {p}-{n}"
            # Published within three days before the feed was built; a few exactly at the same minute.
            published = built_at - timedelta(minutes=rng.choice([0, 0, 5]) if n < 3 else rng.randrange(10, 4320))
            own.append(Story(p, n, [primary, *extra], title, published.replace(second=0, microsecond=0),
                             BYLINES[(p * 7 + n) % len(BYLINES)]))
        stories += own
        for feed in ["all", *slugs]:
            items = [s for s in own if feed == "all" or feed in s.sections]
            path = folder / f"p{p:02d}-{feed}.xml"
            path.write_text(_rss(p, feed, items, built_at, rng), encoding="utf-8")
            feeds.append(path)
            name = f"p{p:02d}-{feed}"
            if feed == "all":
                mapping = ", ".join(f'"{korean}" = "{slug}"' for slug, korean in SECTIONS.items())
                sources.append(f'[[sources]]\nname = "{name}"\nkind = "feed"\npath = "{path}"\ncategory_map = {{ {mapping} }}\n')
            else:
                sources.append(f'[[sources]]\nname = "{name}"\nkind = "feed"\npath = "{path}"\ncategory = "{feed}"\n')
    categories = "".join(f'[[categories]]\nslug = "{slug}"\nname = "{korean}"\n\n' for slug, korean in SECTIONS.items())
    return Corpus(folder, stories, categories + "\n".join(sources), feeds)


def _rss(p: int, feed: str, items: list[Story], built_at: datetime, rng: random.Random) -> str:
    body = "".join(_item(p, feed, s, rng) for s in items)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            f'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
            f"<title>신문 {p} {SECTIONS.get(feed, '전체')}</title><link>https://p{p:02d}.example.kr/</link>"
            f"<description>신문 {p}</description><lastBuildDate>{format_datetime(built_at, usegmt=True)}</lastBuildDate>"
            f"{body}</channel></rss>\n")


def _item(p: int, feed: str, story: Story, rng: random.Random) -> str:
    utm = f"utm_source={feed}&utm_medium=rss&utm_campaign=p{p}"
    link = f"{story.url}&{utm}"
    style = p % 4
    if style == 0:  # one guid in every feed
        guid = f'<guid isPermaLink="false">p{p}-{story.number}</guid>'
    elif style == 1:  # the link as guid, its utm_* different per feed
        guid = f"<guid>{escape(link)}</guid>"
    elif style == 2:  # another guid per feed, the same link
        guid = f'<guid isPermaLink="false">{feed}-{p}-{story.number}</guid>'
    else:  # no guid at all
        guid = ""
    when = story.published_at
    if p in KST_AS_UTC:  # KST wall-clock time written as GMT
        when = (when + timedelta(hours=9)).replace(tzinfo=UTC)
    words = " ".join(random.Random(story.publisher * 1000 + story.number).sample(WORDS, 6))  # the same in every feed
    text = f"{story.title}에 대해 {words} 소식을 전했다."
    has_author = p % 3 != 2
    if not has_author:  # the byline in the text, as a wire story's lead or its last line
        words_of = [w for w in re.sub(r"[\[\]()]", " ", story.byline.split("|")[-1]).split()
                    if "@" not in w and w != "한빛일보"]
        if words_of[0] == "논설위원":  # in the text, the name comes first
            words_of = words_of[1:] + words_of[:1]
        written = " ".join(words_of)
        text = (f"[서울=뉴시스] {written} = {text}" if story.number % 2 else f"{text} {written} reporter{p}@example.kr")
    description = escape(text)
    if story.number % 7 == 3:
        description = description[:60] + "&amp;#3"  # a summary cut off mid-reference, as escaped text…
    if story.number % 7 == 4:
        description = description + "&#3;"  # …and a real reference to a control character
    if story.number % 11 == 5:
        description = description + "&#x1F;"
    content = f"<p>{escape(text)}</p><p>{words}</p>"
    if p % 6 == 1:  # escaped twice at the source
        content = f"<p>&amp;lt;이상한 변호사 우영우&amp;gt; {escape(text)}</p>"
    encoded = "" if p % 5 == 0 else content
    author = f"<dc:creator>{escape(story.byline)}</dc:creator>" if has_author else ""
    category = f"<category>{SECTIONS[story.sections[0]]}</category>" if feed == "all" else ""
    return (f"<item><title>{escape(story.title)}</title><link>{escape(link)}</link>{guid}"
            f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate>{author}{category}"
            f"<description>{description}</description>"
            f"<content:encoded><![CDATA[{encoded}]]></content:encoded></item>")
