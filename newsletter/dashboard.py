"""The newsroom dashboard: the figures rolled up each day, and the whole dashboard read back from them.

It spans both sides (subscribers and editions; sources, views and partners), so it lives on the audience side,
which may import the content side.

`Figures` keeps two pre-aggregated tables (newsletter/db.py) so the dashboard never scans the subscribers or the
deliveries, however many there are:
- `daily_figures`: per day in the site's time zone, the day's confirmations, unsubscribes and bounces (counted by
  range over indexed timestamps), views per hour, new articles per source, partner requests per partner, and the
  count of confirmed subscribers when the day was last rolled ("subscribers", a snapshot: a past day cannot be
  counted again). Re-rolling a day replaces its rows, the snapshot excepted.
- `edition_figures`: each edition's funnel (recipients, sent, failed, pending, skipped, clicks), counted while the
  edition can still change and then left alone.

`Figures.roll_up(now)` is the `figures:daily` job (every few minutes): each day of the last CATCH_UP not rolled
since it ended (a missed day is caught up), today again (cheap: a few indexed counts), and the editions still
settling. `build_dashboard` returns the whole dashboard as frozen data from a handful of indexed queries.

What the figures count: a confirmation is a subscriber whose `confirmed_at` falls on the day (a reader who comes
back later is counted on the later day), an unsubscribe or a bounce a subscriber now "unsubscribed" or
"bounced"/"complained" whose `unsubscribed_at` falls on the day; an erased subscriber leaves the counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Sequence

from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, update

from feeds import db as content_db
from feeds.model import source_health
from feeds.readership import most_viewed
from feeds.settings import SourceSettings
from feeds.store import ArticleStore

from .db import daily_figures, deliveries, edition_figures, editions, subscribers

CATCH_UP = 90  # days a first roll (or one after a long stop) goes back: the longest chart
LATE = timedelta(minutes=15)  # a day is complete once rolled this long after its end (buffered views flushed)
SETTLE = timedelta(days=3)  # an edition's funnel is counted again until this long after it finished (clicks)
PERIODS = (30, 90)  # the growth charts' spans, in days
VIEW_HOURS = 48  # the views-per-hour chart's span
HEALTH_ORDER = ("unhealthy", "failing", "disabled", "new", "ok")  # failing first
EVENT_FIGURES = ("confirmations", "unsubscribes", "bounces", "views", "articles", "partner_requests")
SNAPSHOT, MARKER = "subscribers", "rolled"


# --- the dashboard as data ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GrowthDay:
    day: date
    confirmations: int
    unsubscribes: int
    bounces: int
    net: int
    subscribers: int  # confirmed at the end of the day (today: at the last roll)


@dataclass(frozen=True)
class EditionFunnel:
    id: int
    name: str
    scheduled_at: datetime
    status: str
    recipients: int
    sent: int
    failed: int
    pending: int
    clicks: int
    click_rate: float  # clicks per sent mail (0 when none was sent)


@dataclass(frozen=True)
class SourceLine:
    name: str
    health: str
    consecutive_failures: int
    last_error: str | None
    last_success_at: datetime | None
    articles: tuple[int, ...]  # new articles per day, one per day of the dashboard's span


@dataclass(frozen=True)
class Viewed:
    article_id: str
    title: str
    url: str | None
    views: int


@dataclass(frozen=True)
class HourViews:
    hour_at: datetime
    views: int


@dataclass(frozen=True)
class PartnerDay:
    day: date
    requests: int
    by_partner: dict[str, int]


@dataclass(frozen=True)
class Dashboard:
    generated_at: datetime
    as_of: datetime | None  # when the figures were last rolled; None: never (subscribers then counted live)
    days: int
    subscribers: int
    growth: tuple[GrowthDay, ...]
    editions: tuple[EditionFunnel, ...]
    sources: tuple[SourceLine, ...]
    most_viewed_1h: tuple[Viewed, ...]
    most_viewed_24h: tuple[Viewed, ...]
    views_per_hour: tuple[HourViews, ...]
    partner_requests: tuple[PartnerDay, ...]


@dataclass(frozen=True)
class RollReport:
    days: tuple[date, ...]
    editions: int

    def summary(self) -> str:
        span = f"{self.days[0]}..{self.days[-1]}" if len(self.days) > 1 else str(self.days[0]) if self.days else "-"
        return f"figures rolled for {len(self.days)} day(s) ({span}), {self.editions} edition(s) counted"


# --- the figures (I/O) ----------------------------------------------------------------------------------------

class Figures:
    """The two figure tables over the database, in the site's time zone."""

    def __init__(self, engine: Engine, timezone: tzinfo) -> None:
        self.engine = engine
        self.timezone = timezone

    def day_of(self, at: datetime) -> date:
        return at.astimezone(self.timezone).date()

    def bounds(self, day: date) -> tuple[datetime, datetime]:
        """[start, end) of `day` in the site's time zone, in UTC (23 or 25 hours long where clocks change)."""
        start = datetime.combine(day, time(), self.timezone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(), self.timezone).astimezone(UTC)
        return start, end

    # --- rolling up

    def roll_up(self, now: datetime) -> RollReport:
        """The `figures:daily` job: every day not yet complete up to today, then the editions still settling."""
        days = self.days_due(now)
        for day in days:
            self.roll_day(day, now)
        return RollReport(tuple(days), self.count_editions(now))

    def days_due(self, now: datetime) -> list[date]:
        """The days of the last CATCH_UP (today included) never rolled, or last rolled before they were complete."""
        today = self.day_of(now)
        first = today - timedelta(days=CATCH_UP - 1)
        with self.engine.connect() as conn:
            rolled = dict(conn.execute(select(daily_figures.c.day, daily_figures.c.value)
                                       .where(daily_figures.c.figure == MARKER, daily_figures.c.day >= first)).all())
        days = [first + timedelta(days=n) for n in range(CATCH_UP)]
        return [day for day in days
                if day not in rolled or datetime.fromtimestamp(rolled[day], UTC) < self.bounds(day)[1] + LATE]

    def roll_day(self, day: date, now: datetime) -> None:
        """Count `day`'s figures and put them in place of the ones it had, in one transaction. The subscriber
        snapshot is taken only for today (a past day's count cannot be known any more)."""
        start, end = self.bounds(day)
        t, s = daily_figures, subscribers
        rows: list[dict[str, object]] = []

        def add(figure: str, value: int, key: str = "") -> None:
            rows.append({"day": day, "figure": figure, "key": key, "value": int(value)})

        with self.engine.begin() as conn:
            def count(*where: object) -> int:
                return int(conn.execute(select(func.count()).select_from(s).where(*where)).scalar_one())

            add("confirmations", count(s.c.confirmed_at >= start, s.c.confirmed_at < end))
            add("unsubscribes", count(s.c.unsubscribed_at >= start, s.c.unsubscribed_at < end,
                                      s.c.status == "unsubscribed"))
            add("bounces", count(s.c.unsubscribed_at >= start, s.c.unsubscribed_at < end,
                                 s.c.status.in_(("bounced", "complained"))))
            v = content_db.article_views
            for hour_at, views in conn.execute(select(v.c.hour_at, func.sum(v.c.views))
                                               .where(v.c.hour_at >= start, v.c.hour_at < end).group_by(v.c.hour_at)):
                add("views", views, hour_key(hour_at))
            a, src = content_db.articles, content_db.sources
            for name, n in conn.execute(select(src.c.name, func.count())
                                        .select_from(a.join(src, src.c.id == a.c.source_id))
                                        .where(a.c.published_at >= start, a.c.published_at < end)
                                        .group_by(src.c.name)):
                add("articles", n, name)
            u = content_db.partner_usage
            for slug, n in conn.execute(select(u.c.partner_slug, u.c.requests).where(u.c.day == day)):
                add("partner_requests", n, slug)
            if day == self.day_of(now):
                add(SNAPSHOT, count(s.c.status == "confirmed"))
            add(MARKER, int(now.timestamp()))
            replaced = [*EVENT_FIGURES, MARKER, *((SNAPSHOT,) if day == self.day_of(now) else ())]
            conn.execute(delete(t).where(t.c.day == day, t.c.figure.in_(replaced)))
            conn.execute(insert(t), rows)

    def count_editions(self, now: datetime) -> int:
        """Count the funnel of each edition not yet counted, still sending, or finished less than SETTLE ago. A
        finished edition counted after it finished only has its clicks counted again: its deliveries are final
        (a retry opens the edition again, and then it is counted again)."""
        e, f = editions, edition_figures
        with self.engine.connect() as conn:
            due = conn.execute(select(e.c.id, e.c.name, e.c.scheduled_at, e.c.status, e.c.finished_at, f.c.counted_at)
                               .select_from(e.outerjoin(f, f.c.edition_id == e.c.id))
                               .where(or_(f.c.edition_id.is_(None), e.c.status != "done", e.c.finished_at.is_(None),
                                          e.c.finished_at >= now - SETTLE)).order_by(e.c.id)).all()
        for edition in due:
            if edition.status == "done" and edition.counted_at is not None and edition.finished_at is not None \
                    and edition.counted_at >= edition.finished_at:
                self.count_clicks(edition.id, edition.name)
            else:
                self.count_edition(edition.id, edition.name, edition.scheduled_at, edition.status, now)
        return len(due)

    def count_edition(self, edition_id: int, name: str, scheduled_at: datetime, status: str, now: datetime) -> None:
        d = deliveries
        with self.engine.begin() as conn:
            counts = dict(conn.execute(select(d.c.status, func.count()).where(d.c.edition_id == edition_id)
                                       .group_by(d.c.status)).all())
            sent, failed, skipped = (int(counts.get(k, 0)) for k in ("sent", "failed", "skipped"))
            pending = sum(int(counts.get(k, 0)) for k in ("queued", "retry", "held"))
            conn.execute(delete(edition_figures).where(edition_figures.c.edition_id == edition_id))
            conn.execute(insert(edition_figures).values(
                edition_id=edition_id, name=name, scheduled_at=scheduled_at, status=status,
                recipients=sent + failed + pending, sent=sent, failed=failed, pending=pending, skipped=skipped,
                clicks=_clicks(conn, name, edition_id), counted_at=now))

    def count_clicks(self, edition_id: int, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(edition_figures).where(edition_figures.c.edition_id == edition_id)
                         .values(clicks=_clicks(conn, name, edition_id)))

    # --- reading back

    def rows(self, first: date) -> list[tuple[date, str, str, int]]:
        t = daily_figures
        with self.engine.connect() as conn:
            return [(r.day, r.figure, r.key, int(r.value)) for r in conn.execute(
                select(t.c.day, t.c.figure, t.c.key, t.c.value)
                .where(t.c.day >= first, t.c.figure.in_(EVENT_FIGURES)))]

    def snapshot(self) -> tuple[date, int, datetime] | None:
        """(day, confirmed subscribers, when) of the last roll that counted them; None if none did."""
        t = daily_figures
        with self.engine.connect() as conn:
            last = conn.execute(select(t.c.day, t.c.value).where(t.c.figure == SNAPSHOT)
                                .order_by(t.c.day.desc()).limit(1)).first()
            if last is None:
                return None
            at = conn.execute(select(t.c.value).where(t.c.day == last.day, t.c.figure == MARKER)).scalar()
        return last.day, int(last.value), datetime.fromtimestamp(at or 0, UTC)

    def live_subscribers(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(subscribers)
                                    .where(subscribers.c.status == "confirmed")).scalar_one())

    def funnels(self, limit: int) -> list[EditionFunnel]:
        f = edition_figures
        with self.engine.connect() as conn:
            rows = conn.execute(select(f).order_by(f.c.scheduled_at.desc(), f.c.edition_id.desc()).limit(limit)).all()
        return [EditionFunnel(id=r.edition_id, name=r.name, scheduled_at=r.scheduled_at, status=r.status,
                              recipients=r.recipients, sent=r.sent, failed=r.failed, pending=r.pending,
                              clicks=r.clicks, click_rate=round(r.clicks / r.sent, 4) if r.sent else 0.0)
                for r in rows]


