"""The most viewed box embedded on other sites, in Chromium: the demo served on one loopback port, and host pages
served from other origins (`http://localhost:<port>`) that embed both the iframe and the script. An allowed origin
shows the ten headlines in ranking order in both, a click goes through /r/ and counts in the `widget` channel; an
origin not in `[widgets] origins` gets no data (CORS) and no frame (`frame-ancestors`). Screenshots of the box go
to docs/screenshots/widget-*.png for docs/widgets.md."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from feeds.article_search import ArticleSearch
from feeds.fetch import HttpFetcher
from feeds.ingest import ingest_all
from newsletter.settings import load_settings
from tests.conftest import ServerThread, demo_config, free_port, run_gazette, wait_until
from tests.console.browser import (
    SCREENSHOTS,
    check_page,
    launched_chromium,
    needs_browser,
)

pytestmark = needs_browser

# A reader's browser: crawlerdetect counts HeadlessChrome as a robot, whose clicks do not count.
READER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
BOX = "limit=10&window=7d"
HOST_PAGE = """<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>제휴 매체</title>
<style>
  body {{ margin: 1rem; font-family: "NanumGothic", sans-serif; }}
  .row {{ display: flex; gap: 1.5rem; align-items: flex-start; flex-wrap: wrap; }}
  .col {{ width: 340px; }}
  iframe {{ border: 0; width: 340px; height: 720px; }}
  .themed {{ --gz-accent: #c62828; --gz-title: #c62828; --gz-text: #263238; --gz-line: #f3d6d6; --gz-bg: #fffaf8;
             --gz-size: 15px; padding: .6rem .8rem; border-radius: 8px; border: 1px solid #f3d6d6; }}
</style></head>
<body>
<h1>제휴 매체 홈</h1>
<div class="row">
  <div class="col"><iframe id="framed" title="많이 본 뉴스" src="{gazette}/widgets/most-viewed?{box}"></iframe></div>
  <div class="col" id="scripted" data-gazette-most-viewed data-window="7d" data-limit="10">불러오는 중…</div>
  <div class="col themed" id="themed" data-gazette-most-viewed data-window="7d" data-limit="5"
       data-category="economy"></div>
</div>
<script src="{gazette}/widgets/most-viewed.js" async></script>
</body></html>
"""


@dataclass
class Embedding:
    gazette: ServerThread
    allowed: ServerThread
    refused: ServerThread
    services: Any

    def ranking(self, query: str = BOX) -> list[dict[str, Any]]:
        return httpx.get(f"{self.gazette.url}/widgets/most-viewed.json?{query}").json()["items"]


def host_app(gazette_url: str) -> Starlette:
    """Another site's page embedding the box (the iframe and the script), and the article pages readers land on."""
    async def home(request: Request) -> Response:
        return HTMLResponse(HOST_PAGE.format(gazette=gazette_url, box=BOX))
    return Starlette(routes=[Route("/", home)])


@pytest.fixture(scope="module")
def embedding(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedding]:
    import service

    folder = tmp_path_factory.mktemp("widgets")
    config = demo_config(folder)
    port = free_port()
    with ServerThread(host_app(f"http://127.0.0.1:{port}")) as allowed, \
            ServerThread(host_app(f"http://127.0.0.1:{port}")) as refused:
        text = config.read_text(encoding="utf-8")
        text = text.replace('base_url = "http://127.0.0.1:8000"', f'base_url = "http://127.0.0.1:{port}"')
        text = text.replace('origins = ["http://localhost:8080", "http://127.0.0.1:8080"]',
                            f'origins = ["http://localhost:{allowed.port}"]')
        config.write_text(text, encoding="utf-8")
        services = service.Components(load_settings(config, {}))
        services.prepare_database(migrate=True)
        fetcher = HttpFetcher()
        ingest_all(services.settings.sources, store=services.store, fetcher=fetcher, clock=services.clock)
        fetcher.close()
        run_gazette(["--config", str(config), "views", "import", str(folder / "var" / "demo" / "views.csv")], expect=0)
        with ServerThread(service.create_app(services), port=port) as gazette:
            yield Embedding(gazette, allowed, refused, services)
        services.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with launched_chromium() as browser:
        yield browser


def reader_page(chromium: Any, width: int = 1200) -> Any:
    """A page as a reader's browser; article pages (the demo's links lead off this machine) are answered here."""
    context = chromium.new_context(viewport={"width": width, "height": 900}, locale="ko-KR", user_agent=READER_AGENT)
    context.route(lambda url: url.startswith("https://"), lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8",
                                                              body="<!doctype html><title>기사</title><p>기사 본문"))
    return context.new_page()


def headlines(scope: Any) -> list[str]:
    return [text.strip() for text in scope.locator(".gz-mv__headline").all_inner_texts()]


def test_an_allowed_origin_shows_the_ranking_in_both_forms(embedding: Embedding, chromium: Any) -> None:
    ranking = embedding.ranking()
    assert len(ranking) == 10, "the demo should rank ten articles over seven days"
    page = reader_page(chromium)
    page.goto(embedding.allowed.url.replace("127.0.0.1", "localhost") + "/")
    page.wait_for_selector("#scripted[data-gazette-state=ready]", timeout=15_000)
    page.wait_for_selector("#themed[data-gazette-state=ready]", timeout=15_000)
    titles = [item["title"] for item in ranking]
    assert headlines(page.locator("#scripted")) == titles
    assert page.locator("#scripted .gz-mv__rank").all_inner_texts() == [str(n) for n in range(1, 11)]
    assert page.locator("#scripted h2").inner_text() == "많이 본 뉴스"
    assert page.locator("#scripted ol[role=list] > li").count() == 10
    framed = page.frame_locator("#framed")
    assert headlines(framed) == titles
    assert framed.locator("a").evaluate_all("links => links.map(a => a.target)") == ["_top"] * 10
    economy = [item["title"] for item in embedding.ranking("limit=5&window=7d&category=economy")]
    assert headlines(page.locator("#themed")) == economy and page.locator("#themed h2").inner_text() == "경제 많이 본 뉴스"

    # Korean line breaking and the two-line clamp, in both forms; the host's custom properties theme its box.
    for scope in (page.locator("#scripted .gz-mv__headline").first, framed.locator(".gz-mv__headline").first):
        style = scope.evaluate("e => { const s = getComputedStyle(e);"
                               " return [s.wordBreak, s.webkitLineClamp, s.overflow]; }")
        assert style == ["keep-all", "2", "hidden"]
    accent = page.locator("#themed .gz-mv__rank").first.evaluate("e => getComputedStyle(e).color")
    assert accent == "rgb(198, 40, 40)"
    assert page.locator("#scripted .gz-mv__rank").first.evaluate("e => getComputedStyle(e).color") == "rgb(11, 87, 208)"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#framed").screenshot(path=str(SCREENSHOTS / "widget-ko.png"))
    page.locator("#themed").screenshot(path=str(SCREENSHOTS / "widget-themed.png"))
    page.screenshot(path=str(SCREENSHOTS / "widget-host-page.png"), full_page=True)
    page.context.close()


def test_clicks_go_through_r_and_count_for_the_widget(embedding: Embedding, chromium: Any) -> None:
    ranking = embedding.ranking()
    search = ArticleSearch(embedding.services.store.engine)
    first, second = ranking[0], ranking[1]
    before = [search.clicks_by_channel(item["id"]).get("widget", 0) for item in (first, second)]
    page = reader_page(chromium)
    home = embedding.allowed.url.replace("127.0.0.1", "localhost") + "/"
    page.goto(home)
    page.wait_for_selector("#scripted[data-gazette-state=ready]", timeout=15_000)
    with page.expect_request(lambda r: r.url.startswith(f"{embedding.gazette.url}/r/")) as through:
        page.locator("#scripted .gz-mv__link").first.click()
    assert through.value.url == first["url"]
    page.wait_for_url(lambda url: url.startswith("https://"), timeout=15_000)  # the article, after the redirect

    page.goto(home)
    with page.expect_request(lambda r: r.url.startswith(f"{embedding.gazette.url}/r/")) as through:
        page.frame_locator("#framed").locator(".gz-mv__link").nth(1).click()
    assert through.value.url == second["url"]
    page.wait_for_url(lambda url: not url.startswith(home), timeout=15_000)  # the top window left the host page
    wait_until(lambda: [search.clicks_by_channel(item["id"]).get("widget", 0) for item in (first, second)]
               == [before[0] + 1, before[1] + 1], 10, message="the widget clicks were not counted")
    page.context.close()


def test_an_origin_not_configured_gets_no_data_and_no_frame(embedding: Embedding, chromium: Any) -> None:
    page = reader_page(chromium)
    refused_cors: list[str] = []
    page.on("console", lambda message: refused_cors.append(message.text) if "CORS" in message.text else None)
    page.goto(embedding.refused.url.replace("127.0.0.1", "localhost") + "/")
    page.wait_for_selector("#scripted[data-gazette-state=error]", timeout=15_000)
    assert page.locator("#scripted").inner_text() == "불러오는 중…"  # the page's own fallback stays
    assert page.locator(".gz-mv").count() == 0
    wait_until(lambda: refused_cors, 10, message="Chromium did not report the CORS refusal")
    frame = page.frame(url=lambda url: "/widgets/" in url) or next(f for f in page.frames if f != page.main_frame)
    assert frame.evaluate("document.querySelectorAll('.gz-mv__headline').length") == 0  # blocked by frame-ancestors
    # The same request without the page's origin is public data: only the browser's read is refused.
    assert len(embedding.ranking()) == 10
    page.context.close()


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_the_box_page_is_accessible(embedding: Embedding, chromium: Any, lang: str) -> None:
    page = reader_page(chromium, width=360)
    page.goto(f"{embedding.gazette.url}/widgets/most-viewed?{BOX}&lang={lang}")
    assert page.locator("html").get_attribute("lang") == lang
    assert page.locator("h2").inner_text() == {"ko": "많이 본 뉴스", "en": "Most viewed"}[lang]
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # a visible focus ring
    if lang == "en":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "widget-en.png"), full_page=True)
    check_page(page)  # skips, saying why, where axe-core is not installed
    page.context.close()


def test_the_script_answers_json_for_its_element_params(embedding: Embedding) -> None:
    """The JSON the script reads is what the iframe shows: one ranking, two forms (a cheap check beside the browser)."""
    doc = httpx.get(f"{embedding.gazette.url}/widgets/most-viewed.json?{BOX}",
                    headers={"Origin": embedding.allowed.url.replace("127.0.0.1", "localhost")})
    assert doc.headers["access-control-allow-origin"] == embedding.allowed.url.replace("127.0.0.1", "localhost")
    assert json.loads(doc.content)["items"] == embedding.ranking()
