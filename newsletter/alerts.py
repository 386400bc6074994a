"""Breaking-news alerts: one story, sent now, to every reader who asked for alerts or to those of some sections.

An alert is an article from the store or a subject and a short text (and, if the editor likes, a link). It goes
through the edition engine, not beside it: an alert is an `editions` row of its own (name `ALERTS`; its id is the
alert's id) whose words wait in `alerts`; its readers are the store's `confirmed(ALERTS)` (confirmed, not paused,
not suppressed, asked for alerts) narrowed to the alert's sections; its mail is rendered once per language and zone
and stored as the run's segments; the `Ledger` writes each delivery queued before and sent after, so a rerun or a
restart sends nobody the alert twice; the `Outbox` signs (DKIM), keeps the rate and hands over; `compose` writes the
one-click List-Unsubscribe headers. `digest status alerts`, `digest retry alerts`, the resume job and
/api/editions treat it as any edition.

An alert is not advertising unless the editor marks it (`has_ads`): then "(광고)" leads the subject, only readers
who consented to advertising get it, and the night rule of 정보통신망법 §50 holds it until 08:00 on their clock.

    resolve_alert    AlertDraft -> AlertContent (checked; an article's title, summary and link filled in)
    audience_of      the readers of an alert
    render_alert     an alert's mail in one language and zone (`templates/email/alert.*`)
    preview_alert    what one reader would get, without sending or recording anything
    send_alert       the send (or its resume)
    AlertStore       the `alerts` rows and their `editions` rows
    AlertDesk        the workflow the API and the console call: preview, create, send, retry, report, list

Why it is long: an alert is one concern from the editor's draft to its report, and each step is short because it
reuses the engine's (segments, outbox, ledger, retry); splitting the store or the send off would leave modules that
only make sense together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from feeds.model import StoredArticle

from .compose import EMAIL, NAME, PREFERENCES, UNSUBSCRIBE, WEB_COPY, RenderedMail, render_notice, replace_markers
from .db import alerts, editions
from .deliveries import FINAL, DeliveryRow
from .edition_run import EditionRun, RunLease
from .errors import AlertRefused, UnknownAlert
from .headers import header_text
from .messages import TEXT
from .outbox import Outbox
from .records import ALERTS, Subscriber, normalise_email
from .retry import RetryReport, retry_edition
from .segments import Segment, home_zone, message_bytes, outgoing, segment_mail
from .send import WAITING, SendReport, is_quiet_hour, is_settled, next_morning, retry_due, retry_window
from .settings import EditionSettings

MAX_SUBJECT = 150  # characters: a subject line a phone shows whole, "[속보]" included
MAX_TEXT = 2000  # a short text: an alert is not a digest
MAX_LINK = 2000
_CONTROL = {c: " " for c in range(32) if c != 10} | {127: " "}


@dataclass(frozen=True)
class AlertDraft:
    """What the editor wrote or picked, as sent (not yet checked)."""

    subject: str = ""
    text: str = ""
    link: str | None = None
    article_id: str | None = None  # the story: its title, summary and (tracked) link unless written over
    categories: tuple[str, ...] = ()  # only readers of these sections; none: everyone who asked for alerts
    has_ads: bool = False


@dataclass(frozen=True)
class AlertContent:
    """An alert as it will go: checked, one-line subject, plain text, sections in the configured order."""

    subject: str
    text: str
    link: str | None
    article_id: str | None
    categories: tuple[str, ...]
    has_ads: bool


@dataclass(frozen=True)
class Alert:
    """A stored alert: its content and its run (the `editions` row of the same id)."""

    id: int
    content: AlertContent
    created_at: datetime  # also its run's `scheduled_at`
    created_by: str | None
    status: str  # sending | done
    finished_at: datetime | None


@dataclass(frozen=True)
class AlertPreview:
    """What one reader would get, and how many readers the alert would reach now."""

    subject: str
    html: str
    text: str
    recipients: int
    eml: bytes = b""


@dataclass(frozen=True)
class AlertReport:
    """One alert's outcome: deliveries by state, the failures with their reasons, the clicks on its story."""

    alert: Alert
    counts: dict[str, int]
    failures: tuple[DeliveryRow, ...]  # failed, retrying and held deliveries with their reasons
    failure_total: int
    clicks_by_article: dict[str, int] = field(default_factory=dict)
    push_counts: dict[str, int] = field(default_factory=dict)  # [push]: pushes by state (newsletter.web_push)

    @property
    def clicks(self) -> int:
        return sum(self.clicks_by_article.values())

    @property
    def recipients(self) -> int:
        return sum(self.counts.values())


