"""Charts as Gazette draws them: pygal, loaded once and tamed, in the house style, turned into SVG a page can hold.

Both the dashboard (`newsletter.dashboard_charts`) and a partner's usage (`newsletter.http.console.usage_chart`) draw
here, so the one import workaround, the one palette and the one way to make pygal's SVG accessible live once.
"""

from __future__ import annotations

import html
import re
import sys
from typing import Any, Iterable

import pygal
from pygal.style import Style

# pygal appends a finder for its old map plugins (`pygal.maps.*`, which Gazette does not use) to sys.meta_path that
# has only the pre-3.4 `find_module`: every import that misses then warns (an error under our warnings filter) and
# Python 3.12 drops such finders. Take it out again.
sys.meta_path[:] = [finder for finder in sys.meta_path if type(finder).__name__ != "PluginImportFixer"]



def style(**sizes: Any) -> Style:
    """The charts' style: white, the site's fonts, Okabe-Ito colours (told apart by colour-blind readers, each at
    least 3:1 against white); `sizes` sets the font sizes of one kind of chart."""
    return Style(
        background="#ffffff", plot_background="#ffffff", foreground="#1a1a1a", foreground_strong="#000000",
        foreground_subtle="#595959", opacity="0.9", opacity_hover="1", transition="0s",
        font_family='system-ui, "Noto Sans KR", "NanumGothic", "Apple SD Gothic Neo", sans-serif',
        colors=("#0072B2", "#D55E00", "#8A6D00", "#009E73", "#CC79A7", "#56B4E9"), **sizes)


_SVG_OPEN = re.compile(r'<svg\b[^>]*?\bid="([^"]+)"[^>]*>')


def accessible_svg(svg: str, title: str, summary: str) -> str:
    """pygal's SVG as an image with a name and a description (role="img", <title>, <desc>), without its comments
    and without the inline script pygal adds even with `js=[]` (its tooltips' configuration: nothing runs it, and
    the pages' Content-Security-Policy would refuse it)."""
    svg = re.sub(r"<!--.*?-->|<script\b.*?</script>", "", svg, flags=re.DOTALL)
    found = _SVG_OPEN.search(svg)
    if found is None:
        raise ValueError("pygal drew no <svg> with an id")
    chart_id = found.group(1)
    opening = found.group(0)[:-1] + f' role="img" aria-labelledby="{chart_id}-title {chart_id}-desc">'
    named = (f'<title id="{chart_id}-title">{html.escape(title)}</title>'
             f'<desc id="{chart_id}-desc">{html.escape(summary)}</desc>')
    return svg[:found.start()] + opening + named + svg[found.end():]


def count_axis(values: Iterable[int | None], ticks: int = 5) -> list[int]:
    """Y labels for counts: whole numbers from 0, about `ticks` of them (pygal would label 0.2 of a mail)."""
    top = max((v for v in values if v is not None), default=0)
    step = max(1, -(-top // ticks))
    return list(range(0, top + step, step))


__all__ = ["accessible_svg", "count_axis", "pygal", "style"]
