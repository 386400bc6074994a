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

import html
from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo

from sqlalchemy import Connection, Engine, select

from templates import CATALOGUE

from . import db, events
from .errors import InvalidValue, StoreError, UnknownName
from .model import HELD, KILLED, LIVE, StoredArticle
from .store import _in_sections, _read

MAX_NOTE = 2000  # a correction note: a paragraph, not an article
MAX_REASON = 500
_CONTROL = {c: None for c in range(32) if c not in (9, 10)} | {127: None}


def clean_text(value: str, *, field: str, limit: int) -> str:
    """An editor's note or reason as stored: control characters dropped, spaces trimmed, required and bounded."""
    text = value.translate(_CONTROL).replace("\t", " ").strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidValue(f"{field}: required")
    if len(text) > limit:
        raise InvalidValue(f"{field}: at most {limit} characters, got {len(text)}")
    return text


def life_record(article: StoredArticle) -> dict[str, object]:
    """What the audit log keeps of a story's life, before and after an editor's change: status and reason, urgency,
    revision and corrections (the console and the command line record it alike)."""
    return {"status": article.status, "status_reason": article.status_reason, "urgent": article.is_urgent,
            "revision": article.revision, "corrections": [c.note for c in article.corrections]}


def correction_lines(article: StoredArticle, language: str, zone: tzinfo) -> list[str]:
    """The story's public corrections as readers see them, oldest first: "[정정 2026-11-29 15:00] …"."""
    return [CATALOGUE.text(language, "article_correction", note=c.note,
                           when=c.corrected_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"))
            for c in article.corrections]


def with_corrections(article: StoredArticle, content_html: str | None, summary: str, *, language: str,
                     zone: tzinfo) -> tuple[str | None, str]:
    """A feed item's content and summary with the corrections under them: an aside in the HTML (escaped: a note is
    text), and lines after the plain summary, so a summary-only feed tells them too."""
    lines = correction_lines(article, language, zone)
    if not lines:
        return content_html, summary
    if content_html is not None:
        content_html += "".join(f'<p class="correction">{html.escape(line, quote=False)}</p>' for line in lines)
    return content_html, "\n\n".join([summary, *lines]) if summary else "\n\n".join(lines)


class ArticleLife:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def correct(self, article_id: str, note: str, *, by: str | None, now: datetime) -> StoredArticle:
        """Add a public correction: a new revision of the story, `updated` now, the note under it in every feed."""
        text = clean_text(note, field="note", limit=MAX_NOTE)
        a = db.articles
        with self.engine.begin() as conn:
            row = self._row(conn, article_id)
            if row.status == KILLED:
                raise StoreError(f"article {article_id} was killed: a killed story is not corrected")
            revision = row.revision + 1
            changed = conn.execute(a.update().where(a.c.id == article_id, a.c.revision == row.revision,
                                                    a.c.status != KILLED)
                                   .values(revision=revision, updated_at=max(now, row.updated_at), changed_at=now))
            if changed.rowcount != 1:
                raise StoreError(f"article {article_id} changed meanwhile: try again")
            conn.execute(db.article_corrections.insert().values(article_id=article_id, note=text, revision=revision,
                                                                corrected_at=now, made_by=by))
            events.record(conn, "article.corrected", article_id, now, {"revision": revision, "note": text})
        return self._article(article_id)

    def kill(self, article_id: str, reason: str, *, now: datetime) -> StoredArticle:
        """Withdraw the story for good: out of every feed and ranking at the next refresh, told to partners."""
        text = clean_text(reason, field="reason", limit=MAX_REASON)
        self._move(article_id, (LIVE, HELD), KILLED, text, now)
        return self._article(article_id)

    def hold(self, article_id: str, reason: str, *, now: datetime) -> StoredArticle:
        """Keep a live story out of everything until it is released."""
        self._move(article_id, (LIVE,), HELD, clean_text(reason, field="reason", limit=MAX_REASON), now)
        return self._article(article_id)

    def release(self, article_id: str, *, now: datetime) -> StoredArticle:
        self._move(article_id, (HELD,), LIVE, None, now)
        return self._article(article_id)

    def mark_urgent(self, article_id: str, urgent: bool, *, now: datetime) -> StoredArticle:
        a = db.articles
        with self.engine.begin() as conn:
            if self._row(conn, article_id).status == KILLED:
                raise StoreError(f"article {article_id} was killed: a killed story is not marked urgent")
            conn.execute(a.update().where(a.c.id == article_id).values(is_urgent=urgent, changed_at=now))
        return self._article(article_id)

    def _move(self, article_id: str, allowed: tuple[str, ...], to: str, reason: str | None, now: datetime) -> None:
        a = db.articles
        with self.engine.begin() as conn:
            row = self._row(conn, article_id)
            if row.status not in allowed:
                raise StoreError(f"article {article_id} is {row.status}: it cannot be made {to}")
            values: dict[str, object] = {"status": to, "status_reason": reason, "status_at": now, "changed_at": now}
            if to == KILLED:  # partners' systems see the cancellation as the story's next version (ninjs)
                values["revision"] = row.revision + 1
            moved = conn.execute(a.update().where(a.c.id == article_id, a.c.status == row.status).values(**values))
            if moved.rowcount != 1:
                raise StoreError(f"article {article_id} changed meanwhile: try again")
            if to == KILLED:
                events.record(conn, "article.killed", article_id, now,
                              {"reason": reason, "was": row.status, "revision": row.revision + 1})
            # A finished month's archive is frozen, but not with a withdrawn or held story in it, nor without a
            # released one: the months it may fall in (in any zone) are built again on their next request.
            months = {(row.published_at + timedelta(days=d)).strftime("%Y-%m") for d in (-1, 0, 1)}
            conn.execute(db.feed_archives.delete().where(db.feed_archives.c.month.in_(sorted(months))))

    @staticmethod
    def _row(conn: Connection, article_id: str):  # type: ignore[no-untyped-def]
        a = db.articles
        row = conn.execute(select(a.c.status, a.c.revision, a.c.updated_at, a.c.published_at)
                           .where(a.c.id == article_id)).first()
        if row is None:
            raise UnknownName(f"no article {article_id!r}")
        return row

    def _article(self, article_id: str) -> StoredArticle:
        with self.engine.connect() as conn:
            return _read(conn, conn.execute(select(db.articles).where(db.articles.c.id == article_id)).all())[0]

    def killed(self, since: datetime, *, categories: Sequence[str] | None = None, limit: int = 100,
               published_after: datetime | None = None) -> list[StoredArticle]:
        """Stories killed at or after `since`, newest kill first (of these sections, if given; published after
        `published_after`, if given: those a feed's window would still hold)."""
        a = db.articles
        query = (select(a).where(a.c.status == KILLED, a.c.status_at >= since)
                 .order_by(a.c.status_at.desc(), a.c.id).limit(limit))
        if categories is not None:
            query = query.where(_in_sections(categories))
        if published_after is not None:
            query = query.where(a.c.published_at >= published_after)
        with self.engine.connect() as conn:
            return _read(conn, conn.execute(query).all())