def _clicks(conn: Connection, name: str, edition_id: int) -> int:
    c = content_db.campaign_clicks
    return int(conn.execute(select(func.coalesce(func.sum(c.c.clicks), 0))
                            .where(c.c.campaign == f"{name}-{edition_id}"[:64])).scalar_one())


def hour_key(hour_at: datetime) -> str:
    return hour_at.astimezone(UTC).strftime("%Y-%m-%dT%H:00Z")


# --- the dashboard --------------------------------------------------------------------------------------------

def build_dashboard(figures: Figures, articles: ArticleStore, *, now: datetime, days: int, failure_limit: int,
                    sources: Sequence[SourceSettings] | None = None, editions: int = 10,
                    top: int = 5) -> Dashboard:
    """The whole dashboard over the last `days` days (today included), from the figure tables, the sources' rows
    and two most-viewed queries."""
    today = figures.day_of(now)
    span = [today - timedelta(days=days - 1 - n) for n in range(days)]
    first = min(span[0], figures.day_of(now - timedelta(hours=VIEW_HOURS)))
    by: dict[str, dict[tuple[date, str], int]] = defaultdict(dict)
    for day, figure, key, value in figures.rows(first):
        by[figure][(day, key)] = value
    snapshot = figures.snapshot()
    if snapshot is None:
        anchor_day, anchor, as_of = today, figures.live_subscribers(), None
    else:
        anchor_day, anchor, as_of = snapshot
    return Dashboard(
        generated_at=now, as_of=as_of, days=days, subscribers=anchor,
        growth=tuple(growth(span, by, anchor_day, anchor)),
        editions=tuple(figures.funnels(editions)),
        sources=tuple(source_lines(articles, span, by["articles"], failure_limit, sources)),
        most_viewed_1h=tuple(_viewed(articles, timedelta(hours=1), now, top)),
        most_viewed_24h=tuple(_viewed(articles, timedelta(hours=24), now, top)),
        views_per_hour=tuple(views_per_hour(by["views"], now)),
        partner_requests=tuple(partner_days(span, by["partner_requests"])))


