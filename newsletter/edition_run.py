"""What an edition run needs from the rest of Gazette, declared by the run itself.

As listmonk's manager declares the `Store` and `Messenger` it needs, the run declares small protocols: the
`Readers` it reads (and whose bounce count it keeps), the `Ledger` of editions, segments and delivery rows it
writes, the `ArticlePicker` it takes a digest's articles from, the `Messenger` that opens a connection to hand
mail over, the `RunLease` that keeps two senders off one edition, and `RunSettings`, the few settings it reads.
`SubscriberStore`, `DeliveryStore` and `ArticleStore` satisfy the protocols by their shape; tests may hand in
fakes. `EditionRun` gathers the parts for send, preview and retry; `edition_run` builds one from the concrete
parts (the wiring's one call).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from jinja2 import Environment
from sqlalchemy import Engine

from feeds.core.scheduling import Lease, holder_id
from feeds.model import StoredArticle
from feeds.settings import Category, SiteSettings

from .compose import RenderedMail
from .deliveries import DeliveryRow, EditionStats, Outcome
from .links import Links
from .records import Audience, Subscriber
from .settings import MailSettings, Settings
from .signing import DkimSigner
from .tokens import Tokens
from .transport import Transport
from .verp import TagCodec

EDITION_LEASE_TTL = timedelta(seconds=60)

DeliveryState = tuple[str, int, datetime | None]  # (status, attempts, next attempt) of a reader's row


class ArticlePicker(Protocol):
    """Where a digest's articles come from."""

    def articles(self, *, limit: int = 50, published_after: datetime | None = None,
                 published_until: datetime | None = None,
                 categories: Sequence[str] | None = None) -> list[StoredArticle]: ...

    def most_viewed(self, *, since: datetime, until: datetime, limit: int) -> list[StoredArticle]: ...


class Readers(Protocol):
    """The readers of an edition, as the run reads them, and the bounce count a delivery changes."""

    def confirmed(self, edition: str, *, ads: bool = False, zones: Sequence[str | None] | None = None,
                  edition_id: int | None = None, ids: Sequence[int] | None = None,
                  apart: tuple[datetime, timedelta] | None = None) -> list[Subscriber]: ...

    def pages(self, audience: Audience, *, size: int = 1000) -> Iterator[list[Subscriber]]: ...

    def zones(self) -> list[str | None]: ...

    def find(self, email_or_id: str) -> Subscriber | None: ...

    def get(self, subscriber_id: int, public_id: str | None = None) -> Subscriber | None: ...

    def reset_bounces(self, subscriber_ids: Sequence[int]) -> None: ...

    def record_bounce_of(self, subscriber_id: int, *, kind: str, now: datetime,
                         hard_bounce_limit: int = 3) -> Subscriber | None: ...


class Ledger(Protocol):
    """What the run writes down: the edition, its segments' mail, one delivery row per reader."""

    def open_edition(self, name: str, scheduled_at: datetime, period_start: datetime, now: datetime) -> int: ...

    def reopen_edition(self, edition_id: int) -> None: ...

    def finish_edition(self, edition_id: int, now: datetime) -> None: ...

    def edition_status(self, edition_id: int) -> str | None: ...

    def pause_edition(self, edition_id: int, now: datetime) -> bool: ...

    def unpause_edition(self, edition_id: int) -> bool: ...

    def note_audience(self, edition_id: int, *, everyone: bool) -> None: ...

    def stats(self, edition_id: int | None = None, limit: int = 50) -> list[EditionStats]: ...

    def save_segment(self, edition_id: int, key: str, language: str, mail: RenderedMail, articles: int,
                     now: datetime) -> int: ...

    def segment_mails(self, edition_id: int) -> dict[int, RenderedMail]: ...

    def segment(self, segment_id: int) -> tuple[int, RenderedMail, str] | None: ...

    def states(self, edition_id: int, ids: Sequence[int] | None = None) -> dict[int, DeliveryState]: ...

    def high_waters(self, subscriber_ids: Sequence[int]) -> dict[int, datetime]: ...

    def mark_skipped(self, edition_id: int, subscriber_ids: Sequence[int]) -> None: ...

    def hold(self, edition_id: int, subscriber_ids: Sequence[int], segment_id: int, until: datetime, articles: int,
             high_water_at: datetime | None) -> None: ...

    def queue(self, edition_id: int, rows: Sequence[tuple[int, str]], *, segment_id: int, articles: int,
              high_water_at: datetime | None) -> None: ...

    def record(self, edition_id: int, outcomes: Iterable[Outcome]) -> None: ...

    def retries(self, edition_id: int, limit: int | None = None) -> list[tuple[int, int, datetime, int | None]]: ...

    def rows(self, edition_id: int, *, statuses: Sequence[str] = (), has_error: bool = False,
             limit: int | None = None, offset: int = 0, after: int | None = None,
             counted: bool = True) -> tuple[int, list[DeliveryRow]]: ...

    def requeue(self, edition_id: int, subscriber_ids: Sequence[int], *, held_until: datetime | None = None,
                from_statuses: Sequence[str] = ("failed", "held")) -> list[int]: ...

    def settle_skipped(self, edition_id: int, reasons: dict[int, str],
                       statuses: Sequence[str] = ("failed", "held")) -> None: ...

    def counts(self, edition_id: int) -> dict[str, int]: ...


