"""The dashboard's charts: server-side SVG drawn with pygal from a `Dashboard`, each with its words and numbers.

Pure: a `Dashboard`, the words of one language and the site's time zone in, `Chart`s out. Each chart's SVG loads
and runs nothing (pygal's tooltip script, which it would fetch from a CDN, is turned off and its inline
configuration script taken out; its style is inline), carries
role="img" with a <title> and a <desc> that say what it shows in a sentence, and comes with its numbers as a table
(`head`, `rows`) for the page to put under it, so a screen reader gets every figure, not a picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Sequence

from feeds.core.i18n import Words

from .charts import accessible_svg, count_axis, pygal, style
from .dashboard import Dashboard

STYLE = style(label_font_size=14, major_label_font_size=14, legend_font_size=15, title_font_size=16,
              value_font_size=13)


@dataclass(frozen=True)
class Chart:
    key: str  # growth | subscribers | funnel | views | partners
    title: str
    summary: str  # one sentence: the chart's text alternative
    svg: str  # safe to put in a page as it is
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def dashboard_charts(d: Dashboard, t: Words, timezone: tzinfo) -> tuple[Chart, ...]:
    return (subscribers_chart(d, t), growth_chart(d, t), funnel_chart(d, t), views_chart(d, t, timezone),
            partners_chart(d, t))


def subscribers_chart(d: Dashboard, t: Words) -> Chart:
    title = t["dash_chart_subscribers"]
    first, last = (d.growth[0].subscribers, d.growth[-1].subscribers) if d.growth else (0, 0)
    summary = t.text("dash_summary_subscribers", days=d.days, start=t.number(first), end=t.number(last))
    chart = _new(pygal.Line, days=len(d.growth), show_dots=False, fill=True, show_legend=False)
    chart.x_labels = [f"{g.day:%m-%d}" for g in d.growth]
    chart.add(title, [g.subscribers for g in d.growth])
    return _chart("subscribers", title, summary, chart, (t["dash_day"], title),
                  [(g.day.isoformat(), t.number(g.subscribers)) for g in d.growth])


def growth_chart(d: Dashboard, t: Words) -> Chart:
    """Confirmations up, departures (unsubscribes, bounces) down, stacked: each day's bar spans its net; the net
    itself is in the table and the description."""
    title = t["dash_chart_growth"]
    total = {k: sum(getattr(g, k) for g in d.growth) for k in ("confirmations", "unsubscribes", "bounces", "net")}
    summary = t.text("dash_summary_growth", days=d.days, **{k: t.number(v) for k, v in total.items()})
    chart = _new(pygal.StackedBar, days=len(d.growth))
    chart.x_labels = [f"{g.day:%m-%d}" for g in d.growth]
    chart.add(t["dash_confirmations"], [g.confirmations for g in d.growth])
    chart.add(t["dash_unsubscribes"], [-g.unsubscribes or None for g in d.growth])  # no bar for none: fewer nodes
    chart.add(t["dash_bounces"], [-g.bounces or None for g in d.growth])
    return _chart("growth", title, summary, chart,
                  (t["dash_day"], t["dash_confirmations"], t["dash_unsubscribes"], t["dash_bounces"], t["dash_net"]),
                  [(g.day.isoformat(), *(t.number(getattr(g, k)) for k in ("confirmations", "unsubscribes",
                                                                             "bounces", "net"))) for g in d.growth])


def funnel_chart(d: Dashboard, t: Words) -> Chart:
    title = t["dash_chart_funnel"]
    shown = list(reversed(d.editions))  # oldest first, left to right
    summary = t.text("dash_summary_funnel", count=len(shown),
                     recipients=t.number(sum(e.recipients for e in shown)), sent=t.number(sum(e.sent for e in shown)),
                     failed=t.number(sum(e.failed for e in shown)), clicks=t.number(sum(e.clicks for e in shown)))
    chart = _new(pygal.Bar, days=len(shown))
    chart.x_labels = [f"{e.name} {e.scheduled_at:%m-%d}" for e in shown]
    series = (("dash_recipients", [e.recipients for e in shown]), ("dash_sent", [e.sent for e in shown]),
              ("dash_failed", [e.failed for e in shown]), ("dash_clicked", [e.clicks for e in shown]))
    chart.y_labels = count_axis(v for _, values in series for v in values)
    for key, values in series:
        chart.add(t[key], values)
    return _chart("funnel", title, summary, chart,
                  (t["dash_edition"], t["dash_recipients"], t["dash_sent"], t["dash_failed"], t["dash_clicked"],
                   t["dash_click_rate"]),
                  [(f"{e.name} {e.scheduled_at:%Y-%m-%d %H:%M}", t.number(e.recipients), t.number(e.sent),
                    t.number(e.failed), t.number(e.clicks), f"{e.click_rate:.1%}") for e in d.editions])


def views_chart(d: Dashboard, t: Words, timezone: tzinfo) -> Chart:
    title = t["dash_chart_views"]
    hours = [(h.hour_at.astimezone(timezone), h.views) for h in d.views_per_hour]
    peak = max(hours, key=lambda h: h[1], default=None)
    summary = t.text("dash_summary_views", hours=len(hours), views=t.number(sum(v for _, v in hours)),
                     peak=t.number(peak[1] if peak else 0), at=f"{peak[0]:%m-%d %H:00}" if peak else "-")
    chart = _new(pygal.Bar, days=len(hours), every=6, show_legend=False)
    chart.x_labels = [f"{at:%H}" for at, _ in hours]
    chart.y_labels = count_axis(v for _, v in hours)
    chart.add(t["dash_views"], [v for _, v in hours])
    return _chart("views", title, summary, chart, (t["dash_hour"], t["dash_views"]),
                  [(f"{at:%Y-%m-%d %H:00}", t.number(v)) for at, v in hours])


def partners_chart(d: Dashboard, t: Words) -> Chart:
    title = t["dash_chart_partners"]
    slugs = sorted({slug for day in d.partner_requests for slug in day.by_partner})
    summary = t.text("dash_summary_partners", days=d.days,
                     requests=t.number(sum(day.requests for day in d.partner_requests)), partners=len(slugs))
    # A line per partner: one path each, where bars would be an element per partner and day (5 partners over 90 days
    # drew in half a second).
    chart = _new(pygal.Line, days=len(d.partner_requests), show_dots=False, include_x_axis=True,
                 stroke_style={"width": 3})
    chart.x_labels = [f"{day.day:%m-%d}" for day in d.partner_requests]
    for slug in slugs:
        chart.add(slug, [day.by_partner.get(slug, 0) for day in d.partner_requests])
    if not slugs:
        chart.add(t["dash_requests"], [0 for _ in d.partner_requests])
    return _chart("partners", title, summary, chart, (t["dash_day"], *slugs, t["dash_requests"]),
                  [(day.day.isoformat(), *(t.number(day.by_partner.get(s, 0)) for s in slugs), t.number(day.requests))
                   for day in d.partner_requests])


def _new(kind: type, *, days: int, every: int | None = None, **options: object) -> pygal.graph.graph.Graph:
    """A chart that loads nothing from anywhere and scales with its box (viewBox, no fixed size)."""
    every = every or (7 if days > 31 else 5 if days > 14 else 1)
    options = {"show_legend": True, "legend_at_bottom_columns": 4, **options}
    return kind(js=[], disable_xml_declaration=True, explicit_size=False, width=640, height=320, style=STYLE,
                legend_at_bottom=True, show_minor_x_labels=False, margin_bottom=28,
                x_labels_major_every=every, truncate_label=-1, print_values=False, no_data_text="-",
                margin=12, **options)


def _chart(key: str, title: str, summary: str, chart: pygal.graph.graph.Graph, head: Sequence[str],
           rows: Sequence[Sequence[str]]) -> Chart:
    return Chart(key, title, summary, accessible_svg(chart.render(is_unicode=True), title, summary), tuple(head),
                 tuple(tuple(r) for r in rows))