class ArticleLookup(Protocol):
    """Where an alert's story comes from (`ArticleStore` has this shape)."""

    def article(self, article_id: str) -> StoredArticle | None: ...

    def articles(self, *, limit: int = 50, published_after: datetime | None = None,
                 published_until: datetime | None = None,
                 categories: Sequence[str] | None = None) -> list[StoredArticle]: ...


class PushSide(Protocol):
    """[push]: alerts to browsers too (`newsletter.web_push`, here or on the queue), and their counts."""

    def start(self, alert: Alert) -> Callable[[], None]: ...  # begins the pushes; the callable waits for them

    def counts(self, alert_id: int) -> dict[str, int]: ...


# --- pure steps -----------------------------------------------------------------------------------------------

def audit_values(alert: Alert) -> dict[str, object]:
    """What the audit log keeps of a sent alert: what it said and to whom."""
    c = alert.content
    return {"subject": c.subject, "text": c.text, "link": c.link, "article_id": c.article_id,
            "categories": list(c.categories), "ads": c.has_ads}


def plain_text(text: str, limit: int) -> str:
    """The alert's text: line ends as \\n, no other control characters, no space at the ends; AlertRefused past
    `limit` characters (an editor's words are not cut silently)."""
    cleaned = text.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROL).strip()
    if len(cleaned) > limit:
        raise AlertRefused(f"the text is {len(cleaned)} characters long; an alert holds at most {limit}")
    return cleaned


def check_link(link: str) -> str:
    """An http(s) address with a host, nothing that could end an attribute or a line; AlertRefused otherwise."""
    parts = urlsplit(link)
    if (parts.scheme not in ("http", "https") or not parts.hostname or len(link) > MAX_LINK
            or any(c in link for c in ' <>"\'`\\') or any(ord(c) < 33 or ord(c) == 127 for c in link)):
        raise AlertRefused(f"the link {link[:100]!r} is not an http(s) address")
    return link


def resolve_alert(draft: AlertDraft, *, category_order: Sequence[str],
                  article: StoredArticle | None = None) -> AlertContent:
    """The draft checked: known sections, a subject (one line) and a text, or the `article` they default to."""
    unknown = [c for c in draft.categories if c not in category_order]
    if unknown:
        raise AlertRefused(f"unknown section(s): {', '.join(unknown)}; configured: {', '.join(category_order)}")
    if draft.article_id and article is None:
        raise AlertRefused(f"no article {draft.article_id!r}")
    if article is not None and not article.is_live:
        raise AlertRefused(f"article {article.id} is {article.status}: an alert cannot lead to it")
    subject = header_text(draft.subject or (article.title if article else ""), limit=MAX_SUBJECT)
    text = plain_text(draft.text or ((article.summary or "") if article else ""), MAX_TEXT)
    if not subject:
        raise AlertRefused("an alert needs a subject (or an article)")
    if not text and article is None:
        raise AlertRefused("an alert needs a short text (or an article)")
    link = check_link(draft.link.strip()) if draft.link and draft.link.strip() else (article.url if article else None)
    chosen = set(draft.categories)
    return AlertContent(subject=subject, text=text, link=link, article_id=article.id if article else None,
                        categories=tuple(c for c in category_order if c in chosen), has_ads=draft.has_ads)


