"""An article's life after publication: corrected, killed (withdrawn), held and released, marked urgent.

Editors act through `ArticleLife` (the console, `/api/articles/…` and `gazette articles …` call the same methods).
Each change is one transaction that moves the article's `changed_at` (so every feed's version moves and its bytes
are made again within the refresh interval), bumps its revision where readers see a new version, writes the event
log (`feeds.events`: partner pushes and webhooks tell the outside from it) and returns the article as stored.

    correct   a public note (정정) under the story; `updated` moves; article.corrected
    kill      out of every feed, ranking, digest and partner feed for good; Atom feeds carry an RFC 6721 tombstone;
              /r/ links show a notice; article.killed is pushed to the partners that have the story
    hold      out of everything until released (a legal check, an embargo broken upstream); no event
    release   back to live
    urgent    the mark ninjs gives partners as urgency 1

What a source says never undoes an editor: a killed story fetched again stays killed, a correction stays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from . import db
from .model import KILLED, StoredArticle
from .store import _in_sections, _read


@dataclass(frozen=True)
class Tombstone:
    """RFC 6721 `at:deleted-entry`: the killed entry's id (as its feeds gave it) and when it was withdrawn."""

    article_id: str
    published_at: datetime  # the entry id is made from it (`feeds.render.item_id`)
    killed_at: datetime
    url: str | None


class ArticleLife:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def killed(self, since: datetime, *, categories: Sequence[str] | None = None,
               limit: int = 100) -> list[StoredArticle]:
        """Stories killed at or after `since`, newest kill first (of these sections, if given)."""
        a = db.articles
        query = (select(a).where(a.c.status == KILLED, a.c.status_at >= since)
                 .order_by(a.c.status_at.desc(), a.c.id).limit(limit))
        if categories is not None:
            query = query.where(_in_sections(categories))
        with self.engine.connect() as conn:
            return _read(conn, conn.execute(query).all())
