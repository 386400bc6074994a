"""Write the demo's upstream sources, dated relative to now, so that the demo always looks fresh.

    python examples/build_demo.py var/demo

reads examples/demo/articles.json (original sample articles written for Gazette) and writes
  politics-society.rss   RSS 2.0, as an upstream CMS would publish it (정치 and 사회, told apart by <category>)
  economy.atom           Atom 1.0
  culture.jsonl          a CMS export, one article per line (with the CMS's view counts)
  views.csv              an analytics export of the other articles' views (`gazette views import`)
Guids and ids are fixed, so running it again changes dates only and Gazette stores nothing twice.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

KST = ZoneInfo("Asia/Seoul")
SITE = "https://hanbit-ilbo.example"
CATEGORY_NAMES = {"politics": "정치", "economy": "경제", "society": "사회", "culture": "문화"}


def body_html(article: dict) -> str:
    return "".join(f"<p>{escape(p)}</p>" for p in article["paragraphs"])


def when(now: datetime, hours: float | None) -> datetime | None:
    if hours is None:
        return None
    return (now - timedelta(hours=hours)).replace(second=0, microsecond=0).astimezone(KST)


def link(number: int) -> str:
    return f"{SITE}/news/articleView.html?idxno={number}"


def rss(articles: list[tuple[int, dict]], now: datetime) -> str:
    items = []
    for number, a in articles:
        published = when(now, a["hours_ago"])
        items.append(f"""    <item>
      <title>{escape(a["title"])}</title>
      <link>{link(number)}</link>
      <guid isPermaLink="false">hanbit-ilbo-{number}</guid>
      <description>{escape(a["summary"])}</description>
      <content:encoded><![CDATA[{body_html(a)}]]></content:encoded>
      <category>{CATEGORY_NAMES[a["category"]]}</category>
{"".join(f"      <category>{escape(t)}</category>{chr(10)}" for t in a["tags"])}      <dc:creator>{escape(a["byline"])} 기자</dc:creator>
      <pubDate>{format_datetime(published)}</pubDate>
    </item>""")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>한빛일보 정치·사회</title>
    <link>{SITE}/</link>
    <description>한빛일보 정치·사회 기사</description>
    <language>ko</language>
{chr(10).join(items)}
  </channel>
</rss>
"""


def atom(articles: list[tuple[int, dict]], now: datetime) -> str:
    entries = []
    newest = None
    for number, a in articles:
        published = when(now, a["hours_ago"])
        updated = when(now, a["updated_hours_ago"]) or published
        newest = max(newest or updated, updated)
        entries.append(f"""  <entry>
    <id>tag:hanbit-ilbo.example,2026:article/{number}</id>
    <title>{escape(a["title"])}</title>
    <link rel="alternate" type="text/html" href="{link(number)}"/>
    <published>{published.isoformat()}</published>
    <updated>{updated.isoformat()}</updated>
    <author><name>{escape(a["byline"])} 기자</name><email>{a["email"]}</email></author>
    <category term="{CATEGORY_NAMES[a["category"]]}"/>
{"".join(f'    <category term="{escape(t, {chr(34): "&quot;"})}"/>{chr(10)}' for t in a["tags"])}    <summary>{escape(a["summary"])}</summary>
    <content type="html">{escape(body_html(a))}</content>
  </entry>""")
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="ko">
  <id>{SITE}/economy</id>
  <title>한빛일보 경제</title>
  <link rel="alternate" href="{SITE}/economy"/>
  <updated>{(newest or now).isoformat()}</updated>
  <author><name>한빛일보</name></author>
{chr(10).join(entries)}
</feed>
"""


def jsonl(articles: list[tuple[int, dict]], now: datetime) -> str:
    lines = []
    for number, a in articles:
        updated = when(now, a["updated_hours_ago"])
        lines.append(json.dumps({
            "id": f"cms-{number}", "url": link(number), "title": a["title"], "byline": a["byline"] + " 기자",
            "author_email": a["email"], "category": CATEGORY_NAMES[a["category"]],
            "published_at": when(now, a["hours_ago"]).isoformat(),
            "updated_at": updated.isoformat() if updated else None, "summary": a["summary"],
            "content_html": body_html(a), "tags": a["tags"], "views": a["views"],
        }, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def main(out: Path) -> None:
    data = json.loads((Path(__file__).parent / "demo" / "articles.json").read_text(encoding="utf-8"))
    numbered = [(1001 + i, a) for i, a in enumerate(data["articles"])]
    now = datetime.now(timezone.utc)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "politics-society.rss": rss([x for x in numbered if x[1]["source"] == "rss"], now),
        "economy.atom": atom([x for x in numbered if x[1]["source"] == "atom"], now),
        "culture.jsonl": jsonl([x for x in numbered if x[1]["source"] == "jsonl"], now),
    }
    files["views.csv"] = "url_or_id,views,from\n" + "".join(
        f"{link(number)},{a['views']},{when(now, a['hours_ago']).isoformat()}\n"
        for number, a in numbered if a["source"] != "jsonl")
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    print(f"demo sources written to {out}: {', '.join(files)} ({len(numbered)} articles)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "var/demo"))