def as_edition(content: AlertContent) -> EditionSettings:
    """The alert as the engine's retry and resume steps read an edition: its name and whether it carries ads."""
    return EditionSettings(name=ALERTS, schedule="0 0 * * *", window=timedelta(0), max_articles=1, most_viewed=0,
                           has_ads=content.has_ads)


def is_for(content: AlertContent, reader: Subscriber) -> bool:
    """Whether a reader who asked for alerts gets this one: every alert, or one of their sections."""
    return not content.categories or bool(set(content.categories) & set(reader.categories))


def alert_segments(readers: Sequence[Subscriber], *, site_zone: ZoneInfo, site_language: str,
                   at: datetime) -> list[Segment]:
    """Readers who get the same mail: the same language and zone (the time shown, the night rule)."""
    groups: dict[str, tuple[list[Subscriber], str, ZoneInfo]] = {}
    for r in readers:
        zone, language = home_zone(r, site_zone), r.language or site_language
        key = hashlib.sha256(f"alert|{language}|{zone.key}".encode()).hexdigest()[:32]
        groups.setdefault(key, ([], language, zone))[0].append(r)
    return [Segment(key, tuple(group), language, zone, at) for key, (group, language, zone) in groups.items()]


def alert_subject(content: AlertContent, language: str) -> str:
    t = TEXT[language if language in TEXT else "ko"]
    return (t["digest_ad_mark"] if content.has_ads else "") + t["alert_mark"] + content.subject


def render_alert(content: AlertContent, run: EditionRun, *, language: str, zone: ZoneInfo, at: datetime,
                 campaign: str) -> RenderedMail:
    """The alert's mail in `language`, with markers for each reader's values; an article's link is tracked (its
    clicks count under `campaign`), any other link goes as written."""
    lang = language if language in TEXT else "ko"
    t = TEXT[lang]
    link = content.link
    if content.article_id:
        link = run.article_links.url(content.article_id, "email", query={
            "utm_source": "newsletter", "utm_medium": "email", "utm_campaign": campaign})
    local = at.astimezone(zone)
    return render_notice(run.templates, run.settings, language=lang, subject=alert_subject(content, lang),
                         title=content.subject, body=content.text, button=t["alert_read"] if link else "",
                         button_url=link or "", template="alert", email=EMAIL, unsubscribe_url=UNSUBSCRIBE,
                         preferences_url=PREFERENCES, web_copy_url=WEB_COPY, has_ads=content.has_ads,
                         time_text=f"{t.date(local)} {local:%H:%M}")


def audience_of(content: AlertContent, run: EditionRun, ids: Sequence[int] | None = None) -> list[Subscriber]:
    """Who gets the alert now: readers who asked for alerts (with advertising consent, for one with ads), of its
    sections."""
    return [r for r in run.readers.confirmed(ALERTS, ads=content.has_ads, ids=ids) if is_for(content, r)]


PREVIEW_ADDRESS = "reader@example.com"  # a reserved domain (RFC 2606): the site's host may be an address with a port


def preview_alert(content: AlertContent, run: EditionRun, *, email: str | None = None) -> AlertPreview:
    """What `email` would get (a reader's own language, zone and links; someone who is not a reader is shown as a
    new reader in the site's language): the subject, HTML, text and wire bytes. Sends and records nothing."""
    s = run.settings
    found = run.readers.find(email) if email else None
    address = found.email if found else (normalise_email(email) if email else PREVIEW_ADDRESS)
    reader = found or Subscriber(id=0, email=address, name=None, status="confirmed",
                                 categories=tuple(c.slug for c in s.categories), editions=(ALERTS,), timezone=None,
                                 language=None, confirmed_at=None, public_id="preview")
    now = run.clock()
    [segment] = alert_segments([reader], site_zone=s.site.timezone, site_language=s.site.language, at=now)
    rendered = render_alert(content, run, language=segment.language, zone=segment.zone, at=now,
                            campaign=f"{ALERTS}-preview")
    message = outgoing(reader, 0, segment_mail(rendered, edition_name=ALERTS, edition_id=0, segment_id=0, run=run),
                       run, attempts=0)
    r = message.recipient
    values = {EMAIL: r.email, NAME: r.name or "", UNSUBSCRIBE: r.unsubscribe_url, PREFERENCES: r.preferences_url,
              WEB_COPY: r.web_copy_url}
    return AlertPreview(subject=rendered.subject, html=replace_markers(rendered.html, values),
                        text=replace_markers(rendered.text, values, escape=str),
                        recipients=len(audience_of(content, run)), eml=message_bytes(message, run))


