"""A segment's mail, from the run's readers to each reader's message bytes: the one pipeline that send, preview
and retry share.

    readers_of            the edition's readers for a run
    group_segments        -> Segments: readers with the same categories, language, zone and high-water mark
    digest_of             -> the segment's Digest (its categories' new articles, the most viewed), or None
    render_segment        -> its RenderedMail (what the ledger stores with the segment)
    segment_mail          -> a SegmentMail: the MailTemplate every copy shares, and the segment's web copy link
    outgoing              -> one reader's Outgoing message (their links, Message-ID and return path)
    message_bytes         -> its wire bytes, personalised and signed

A segment is rendered once; a reader's copy fills in a few fields (see `compose`). A retry or resume starts at
`segment_mail`, from the mail stored when the segment was first rendered.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from feeds.model import StoredArticle

from .compose import (
    MailTemplate,
    Recipient,
    RenderedMail,
    make_template,
    message_id,
    personalise,
    render_digest,
)
from .digest import Digest, build_digest
from .edition_run import EditionRun
from .records import Audience, Subscriber
from .settings import EditionSettings
from .timing import half_period, zone_of, zones_firing


@dataclass(frozen=True)
class Segment:
    """Readers who get the same digest: same categories, language, zone and start (`after`)."""

    key: str  # stored with the segment's mail: a resumed run finds the same row
    readers: tuple[Subscriber, ...]
    language: str
    zone: ZoneInfo
    after: datetime  # the digest holds articles published after this

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(self.readers[0].categories)


@dataclass(frozen=True)
class SegmentMail:
    """A segment's mail ready for its readers: the shared template and the segment's web copy link."""

    segment_id: int
    template: MailTemplate
    web_copy_url: str


@dataclass(frozen=True)
class Outgoing:
    """One reader's message of an edition, for the outbox."""

    subscriber_id: int
    email: str
    template: MailTemplate
    recipient: Recipient
    attempts: int  # made before this one
    envelope_from: str  # the VERP return path carrying the message's signed tag


def audience_of(edition: EditionSettings, scheduled_at: datetime, run: EditionRun, *, everyone: bool,
                edition_id: int | None = None) -> Audience:
    """The edition's readers for the run at `scheduled_at`: those whose own wall clock says it is the edition's time
    (07:00 in Seoul and 07:00 in Kolkata are two runs), everyone for a manual send; and whoever the run already
    has a delivery row for, so a resumed run keeps its readers even if they changed zone since."""
    if everyone:
        return Audience(edition.name, edition.has_ads, edition_id=edition_id)
    site_zone = run.settings.site.timezone
    zones = zones_firing(edition.schedule, run.readers.zones(), site_zone, scheduled_at)
    return Audience(edition.name, edition.has_ads, tuple(zones), edition_id,
                    (scheduled_at, half_period(edition.schedule, site_zone)))


def readers_of(edition: EditionSettings, scheduled_at: datetime, run: EditionRun, *, everyone: bool,
               edition_id: int | None = None) -> list[Subscriber]:
    """`audience_of` as one list (a preview's; a send reads it a page at a time)."""
    audience = audience_of(edition, scheduled_at, run, everyone=everyone, edition_id=edition_id)
    return [reader for page in run.readers.pages(audience) for reader in page]


def starts_after(high_water: datetime | None, period_start: datetime) -> datetime:
    """Where a reader's digest starts: after the newest article they were sent, but never before the period (a
    reader back after a pause gets this period's news, not everything since)."""
    return max(high_water, period_start) if high_water else period_start


def segment_key(subscriber: Subscriber, zone_name: str, after: datetime) -> str:
    """What a reader's digest depends on: their categories (in their order), their language as chosen (none is
    its own key), their zone and where their digest starts. Name, address and editions do not split a segment."""
    raw = "|".join([",".join(subscriber.categories), subscriber.language or "", zone_name, after.isoformat()])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def home_zone(subscriber: Subscriber, site_zone: ZoneInfo) -> ZoneInfo:
    return zone_of(subscriber.timezone, site_zone)


def group_segments(readers: Sequence[Subscriber], *, site_zone: ZoneInfo, site_language: str,
                   period_start: datetime, high_waters: dict[int, datetime]) -> list[Segment]:
    """The readers in segments, in the order their first reader came."""
    groups: dict[str, tuple[list[Subscriber], str, ZoneInfo, datetime]] = {}
    for r in readers:
        after = starts_after(high_waters.get(r.id), period_start)
        zone = home_zone(r, site_zone)
        key = segment_key(r, zone.key, after)
        if key not in groups:
            groups[key] = ([], r.language or site_language, zone, after)
        groups[key][0].append(r)
    return [Segment(key, tuple(group), language, zone, after)
            for key, (group, language, zone, after) in groups.items()]