def growth(span: Sequence[date], by: dict[str, dict[tuple[date, str], int]], anchor_day: date,
           anchor: int) -> list[GrowthDay]:
    """Each day's events and the confirmed count at its end, worked back (and forth) from the snapshot `anchor`
    taken on `anchor_day`: the count moves by each day's net."""
    def net(day: date) -> int:
        return (by["confirmations"].get((day, ""), 0) - by["unsubscribes"].get((day, ""), 0)
                - by["bounces"].get((day, ""), 0))

    at_end = {anchor_day: anchor}
    day = anchor_day
    while day > span[0]:
        at_end[day - timedelta(days=1)] = at_end[day] - net(day)
        day -= timedelta(days=1)
    day = anchor_day
    while day < span[-1]:
        day += timedelta(days=1)
        at_end[day] = at_end[day - timedelta(days=1)] + net(day)
    return [GrowthDay(day, by["confirmations"].get((day, ""), 0), by["unsubscribes"].get((day, ""), 0),
                      by["bounces"].get((day, ""), 0), net(day), at_end[day]) for day in span]


def source_lines(articles: ArticleStore, span: Sequence[date], counts: dict[tuple[date, str], int],
                 failure_limit: int, configured: Sequence[SourceSettings] | None) -> list[SourceLine]:
    lines = [SourceLine(name=s.name, health=source_health(s, failure_limit), consecutive_failures=s.consecutive_failures,
                        last_error=s.last_error, last_success_at=s.last_success_at,
                        articles=tuple(counts.get((day, s.name), 0) for day in span))
             for s in articles.sources(configured)]
    return sorted(lines, key=lambda line: (HEALTH_ORDER.index(line.health) if line.health in HEALTH_ORDER
                                           else len(HEALTH_ORDER), -line.consecutive_failures, line.name))


def views_per_hour(counts: dict[tuple[date, str], int], now: datetime) -> list[HourViews]:
    by_hour = {key: value for (_, key), value in counts.items()}
    last = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = [last - timedelta(hours=VIEW_HOURS - 1 - n) for n in range(VIEW_HOURS)]
    return [HourViews(hour, by_hour.get(hour_key(hour), 0)) for hour in hours]


def partner_days(span: Sequence[date], counts: dict[tuple[date, str], int]) -> list[PartnerDay]:
    by_day: dict[date, dict[str, int]] = defaultdict(dict)
    for (day, slug), n in counts.items():
        by_day[day][slug] = n
    return [PartnerDay(day, sum(by_day[day].values()), dict(sorted(by_day[day].items()))) for day in span]


def _viewed(articles: ArticleStore, window: timedelta, now: datetime, top: int) -> list[Viewed]:
    return [Viewed(a.id, a.title, a.url, a.views) for a in most_viewed(articles, window=window, now=now, limit=top)]