# --- the send -------------------------------------------------------------------------------------------------

def send_alert(alert: Alert, run: EditionRun, *, is_withdrawn: bool = False) -> SendReport:
    """Send the alert, or carry on with it: everyone of its audience who has no final delivery row gets it once.
    `is_withdrawn` (its story was killed or held since): nobody more gets it; the waiting rows are settled."""
    shown_at = alert.created_at.astimezone(run.settings.site.timezone)
    recipients = [] if is_withdrawn else audience_of(alert.content, run)
    lease = run.lease_for(alert.id)
    if not lease.acquire():
        return SendReport(ALERTS, alert.id, shown_at, len(recipients), 0, 0, 0, 0, False, is_busy=True)
    try:
        return _send(alert, recipients, run, lease)
    finally:
        lease.release()


def _send(alert: Alert, recipients: list[Subscriber], run: EditionRun, lease: RunLease) -> SendReport:
    s, ledger, content = run.settings, run.ledger, alert.content
    now = run.clock()
    states = ledger.states(alert.id)
    receiving = {r.id for r in recipients}
    why = ("the alert's story was withdrawn" if not recipients and content.article_id else
           "no longer receives alerts (unsubscribed, paused, alerts or advertising consent withdrawn, sections changed)")
    ledger.settle_skipped(alert.id, {sid: why for sid, (status, _, _) in states.items()
                                     if status in WAITING and sid not in receiving}, statuses=WAITING)
    already = sum(1 for r in recipients if states.get(r.id, ("",))[0] in FINAL)
    todo = [r for r in recipients if states.get(r.id, ("",))[0] not in FINAL]
    stored = ledger.segment_mails(alert.id)
    articles = 1 if content.article_id else 0
    outbox = Outbox(run, alert.id, lease)
    try:
        for segment in alert_segments(todo, site_zone=s.site.timezone, site_language=s.site.language,
                                      at=alert.created_at):
            rendered = render_alert(content, run, language=segment.language, zone=segment.zone, at=alert.created_at,
                                    campaign=f"{ALERTS}-{alert.id}")
            segment_id = ledger.save_segment(alert.id, segment.key, segment.language, rendered, articles, run.clock())
            # A resumed send goes on with the mail as first rendered and stored.
            mail = segment_mail(stored.get(segment_id, rendered), edition_name=ALERTS, edition_id=alert.id,
                                segment_id=segment_id, run=run)
            due, night = [], []
            for r in segment.readers:
                state = states.get(r.id)
                if state is not None and state[0] in ("retry", "held") and state[2] is not None and state[2] > now:
                    continue  # its time has not come: the resume job sends it
                (night if content.has_ads and is_quiet_hour(now, segment.zone) else due).append(r)
            if night:  # no high-water mark: an alert never moves where a reader's next digest starts
                ledger.hold(alert.id, [r.id for r in night], segment_id, next_morning(now, segment.zone), articles,
                            None)
            for start in range(0, len(due), 100):
                messages = [outgoing(r, alert.id, mail, run, attempts=(states.get(r.id) or ("", 0, None))[1])
                            for r in due[start:start + 100]]
                ledger.queue(alert.id, [(m.subscriber_id, m.recipient.message_id) for m in messages],
                             segment_id=segment_id, articles=articles, high_water_at=None)
                for message in messages:
                    outbox.put(message)
        outbox.drain()
        retry_due(as_edition(content), alert.id, run, outbox, deadline=now + retry_window(s))
    finally:
        outbox.close()
    counts = ledger.counts(alert.id)
    if is_settled(counts):
        ledger.finish_edition(alert.id, run.clock())
    return SendReport(edition=ALERTS, edition_id=alert.id, scheduled_at=alert.created_at.astimezone(s.site.timezone),
                      recipients=len(recipients), sent=outbox.sent, skipped=0, failed=outbox.failed,
                      already_done=already, is_dry_run=False, held=counts.get("held", 0),
                      retrying=counts.get("retry", 0) + counts.get("queued", 0))


