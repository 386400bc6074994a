"""`/admin/articles`: the articles searched by title, section, source and publication dates, a page at a time; and
one article's page: what is kept of its revisions, its sections, views per day and clicks by channel and campaign.

Every role reads; editors act on a story's life from its page (`article_life.py`: correct, kill, hold, release,
mark urgent), which shows its status, its public corrections and the partners that have it. It sits in the console
package rather than the content side's because an article's
clicks are read beside the audience side's editions: a campaign `{edition}-{id}` is that digest edition's.
Revisions: the store keeps the current text with its revision number, times and content hash, not earlier texts,
so the page shows those facts and no invented history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from feeds.article_search import ArticleQuery, ArticleSearch
from feeds.push import PushQueue
from feeds.readership import CHANNELS
from feeds.store import ArticleStore

from ...settings import Settings
from .kit import ConsoleKit, acting

PAGE = 50
MAX_PAGES = 1_000  # past this, narrow the search
MAX_TEXT = 200
VIEW_DAYS = 30
EARLIEST_DAY, LATEST_DAY = date(1900, 1, 1), date(2999, 12, 31)
MAX_ARTICLE_ID = 64
CHANNEL_WORDS = {"email": "console_article_channel_email", "feed": "console_article_channel_feed",
                 "partner": "console_article_channel_partner", "web": "console_article_channel_web",
                 "widget": "console_article_channel_widget", "push": "console_article_channel_push"}
STATUS_WORDS = {"live": "console_article_status_live", "held": "console_article_status_held",
                "killed": "console_article_status_killed"}
_DIGEST_CAMPAIGN = re.compile(r"^(?P<edition>.+)-(?P<id>\d{1,18})$")


@dataclass(frozen=True)
class ArticleFilters:
    text: str = ""
    category: str = ""
    source: str = ""
    since: date | None = None
    until: date | None = None
    page: int = 1
    problem: str | None = None

    def query(self, **more: Any) -> str:
        pairs = {"q": self.text, "category": self.category, "source": self.source,
                 "from": self.since.isoformat() if self.since else "",
                 "to": self.until.isoformat() if self.until else "", **more}
        return urlencode({k: v for k, v in pairs.items() if v not in ("", None)})


def read_article_filters(params: Any, *, categories: list[str], sources: list[str]) -> ArticleFilters:
    """The query string's filters, checked: text with a NUL or too long, an unknown section or source, a date that
    is not YYYY-MM-DD or a page out of range is a problem (422), never a query."""
    text = (params.get("q") or "").strip()
    category, source = params.get("category") or "", params.get("source") or ""
    problem = None
    if len(text) > MAX_TEXT or "\x00" in text:
        problem, text = "console_articles_bad_search", ""
    if category and category not in categories or source and source not in sources:
        problem, category, source = "console_articles_bad_filter", "", ""
    days: list[date | None] = []
    for key in ("from", "to"):
        value = params.get(key) or ""
        try:
            day = date.fromisoformat(value) if value else None
        except ValueError:
            day = None
            problem = "console_articles_bad_filter"
        if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:  # the day after stays a date in every zone
            day, problem = None, "console_articles_bad_filter"
        days.append(day)
    page_text = params.get("page") or "1"
    page = int(page_text) if page_text.isascii() and page_text.isdigit() and len(page_text) < 6 else 0
    if not 1 <= page <= MAX_PAGES:
        problem, page = "console_articles_bad_filter", 1
    return ArticleFilters(text, category, source, days[0], days[1], page, problem)


def campaign_label(campaign: str, editions: tuple[str, ...]) -> tuple[str, str | None, int | None]:
    """("digest", edition, run id) for a digest edition's campaign `{edition}-{id}`, else ("campaign", None, None)."""
    found = _DIGEST_CAMPAIGN.match(campaign)
    if found and found["edition"] in editions:
        return "digest", found["edition"], int(found["id"])
    return "campaign", None, None


class ArticlesPage:
    def __init__(self, kit: ConsoleKit, settings: Settings, search: ArticleSearch, store: ArticleStore,
                 editions: tuple[str, ...], pushes: PushQueue) -> None:
        self.kit = kit
        self.settings = settings
        self.articles = search
        self.store = store
        self.editions = editions
        self.pushes = pushes

    def router(self) -> APIRouter:
        api = APIRouter(prefix="/admin/articles", include_in_schema=False)
        api.add_api_route("", self.search, methods=["GET"], dependencies=[Depends(self.kit.viewer)])
        api.add_api_route("/{article_id}", self.show, methods=["GET"], dependencies=[Depends(self.kit.viewer)])
        return api

    def search(self, request: Request) -> Response:
        sources = {s.name: s.id for s in self.store.sources()}
        filters = read_article_filters(request.query_params, categories=[c.slug for c in self.settings.categories],
                                       sources=list(sources))
        zone = self.settings.site.timezone
        total, rows = self.articles.find(ArticleQuery(
            text=filters.text or None, category=filters.category or None,
            source_id=sources[filters.source] if filters.source else None,
            published_from=_start_of(filters.since, zone), limit=PAGE, offset=(filters.page - 1) * PAGE,
            published_until=_start_of(filters.until + timedelta(days=1), zone) if filters.until else None))
        last_page = min(MAX_PAGES, max(1, -(-total // PAGE)))
        return self.kit.page(request, acting(request), "console/articles.html",
                             status=422 if filters.problem else 200, filters=filters, rows=rows, total=total,
                             categories=self.settings.categories, sources=sorted(sources), when=self.when,
                             category_names={c.slug: c.name for c in self.settings.categories},
                             previous_query=filters.query(page=filters.page - 1) if filters.page > 1 else None,
                             next_query=filters.query(page=filters.page + 1) if filters.page < last_page else None,
                             last_page=last_page)

    def show(self, request: Request, article_id: str, *, problem: str | None = None, status: int = 200) -> Response:
        facts = self.articles.facts(article_id) if 0 < len(article_id) <= MAX_ARTICLE_ID else None
        story = self.store.article(article_id) if facts is not None else None
        if facts is None or story is None:
            return self.kit.page(request, acting(request), "console/readers_missing.html", status=404,
                                 back="/admin/articles")
        views = self.articles.views_per_day(facts.id, days=VIEW_DAYS, now=self.kit.clock(),
                                            zone=self.settings.site.timezone)
        channels = self.articles.clicks_by_channel(facts.id)
        campaigns = [(name, clicks, *campaign_label(name, self.editions))
                     for name, clicks in self.articles.clicks_by_campaign(facts.id)]
        top = max((n for _, n in views), default=0)
        return self.kit.page(request, acting(request), "console/article.html", status=status, article=facts,
                             story=story, problem=problem, status_words=STATUS_WORDS,
                             recipients=self.pushes.received(story.id), views=views,
                             views_total=sum(n for _, n in views), views_top=top, view_days=VIEW_DAYS,
                             channels=[(c, channels.get(c, 0)) for c in CHANNELS] +
                                      [(c, n) for c, n in sorted(channels.items()) if c not in CHANNELS],
                             clicks_total=sum(channels.values()), channel_words=CHANNEL_WORDS, campaigns=campaigns, when=self.when,
                             category_names={c.slug: c.name for c in self.settings.categories})

    def when(self, moment: datetime | None) -> str:
        return moment.astimezone(self.settings.site.timezone).strftime("%Y-%m-%d %H:%M") if moment else "—"


def _start_of(day: date | None, zone: Any) -> datetime | None:
    return datetime(day.year, day.month, day.day, tzinfo=zone) if day else None
