"""A partner's usage per day as a chart: server-side SVG drawn with pygal, and the same numbers as a table.

Pure: the usage days (newest first, as `PartnerStore.usage` gives them), the words of one language and the number of
days in, a `UsageChart` out. The SVG loads and runs nothing: pygal's tooltip script (which it would fetch from a
CDN) is off (`js=[]`), the inline configuration script it adds anyway is taken out, its style is inline. It carries
role="img" with a <title> and a <desc>, and the page puts the numbers under it as a table for screen readers.
"""

from __future__ import annotations

import html
import re
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Sequence

import pygal
from pygal.style import Style

from feeds.core.i18n import Words
from feeds.partners import UsageDay

# pygal appends a finder for its old map plugins to sys.meta_path that has only the pre-3.4 `find_module`: every
# import that misses would warn (an error under the tests' warnings filter). Take it out again.
sys.meta_path[:] = [finder for finder in sys.meta_path if type(finder).__name__ != "PluginImportFixer"]

STYLE = Style(
    background="#ffffff", plot_background="#ffffff", foreground="#1a1a1a", foreground_strong="#000000",
    foreground_subtle="#595959", opacity="0.9", opacity_hover="1", transition="0s",
    font_family='system-ui, "Noto Sans KR", "NanumGothic", "Apple SD Gothic Neo", sans-serif',
    colors=("#0072B2", "#D55E00", "#009E73"),  # Okabe-Ito: told apart by colour-blind readers, 3:1 on white
    label_font_size=12, major_label_font_size=12, legend_font_size=13, value_font_size=11)

_SVG_OPEN = re.compile(r'<svg\b[^>]*?\bid="([^"]+)"[^>]*>')


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
    top = max((v for values in series.values() for v in values), default=0)
    step = max(1, -(-top // 5))
    chart.y_labels = list(range(0, top + step, step))  # whole requests: no 0.2 of a request on the axis
    chart.add(t["console_partners_requests"], series["requests"])
    chart.add(t["console_partners_not_modified"], series["not_modified"])
    chart.add(t["console_partners_clicks"], series["clicks"])
    head = (t["console_partners_day"], t["console_partners_requests"], t["console_partners_not_modified"],
            t["console_partners_rate_limited"], t["console_partners_bytes"], t["console_partners_articles"],
            t["console_partners_clicks"])
    rows = tuple((u.day.isoformat(), t.number(u.requests), t.number(u.not_modified), t.number(u.rate_limited),
                  t.number(u.bytes), t.number(u.articles), t.number(u.clicks)) for u in usage)
    return UsageChart(title, summary, accessible_svg(chart.render(is_unicode=True), title, summary), head, rows)


def accessible_svg(svg: str, title: str, summary: str) -> str:
    """pygal's SVG as an image with a name and a description (role="img", <title>, <desc>), without comments and
    without the inline script pygal adds even with `js=[]` (nothing would run it: the console's CSP has no scripts)."""
    svg = re.sub(r"<!--.*?-->|<script\b.*?</script>", "", svg, flags=re.DOTALL)
    found = _SVG_OPEN.search(svg)
    if found is None:
        raise ValueError("pygal drew no <svg> with an id")
    chart_id = found.group(1)
    opening = found.group(0)[:-1] + f' role="img" aria-labelledby="{chart_id}-title {chart_id}-desc">'
    named = (f'<title id="{chart_id}-title">{html.escape(title)}</title>'
             f'<desc id="{chart_id}-desc">{html.escape(summary)}</desc>')
    return svg[:found.start()] + opening + named + svg[found.end():]