# --- storage --------------------------------------------------------------------------------------------------

class AlertStore:
    """The alerts and their `editions` rows, written together."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, content: AlertContent, *, created_by: str | None, now: datetime) -> int:
        """A new alert and its run (status "sending"), in one transaction; its id."""
        for _ in range(5):
            try:
                with self.engine.begin() as conn:
                    latest = conn.execute(select(func.max(editions.c.scheduled_at))
                                          .where(editions.c.name == ALERTS)).scalar()
                    latest = editions.c.scheduled_at.type.process_result_value(latest, None) if latest else None
                    # Runs are unique per (name, time): two alerts in the same instant are a microsecond apart.
                    at = now if latest is None or latest < now else latest + timedelta(microseconds=1)
                    alert_id = int(conn.execute(insert(editions).values(
                        name=ALERTS, scheduled_at=at, period_start=at, period_end=at, status="sending",
                        created_at=now)).inserted_primary_key[0])
                    conn.execute(insert(alerts).values(
                        edition_id=alert_id, subject=content.subject, body=content.text, link=content.link,
                        article_id=content.article_id, categories=list(content.categories), has_ads=content.has_ads,
                        created_by=created_by, created_at=now))
                    return alert_id
            except IntegrityError:  # another process took that instant: take the next one
                continue
        raise AlertRefused("could not record the alert: too many alerts at once; try again")

    def get(self, alert_id: int) -> Alert | None:
        found = self._read(select(*_COLUMNS).select_from(_JOINED).where(alerts.c.edition_id == alert_id))
        return found[0] if found else None

    def at(self, scheduled_at: datetime) -> Alert | None:
        """The alert whose run is at `scheduled_at` (how the resume job names runs)."""
        found = self._read(select(*_COLUMNS).select_from(_JOINED).where(editions.c.name == ALERTS,
                                                                       editions.c.scheduled_at == scheduled_at))
        return found[0] if found else None

    def recent(self, limit: int = 50, offset: int = 0, before: tuple[datetime, int] | None = None) -> list[Alert]:
        """Newest first (by time, then id); with `before` (a time and an id), those after that one in this order
        (the API's keyset paging)."""
        query = (select(*_COLUMNS).select_from(_JOINED)
                 .order_by(editions.c.scheduled_at.desc(), editions.c.id.desc()).limit(limit).offset(offset))
        if before is not None:
            at, before_id = before
            query = query.where(or_(editions.c.scheduled_at < at,
                                    and_(editions.c.scheduled_at == at, editions.c.id < before_id)))
        return self._read(query)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(alerts)).scalar_one())

    def _read(self, query) -> list[Alert]:  # type: ignore[no-untyped-def]
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Alert(id=r.edition_id, content=AlertContent(subject=r.subject, text=r.body, link=r.link,
                                                            article_id=r.article_id, categories=tuple(r.categories),
                                                            has_ads=bool(r.has_ads)),
                      created_at=r.scheduled_at, created_by=r.created_by, status=r.status,
                      finished_at=r.finished_at) for r in rows]


_JOINED = alerts.join(editions, editions.c.id == alerts.c.edition_id)
_COLUMNS = (alerts.c.edition_id, alerts.c.subject, alerts.c.body, alerts.c.link, alerts.c.article_id,
            alerts.c.categories, alerts.c.has_ads, alerts.c.created_by, editions.c.scheduled_at, editions.c.status,
            editions.c.finished_at)