def most_viewed_of(edition: EditionSettings, period_start: datetime, scheduled_at: datetime,
                   run: EditionRun) -> list[StoredArticle]:
    """The period's most viewed articles, shared by every segment of the run (none if the edition has no such list)."""
    if not edition.most_viewed:
        return []
    return run.articles.most_viewed(since=period_start, until=scheduled_at, limit=edition.most_viewed)


def digest_of(edition: EditionSettings, categories: Sequence[str], after: datetime, scheduled_at: datetime,
              most_viewed: Sequence[StoredArticle], run: EditionRun) -> Digest | None:
    """One segment's digest: its categories' articles published in (after, scheduled_at], and the most viewed;
    None when nothing is new."""
    s = run.settings
    candidates = run.articles.articles(categories=categories or s.category_order, published_after=after,
                                       published_until=scheduled_at, limit=edition.max_articles)
    return build_digest(edition.name, candidates=candidates, most_viewed=most_viewed,
                        category_order=s.category_order, labels=s.category_labels,
                        max_articles=edition.max_articles, period_end=scheduled_at, chosen=categories)


def render_segment(edition: EditionSettings, digest: Digest, segment: Segment, run: EditionRun, *,
                   campaign: str) -> RenderedMail:
    """The segment's mail with markers for each reader's values; its article links carry `campaign` (UTM)."""
    query = {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": campaign}
    return render_digest(run.templates, run.settings, digest, language=segment.language, zone=segment.zone,
                         link=lambda article_id: run.article_links.url(article_id, "email", query=query),
                         has_ads=edition.has_ads)


def segment_mail(rendered: RenderedMail, *, edition_name: str, edition_id: int, segment_id: int,
                 run: EditionRun) -> SegmentMail:
    return SegmentMail(segment_id, make_template(run.settings, rendered, list_id=edition_name),
                       run.links.web_copy(edition_id, segment_id))


def outgoing(subscriber: Subscriber, edition_id: int, mail: SegmentMail, run: EditionRun, *,
             attempts: int) -> Outgoing:
    """One reader's message of the edition: their links, and the tag that names it in the Message-ID and the
    return path (the same on every attempt, so a resend is recognisably the same mail)."""
    tag = run.tags.digest(edition_id, subscriber.id)
    links = run.links.for_reader(subscriber.public_id)
    recipient = Recipient(email=subscriber.email, name=subscriber.name,
                          message_id=message_id(mail.template.domain, tag), unsubscribe_url=links.unsubscribe,
                          preferences_url=links.preferences, web_copy_url=mail.web_copy_url)
    return Outgoing(subscriber.id, subscriber.email, mail.template, recipient, attempts, run.tags.envelope_from(tag))


def message_bytes(message: Outgoing, run: EditionRun) -> bytes:
    """The reader's message as wire bytes, personalised and (when DKIM is set up) signed."""
    data = personalise(message.template, message.recipient, now=run.clock(),
                       unsubscribe_address=run.settings.mail.unsubscribe_address)
    return run.signer.sign(data) if run.signer is not None else data


@dataclass(frozen=True)
class Prepared:
    """A segment's mail as a run sends it: the mail, and what each reader's delivery row records of its digest."""

    mail: SegmentMail
    articles: int
    high_water_at: datetime


class SegmentCache:
    """Each segment's mail of one run, rendered (and stored) the first time a reader of it comes, then reused.

    Readers come a page at a time, so a segment is met again on later pages: its mail is kept, the `keep` most
    recently used at most (a run with thousands of segments stays in bounded memory; a segment met again after
    being dropped is rendered again, and the ledger gives back its stored row). None: nothing new for it."""

    def __init__(self, edition: EditionSettings, edition_id: int, scheduled_at: datetime,
                 most_viewed: Sequence[StoredArticle], run: EditionRun, *, keep: int = 256) -> None:
        self.edition, self.edition_id, self.scheduled_at = edition, edition_id, scheduled_at
        self.most_viewed, self.run, self.keep = most_viewed, run, keep
        self._kept: OrderedDict[str, Prepared | None] = OrderedDict()

    def get(self, segment: Segment) -> Prepared | None:
        if segment.key in self._kept:
            self._kept.move_to_end(segment.key)
            return self._kept[segment.key]
        prepared = self._prepare(segment)
        self._kept[segment.key] = prepared
        if len(self._kept) > self.keep:
            self._kept.popitem(last=False)
        return prepared

    def _prepare(self, segment: Segment) -> Prepared | None:
        edition, run = self.edition, self.run
        digest = digest_of(edition, segment.categories, segment.after, self.scheduled_at, self.most_viewed, run)
        if digest is None:
            return None
        rendered = render_segment(edition, digest, segment, run, campaign=f"{edition.name}-{self.edition_id}")
        segment_id = run.ledger.save_segment(self.edition_id, segment.key, segment.language, rendered,
                                             digest.article_count, run.clock())
        mail = segment_mail(rendered, edition_name=edition.name, edition_id=self.edition_id, segment_id=segment_id,
                            run=run)
        return Prepared(mail, digest.article_count, digest.high_water_at)
