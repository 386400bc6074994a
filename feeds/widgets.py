"""The embeddable 많이 본 뉴스 (most viewed) box: what a partner's page asks for, the ranking it shows, and its three
representations, the HTML fragment (for an iframe), the JSON (for the script) and the script itself.

`read_query` turns the request's parameters into a `WidgetQuery` or an `Invalid` naming the parameter, in the
asked language; only configured categories, the ranking windows, 1..`max_limit` and the catalogue's languages
pass, so the cache's keys are bounded by the configuration. `build_items`, `render_fragment`, `render_json` and
`render_script` are pure. `MostViewedBoard` is the edge: it ranks through the store (`readership.most_viewed`) at
most once per `[widgets] refresh` for each (category, window), keeps the representations it made in a bounded
cache, and hands them out with a strong ETag of their bytes, so a client revalidates cheaply and sees new bytes as
soon as the ranking (or a title) changed. Every link is a signed `/r/` redirect of the `widget` channel: a click
counts like any other.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from jinja2 import Environment

from templates import CATALOGUE, directory

from .core.errors import Invalid
from .model import StoredArticle
from .publish import Rendered
from .readership import WINDOWS, Redirects, most_viewed
from .settings import Settings
from .store import ArticleStore

CHANNEL = "widget"
DEFAULT_WINDOW = "24h"
DEFAULT_LIMIT = 10
CONTENT_TYPES = {"html": "text/html; charset=utf-8", "json": "application/json; charset=utf-8",
                 "js": "text/javascript; charset=utf-8"}
MAX_RENDERED = 512  # representations kept; past it the least recently asked for go first
MAX_ECHO = 40  # how much of a refused value an error message repeats
_LIMIT = re.compile(r"[0-9]{1,3}")
_CSS_SLOT = "/*GAZETTE_CSS*/"


@dataclass(frozen=True)
class WidgetQuery:
    category: str | None
    window: str
    limit: int
    lang: str


@dataclass(frozen=True)
class WidgetItem:
    rank: int
    id: str
    title: str
    url: str  # the signed /r/ link of the widget channel
    category: str | None
    published_at: datetime


def read_query(params: Mapping[str, str], settings: Settings) -> WidgetQuery:
    """The box asked for, or `Invalid` (422) naming the first bad parameter in the asked language (else the site's)."""
    lang = params.get("lang") or settings.site.language
    words_lang = lang if lang in CATALOGUE.languages else settings.site.language

    def refuse(name: str, value: str, allowed: str) -> Invalid:
        shown = value if len(value) <= MAX_ECHO else value[:MAX_ECHO] + "…"
        return Invalid(CATALOGUE.text(words_lang, "widget_bad_parameter", name=name, value=shown, allowed=allowed))

    if lang not in CATALOGUE.languages:
        raise refuse("lang", lang, ", ".join(CATALOGUE.languages))
    category = params.get("category") or None
    if category is not None and settings.category(category) is None:
        raise refuse("category", category, ", ".join(c.slug for c in settings.categories) or "-")
    window = params.get("window") or DEFAULT_WINDOW
    if window not in WINDOWS:
        raise refuse("window", window, ", ".join(WINDOWS))
    limit_text = params.get("limit") or str(DEFAULT_LIMIT)
    top = settings.widgets.max_limit
    if not _LIMIT.fullmatch(limit_text) or not 1 <= int(limit_text) <= top:
        raise refuse("limit", limit_text, f"1–{top}")
    return WidgetQuery(category=category, window=window, limit=int(limit_text), lang=lang)


def build_items(ranked: list[StoredArticle], link: Callable[[str], str]) -> tuple[WidgetItem, ...]:
    """The ranked articles as the box lists them, numbered from 1; an article without a URL has nowhere to lead."""
    found = [a for a in ranked if a.url]
    return tuple(WidgetItem(rank=i, id=a.id, title=a.title, url=link(a.id), category=a.category,
                            published_at=a.published_at) for i, a in enumerate(found, start=1))


def box_title(settings: Settings, query: WidgetQuery) -> str:
    category = settings.category(query.category) if query.category else None
    if category is None:
        return CATALOGUE.text(query.lang, "widget_most_viewed")
    return CATALOGUE.text(query.lang, "widget_most_viewed_in", category=category.name)


def render_fragment(templates: Environment, css: str, settings: Settings, query: WidgetQuery,
                    items: tuple[WidgetItem, ...]) -> bytes:
    """The box as a page of its own, for an iframe: no script, links open in the top window."""
    return templates.get_template("widgets/most_viewed.html").render(
        lang=query.lang, site=settings.site.name, title=box_title(settings, query), css=css, items=items,
        empty=CATALOGUE.text(query.lang, "widget_empty")).encode("utf-8")


def render_json(settings: Settings, query: WidgetQuery, items: tuple[WidgetItem, ...]) -> bytes:
    """The box as data, what the script renders. `<`, `>` and `&` are escaped as \\u003c… so that the bytes stay
    inert even where someone pastes them into a page."""
    doc = {"title": box_title(settings, query), "empty": CATALOGUE.text(query.lang, "widget_empty"),
           "lang": query.lang, "category": query.category, "window": query.window,
           "items": [{"rank": i.rank, "id": i.id, "title": i.title, "url": i.url, "category": i.category,
                      "published_at": i.published_at.astimezone(settings.site.timezone).isoformat()} for i in items]}
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode("utf-8")


def render_script(source: str, css: str) -> bytes:
    """The script with the box's stylesheet in it (one stylesheet themes the fragment and the script's box)."""
    return source.replace(f'"{_CSS_SLOT}"', json.dumps(css).replace("<", "\\u003c")).encode("utf-8")


def represent(body: bytes, fmt: str, last_modified: datetime) -> Rendered:
    return Rendered(body=body, gzipped=gzip.compress(body, compresslevel=9, mtime=0),
                    etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"', last_modified=last_modified,
                    content_type=CONTENT_TYPES[fmt])


@dataclass(frozen=True)
class _Ranking:
    computed_at: datetime
    items: tuple[WidgetItem, ...]  # the top `max_limit`; a smaller box shows the first of them


class MostViewedBoard:
    """Rankings per (category, window), computed through the store at most once per `[widgets] refresh`, and the
    representations made of them. `cached` never touches the database (for the event loop); `get` may (run it in
    the thread pool). Each ranking is computed by one thread at a time: a second request waiting for the same one
    finds it made; other rankings do not wait."""

    def __init__(self, settings: Settings, store: ArticleStore, redirects: Redirects, templates: Environment,
                 clock: Callable[[], datetime]) -> None:
        self._settings = settings
        self._store = store
        self._redirects = redirects
        self._templates = templates
        self._clock = clock
        self._css = (directory() / "widgets" / "most_viewed.css").read_text(encoding="utf-8")
        source = (directory() / "widgets" / "most_viewed.js").read_text(encoding="utf-8")
        self.script = represent(render_script(source, self._css), "js", clock())
        self._rankings: dict[tuple[str | None, str], _Ranking] = {}
        self._rendered: OrderedDict[tuple[WidgetQuery, str], tuple[datetime, Rendered]] = OrderedDict()
        self._lock = threading.Lock()  # the dicts; held briefly, never while the database is asked
        self._computing: dict[tuple[str | None, str], threading.Lock] = {}  # one per ranking: bounded like them

    def cached(self, query: WidgetQuery, fmt: str) -> Rendered | None:
        """The representation if its ranking is fresh, without asking the database; None when it must be computed."""
        ranking = self._rankings.get((query.category, query.window))
        if ranking is None or self._clock() - ranking.computed_at >= self._settings.widgets.refresh:
            return None
        return self._represent(query, fmt, ranking)

    def get(self, query: WidgetQuery, fmt: str) -> Rendered:
        """The representation, the ranking computed first when it is stale (a query: not on the event loop)."""
        found = self.cached(query, fmt)
        if found is not None:
            return found
        key = (query.category, query.window)
        with self._lock:
            computing = self._computing.setdefault(key, threading.Lock())
        with computing:
            ranking = self._rankings.get(key)
            now = self._clock()
            if ranking is None or now - ranking.computed_at >= self._settings.widgets.refresh:
                window = WINDOWS[query.window]
                ranked = most_viewed(self._store, window=window, now=now, limit=self._settings.widgets.max_limit,
                                     category=query.category, max_age=max(self._settings.views.max_age, window))
                ranking = _Ranking(now, build_items(ranked, lambda article_id: self._redirects.url(article_id,
                                                                                                   CHANNEL)))
                with self._lock:
                    self._rankings[key] = ranking
        return self._represent(query, fmt, ranking)

    def _represent(self, query: WidgetQuery, fmt: str, ranking: _Ranking) -> Rendered:
        with self._lock:
            kept = self._rendered.get((query, fmt))
            if kept is not None:
                self._rendered.move_to_end((query, fmt))
                if kept[0] == ranking.computed_at:
                    return kept[1]
        items = ranking.items[:query.limit]
        body = (render_fragment(self._templates, self._css, self._settings, query, items) if fmt == "html"
                else render_json(self._settings, query, items))
        # Last-Modified moves only with the bytes: a ranking computed again but unchanged is the same representation.
        rendered = kept[1] if kept is not None and kept[1].body == body else represent(body, fmt, ranking.computed_at)
        with self._lock:
            self._rendered[(query, fmt)] = (ranking.computed_at, rendered)
            self._rendered.move_to_end((query, fmt))
            while len(self._rendered) > MAX_RENDERED:
                self._rendered.popitem(last=False)
        return rendered