# --- the workflow ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AlertDesk:
    """What the API and the console do with alerts, over the store, the articles, the engine and the clicks.
    `run()` gives the edition engine's parts (a new `EditionRun`, as each edition send gets)."""

    store: AlertStore
    articles: ArticleLookup
    run: Callable[[], EditionRun]
    clicks: Callable[[str], dict[str, int]]  # campaign ("alerts-{id}") -> clicks by article
    push: PushSide | None = None  # [push]: each send pushes too, beside the mail

    def resolve(self, draft: AlertDraft) -> AlertContent:
        run = self.run()
        article = self.articles.article(draft.article_id) if draft.article_id else None
        return resolve_alert(draft, category_order=run.settings.category_order, article=article)

    def preview(self, draft: AlertDraft, email: str | None = None) -> AlertPreview:
        return preview_alert(self.resolve(draft), self.run(), email=email)

    def create(self, draft: AlertDraft, *, created_by: str | None) -> Alert:
        """Record the alert (not yet sent): `send` sends it."""
        run = self.run()
        alert_id = self.store.create(self.resolve(draft), created_by=created_by, now=run.clock())
        return self.get(alert_id)

    def get(self, alert_id: int) -> Alert:
        alert = self.store.get(alert_id)
        if alert is None:
            raise UnknownAlert(f"no alert {alert_id}")
        return alert

    def send(self, alert_id: int, progress: Callable[[str], None] | None = None) -> SendReport:
        """The mail, and with [push] the pushes beside it (a push does not wait for the mail's retries)."""
        run, alert = self.run(), self.get(alert_id)
        pushed = self.push.start(alert) if self.push is not None else None
        story = self.articles.article(alert.content.article_id) if alert.content.article_id else None
        withdrawn = story is not None and not story.is_live  # killed or held since: what waits is not sent
        try:
            return send_alert(alert, replace(run, progress=progress) if progress else run, is_withdrawn=withdrawn)
        finally:
            if pushed is not None:
                pushed()

    def send_at(self, scheduled_at: datetime) -> SendReport:
        """The resume job's way in: the alert whose run is at `scheduled_at`."""
        found = self.store.at(scheduled_at)
        if found is None:
            raise UnknownAlert(f"no alert at {scheduled_at.isoformat()}")
        return self.send(found.id)

    def retry(self, alert_id: int) -> RetryReport:
        """The failed and held deliveries once more (`digest retry`'s rules: one attempt, night hold, leavers)."""
        alert = self.get(alert_id)
        return retry_edition(as_edition(alert.content), alert.id, scheduled_at=alert.created_at, run=self.run())

    def report(self, alert_id: int, *, failures: int = 100) -> AlertReport:
        alert = self.get(alert_id)
        ledger = self.run().ledger
        total, rows = ledger.rows(alert.id, statuses=("failed", "retry", "held"), limit=failures)
        return AlertReport(alert=alert, counts=ledger.counts(alert.id), failures=tuple(rows), failure_total=total,
                           clicks_by_article=self.clicks(f"{ALERTS}-{alert.id}"),
                           push_counts=self.push.counts(alert.id) if self.push is not None else {})

    def recent(self, limit: int = 50, offset: int = 0,
               before: tuple[datetime, int] | None = None) -> list[AlertReport]:
        """The latest alerts, newest first, each with its counts and clicks (failures left out); with `before`,
        those after that alert (its time and id)."""
        ledger = self.run().ledger
        return [AlertReport(alert=a, counts=ledger.counts(a.id), failures=(), failure_total=0,
                            clicks_by_article=self.clicks(f"{ALERTS}-{a.id}"),
                            push_counts=self.push.counts(a.id) if self.push is not None else {})
                for a in self.store.recent(limit, offset, before)]

    def recent_articles(self, limit: int = 20, search: str = "") -> list[StoredArticle]:
        """Stories to pick from: the newest, or the newest whose title holds `search`."""
        found = self.articles.articles(limit=200 if search else limit)
        wanted = search.strip().lower()
        return [a for a in found if wanted in a.title.lower()][:limit] if wanted else found
