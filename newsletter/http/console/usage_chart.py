"""A partner's usage per day as a chart: server-side SVG drawn with pygal, and the same numbers as a table.

Pure: the usage days (newest first, as `PartnerStore.usage` gives them), the words of one language and the number of
days in, a `UsageChart` out. The SVG loads and runs nothing: pygal's tooltip script (which it would fetch from a
CDN) is off (`js=[]`), the inline configuration script it adds anyway is taken out, its style is inline. It carries
role="img" with a <title> and a <desc>, and the page puts the numbers under it as a table for screen readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Sequence

from feeds.core.i18n import Words
from feeds.partners import UsageDay

from ...charts import accessible_svg, count_axis, pygal, style

STYLE = style(label_font_size=12, major_label_font_size=12, legend_font_size=13, value_font_size=11)


@dataclass(frozen=True)
class UsageChart:
    title: str
    summary: str  # one sentence: the chart's text alternative
    svg: str  # safe to put in a page as it is
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]  # newest first


def usage_chart(usage: Sequence[UsageDay], today: date, days: int, t: Words) -> UsageChart:
    """Requests, 304s and clicks back for each of the `days` days up to `today` (days without use count 0)."""
    by_day = {u.day: u for u in usage}
    span = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]  # oldest first, left to right
    series: dict[str, list[int]] = {"requests": [], "not_modified": [], "clicks": []}
    for day in span:
        found = by_day.get(day)
        for key, values in series.items():
            values.append(getattr(found, key) if found else 0)
    title = t["console_partners_usage_chart"]
    summary = t.text("console_partners_usage_summary", days=days, requests=t.number(sum(series["requests"])),
                     clicks=t.number(sum(series["clicks"])))
    chart = pygal.Bar(js=[], disable_xml_declaration=True, explicit_size=False, width=800, height=300, style=STYLE,
                      legend_at_bottom=True, legend_at_bottom_columns=3, show_minor_x_labels=False,
                      x_labels_major_every=7 if days > 31 else 5 if days > 14 else 1, truncate_label=-1,
                      print_values=False, no_data_text="-", margin=12)
    chart.x_labels = [f"{day:%m-%d}" for day in span]
    chart.y_labels = count_axis(v for values in series.values() for v in values)
    chart.add(t["console_partners_requests"], series["requests"])
    chart.add(t["console_partners_not_modified"], series["not_modified"])
    chart.add(t["console_partners_clicks"], series["clicks"])
    head = (t["console_partners_day"], t["console_partners_requests"], t["console_partners_not_modified"],
            t["console_partners_rate_limited"], t["console_partners_bytes"], t["console_partners_articles"],
            t["console_partners_clicks"])
    rows = tuple((u.day.isoformat(), t.number(u.requests), t.number(u.not_modified), t.number(u.rate_limited),
                  t.number(u.bytes), t.number(u.articles), t.number(u.clicks)) for u in usage)
    return UsageChart(title, summary, accessible_svg(chart.render(is_unicode=True), title, summary), head, rows)