class Messenger(Protocol):
    """Hands mail over: each sending worker opens its own connection (a reused SMTP session) and closes it."""

    def connect(self) -> Transport: ...


class RunLease(Protocol):
    """At most one process works on an edition: taken (or renewed) by `acquire`, False when another holds it."""

    def acquire(self) -> bool: ...

    def release(self) -> None: ...


class ArticleLinks(Protocol):
    """Tracked links to articles (signed /r/ redirects), with the campaign's UTM parameters."""

    def url(self, article_id: str, channel: str, *, query: Mapping[str, str] | None = None) -> str: ...


@dataclass(frozen=True)
class RunSettings:
    """The settings an edition run reads: the site and mail sections (rendered into every mail; pacing, retries,
    bounce limit), the categories (a digest's order and labels) and which editions carry advertising."""

    site: SiteSettings
    mail: MailSettings
    categories: tuple[Category, ...]
    ad_editions: frozenset[str]

    @classmethod
    def of(cls, settings: Settings) -> RunSettings:
        return cls(site=settings.site, mail=settings.mail, categories=settings.categories,
                   ad_editions=frozenset(e.name for e in settings.digests if e.has_ads))

    @property
    def category_order(self) -> list[str]:
        return [c.slug for c in self.categories]

    @property
    def category_labels(self) -> dict[str, str]:
        return {c.slug: c.name for c in self.categories}


@dataclass(frozen=True)
class TransportMessenger:
    """A `Messenger` over a transport factory (`make_transport` of the [mail] settings, or a test's)."""

    open_transport: Callable[[], Transport]

    def connect(self) -> Transport:
        return self.open_transport()


@dataclass(frozen=True)
class EditionRun:
    """The parts one send, preview or retry works with: data behind the protocols, and the edges."""

    settings: RunSettings
    articles: ArticlePicker
    readers: Readers
    ledger: Ledger
    messenger: Messenger
    lease_for: Callable[[int], RunLease]  # edition id -> its lease
    templates: Environment
    links: Links
    article_links: ArticleLinks
    tags: TagCodec
    clock: Callable[[], datetime]
    signer: DkimSigner | None = None
    sleep: Callable[[float], None] = time.sleep
    progress: Callable[[str], None] = lambda outcome: None


def edition_run(settings: Settings, *, articles: ArticlePicker, subscribers: Readers, deliveries: Ledger,
                engine: Engine, transports: Callable[[], Transport], templates: Environment, tokens: Tokens,
                redirects: ArticleLinks, clock: Callable[[], datetime], tags: TagCodec,
                signer: DkimSigner | None = None, sleep: Callable[[float], None] = time.sleep,
                progress: Callable[[str], None] = lambda outcome: None) -> EditionRun:
    """An `EditionRun` from the concrete parts; its leases are rows of `engine`'s database, held by this process."""
    holder = holder_id()
    return EditionRun(
        settings=RunSettings.of(settings), articles=articles, readers=subscribers, ledger=deliveries,
        messenger=TransportMessenger(transports),
        lease_for=lambda edition_id: Lease(engine, f"edition:{edition_id}", holder, EDITION_LEASE_TTL, clock),
        templates=templates, links=Links(settings.site.base_url, tokens), article_links=redirects, tags=tags,
        clock=clock, signer=signer, sleep=sleep, progress=progress)
