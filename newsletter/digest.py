"""What goes into one subscriber's digest. Pure: articles in, a `Digest` out.

The store picks the candidate articles (the subscriber's categories, published after their high-water mark and
before the edition's end); this module groups and caps them and adds the most-viewed section.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Mapping, Sequence

from feeds.model import StoredArticle


@dataclass(frozen=True)
class DigestSection:
    category: str | None
    label: str
    articles: tuple[StoredArticle, ...]


@dataclass(frozen=True)
class Digest:
    edition: str
    period_end: datetime
    sections: tuple[DigestSection, ...]
    most_viewed: tuple[StoredArticle, ...]
    high_water_at: datetime  # the newest publication time included: the next digest starts after it

    @property
    def article_count(self) -> int:
        return sum(len(s.articles) for s in self.sections)


def build_digest(edition: str, *, candidates: Sequence[StoredArticle], most_viewed: Sequence[StoredArticle],
                 category_order: Sequence[str], labels: Mapping[str, str], max_articles: int,
                 period_end: datetime, chosen: Sequence[str] = ()) -> Digest | None:
    """None when there is nothing new: a subscriber with nothing new gets no mail.

    A story published in several sections is listed once, under its first section the reader chose (`chosen`).
    """
    newest_first = sorted(candidates, key=lambda a: (a.published_at, a.id), reverse=True)[:max_articles]
    if not newest_first:
        return None
    order = {slug: i for i, slug in enumerate(category_order)}
    groups: dict[str | None, list[StoredArticle]] = {}
    for article in newest_first:
        section = article.category
        if chosen and section not in chosen:
            section = next((c for c in article.categories if c in chosen), section)
        groups.setdefault(section, []).append(article)
    sections = tuple(
        DigestSection(category=slug, label=labels.get(slug or "", slug or "기타"), articles=tuple(items))
        for slug, items in sorted(groups.items(), key=lambda kv: order.get(kv[0] or "", len(order))))
    return Digest(edition=edition, period_end=period_end, sections=sections, most_viewed=tuple(most_viewed),
                  high_water_at=max(a.published_at for a in newest_first))
